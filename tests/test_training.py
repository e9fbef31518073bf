"""The training loop on the toy model: outputs, exact resume after a crash, accumulation, EMA, errors."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch

from egopressdiff.cli.main import main as cli
from egopressdiff.errors import ConfigError
from egopressdiff.training.callbacks import TrainerCallback
from egopressdiff.training.checkpoint import list_checkpoints
from egopressdiff.training.loop import lr_factor, train
from toy_training import assert_same_weights, crash_copy, model_weights, toy_config

# 10 clips, batch 2 -> 5 batches per epoch; grad_accum 3 makes optimizer steps straddle epoch ends
# (accelerate syncs at the end of the data, so an epoch ends with a shorter accumulation).
HARD = ("train.checkpoint_every=4", "train.keep_checkpoints=10", "train.grad_accum=3", "data.toy_size=10",
        "train.lr_schedule=cosine", "train.warmup_steps=3", "train.ema=0.9", "train.weight_decay=0.01",
        "train.val_every=5")
STEPS = 14


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    run = tmp_path_factory.mktemp("straight") / "run"
    summary = train(toy_config(*HARD), None, run, max_steps=STEPS, progress=False)
    return run, summary


def test_run_folder_contents(straight):
    run, summary = straight
    assert summary["steps"] == STEPS and summary["exit_code"] == 0 and summary["interrupted"] is None
    assert (run / "config.yaml").is_file() and (run / "model" / "model.safetensors").is_file()
    assert json.loads((run / "train_summary.json").read_text())["steps"] == STEPS
    assert list((run / "logs").glob("events.out.tfevents.*"))
    assert [s for s, _ in list_checkpoints(run / "checkpoints")] == [4, 8, 12, 14]
    assert [s for s, _ in summary["val_losses"]] == [5, 10, 14]
    # 14 steps of <= 3 micro-batches over 5-batch epochs: epochs end after steps 2, 4, 6, ...
    assert summary["epoch"] == 7


def test_ema_is_what_run_model_holds(straight):
    run, _ = straight
    raw = model_weights(run / "checkpoints" / "step-000014" / "model")
    final = model_weights(run / "model")
    assert not torch.equal(raw["net.0.weight"], final["net.0.weight"])  # EMA weights, not the raw ones
    assert torch.equal(raw["encoder.weight"], final["encoder.weight"])  # frozen part untouched by EMA


def test_frozen_part_never_changes(straight, tmp_path):
    run, _ = straight
    from toy_model import ToyModel

    torch.manual_seed(0)  # the loop seeds with train.seed=0 before building the model
    init = ToyModel.from_config("toy").state_dict()
    trained = model_weights(run / "checkpoints" / "step-000014" / "model")
    assert torch.equal(init["encoder.weight"], trained["encoder.weight"])
    assert not torch.equal(init["net.0.weight"], trained["net.0.weight"])


@pytest.mark.parametrize("crash_after", [4, 8, 12])
def test_crash_and_resume_equals_straight_run(straight, tmp_path, crash_after):
    run, summary = straight
    crashed = crash_copy(run, tmp_path / "run", crash_after)
    resumed = train(toy_config(*HARD), None, crashed, resume=True, max_steps=STEPS, progress=False)
    assert resumed["resumed_from"].endswith(f"step-{crash_after:06d}")
    assert_same_weights(model_weights(run / "model"), model_weights(crashed / "model"))
    assert_same_weights(model_weights(run / "checkpoints" / "step-000014" / "model"),
                        model_weights(crashed / "checkpoints" / "step-000014" / "model"))
    assert resumed["val_losses"] == summary["val_losses"]  # fixed-seed validation is comparable


def test_resume_depends_on_restored_rng_and_data_position(straight, tmp_path):
    """Negative controls: the equality above is not automatic."""
    run, _ = straight
    no_rng = crash_copy(run, tmp_path / "no_rng", 8)
    shutil.rmtree(no_rng / "checkpoints" / "step-000008" / "rng")
    (no_rng / "checkpoints" / "step-000008" / "rng").mkdir()
    train(toy_config(*HARD), None, no_rng, resume=True, max_steps=STEPS, progress=False)
    moved = crash_copy(run, tmp_path / "moved", 8)
    state_file = moved / "checkpoints" / "step-000008" / "state.json"
    state = json.loads(state_file.read_text())
    state["batch_in_epoch"] = (state["batch_in_epoch"] + 1) % 5
    state_file.write_text(json.dumps(state))
    train(toy_config(*HARD), None, moved, resume=True, max_steps=STEPS, progress=False)
    ref = model_weights(run / "model")["net.0.weight"]
    assert not torch.equal(ref, model_weights(no_rng / "model")["net.0.weight"])
    assert not torch.equal(ref, model_weights(moved / "model")["net.0.weight"])


def test_resume_to_more_steps_and_without_checkpoint(tmp_path):
    cfg = toy_config("train.checkpoint_every=100")
    run = tmp_path / "run"
    train(cfg, None, run, resume=True, max_steps=3, progress=False)  # nothing to resume: fresh start
    s = train(cfg, None, run, resume=True, max_steps=5, progress=False)
    assert s["start_step"] == 3 and s["steps"] == 5
    assert [st for st, _ in list_checkpoints(run / "checkpoints")] == [3, 5]  # final checkpoints


def test_lr_factor_schedules():
    assert [lr_factor(s, 2, 10, "constant") for s in (0, 1, 2, 9)] == [0.5, 1.0, 1.0, 1.0]
    assert lr_factor(2, 2, 10, "linear") == 1.0 and lr_factor(10, 2, 10, "linear") == 0.0
    assert lr_factor(6, 2, 10, "cosine") == pytest.approx(0.5)
    assert lr_factor(10, 0, 10, "cosine") == pytest.approx(0.0)


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="pretrained-svd"):
        train(toy_config(), None, tmp_path / "a", pretrained_svd=tmp_path)
    with pytest.raises(ConfigError, match="gradient_checkpointing"):
        train(toy_config("train.gradient_checkpointing=true"), None, tmp_path / "b", max_steps=1, progress=False)
    with pytest.raises(ConfigError, match="clip_length"):
        train(toy_config("data.clip_length=5"), None, tmp_path / "c", max_steps=1, progress=False)


def test_cli_refuses_existing_output_and_bad_flags(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "something").write_text("x")
    assert cli(["train", "--config", "toy", "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "already exists" in err and "Traceback" not in err
    assert cli(["train", "--config", "toy", "--output", str(out), "--set", "train.lr=abc"]) == 2
    assert "train.lr" in capsys.readouterr().err
    assert cli(["train", "--output", str(tmp_path / "new")]) == 2
    assert "--config" in capsys.readouterr().err
    assert cli(["train", "--config", "tiny", "--data", str(tmp_path / "nope"), "--output", str(tmp_path / "x")]) == 2
    assert "nope" in capsys.readouterr().err
    f = tmp_path / "file"
    f.write_text("")
    assert cli(["train", "--config", "toy", "--output", str(f)]) == 2
    assert "is a file" in capsys.readouterr().err
    # --overwrite replaces the old folder
    assert cli(["train", "--config", "toy", "--output", str(out), "--overwrite", "--max-steps", "2",
                "--no-progress", "--set", "train.val_every=0"]) == 0
    assert not (out / "something").exists() and (out / "model").is_dir()


def test_real_tiny_models_train_two_steps_and_resume(fake_root, tmp_path):
    """The tiny EgoPressDiff and a tiny baseline through the same loop on a small dataset in the
    EgoPressure layout (ClipDataset train/val splits), checkpointing and resuming exactly."""
    pytest.importorskip("egopressdiff.models")
    from egopressdiff.config import load_run_config
    from egopressdiff.training.registry import load_model

    sets = ["model.clip_length=2", "model.crop_size=32", "data.stride=4", "train.batch_size=1",
            "train.checkpoint_every=1", "train.val_every=2", "train.val_batches=1", "train.log_every=1"]
    for preset, extra in [("tiny", []), ("baseline-reg-tiny", [])]:
        cfg = load_run_config(preset, sets + extra)
        run = tmp_path / preset
        s = train(cfg, fake_root, run, max_steps=2, progress=False)
        assert s["steps"] == 2 and len(s["val_losses"]) == 1 and all(math.isfinite(v) for _, v in s["val_losses"])
        model = load_model(run / "model")
        assert type(model).__name__ == {"tiny": "EgoPressDiff", "baseline-reg-tiny": "PerFrameBaseline"}[preset]
        # crash after step 1, resume: the same weights as the straight run
        crashed = tmp_path / f"{preset}-crashed"
        shutil.copytree(run, crashed)
        shutil.rmtree(crashed / "checkpoints" / "step-000002")
        shutil.rmtree(crashed / "model")
        train(cfg, fake_root, crashed, resume=True, max_steps=2, progress=False)
        a, b = load_model(run / "model").state_dict(), load_model(crashed / "model").state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_a_checkpoint_of_another_model_type(tmp_path):
    from egopressdiff.config import load_run_config
    from egopressdiff.errors import CheckpointError

    run = tmp_path / "run"
    train(toy_config(), None, run, max_steps=2, progress=False)
    with pytest.raises(CheckpointError, match="model_type perframe_baseline"):
        train(load_run_config("baseline-reg-tiny"), tmp_path, run, resume=True, progress=False)


def test_ema_decay_warms_up_and_its_count_is_checkpointed():
    from egopressdiff.training.ema import EMA

    p = torch.nn.Parameter(torch.zeros(3))
    ema = EMA([p], 0.999)
    with torch.no_grad():
        p.fill_(1.0)
    ema.update()  # first update: decay min(0.999, 1/10) -> the average moves 90 % of the way
    assert torch.allclose(ema.shadow[0], torch.full((3,), 0.9))
    for _ in range(20000):
        ema.update()
    assert ema.current_decay() == 0.999
    state = ema.state_dict()
    other = EMA([p], 0.999)
    other.load_state_dict(state)
    assert other.updates == state["updates"] == 20001
    old = {k: v for k, v in state.items() if k != "updates"}  # a checkpoint from before the warm-up
    other.load_state_dict(old)
    assert other.current_decay() == 0.999


class Recorder(TrainerCallback):
    """Records what a run's hooks saw."""

    def __init__(self):
        self.events = []

    def on_train_begin(self, trainer):
        self.events.append(("begin", trainer.global_step))

    def on_step_end(self, trainer):
        self.events.append(("step", trainer.global_step))

    def on_checkpoint_written(self, trainer, folder):
        assert not (folder / "complete").exists() and (folder / "state.json").is_file()
        (folder / "note.txt").write_text(str(trainer.global_step))  # becomes part of the checkpoint
        self.events.append(("checkpoint", folder.name))

    def on_train_end(self, trainer, summary):
        self.events.append(("end", summary["steps"], (trainer.run / "train_summary.json").is_file()))


def test_callbacks_see_every_step_checkpoint_and_the_end(tmp_path):
    rec = Recorder()
    run = tmp_path / "run"
    train(toy_config("train.checkpoint_every=2"), None, run, max_steps=3, progress=False, callbacks=[rec])
    assert rec.events == [("begin", 0), ("step", 1), ("step", 2), ("checkpoint", ".step-000002.tmp"),
                          ("step", 3), ("checkpoint", ".step-000003.tmp"), ("end", 3, True)]
    assert (run / "checkpoints" / "step-000002" / "note.txt").read_text() == "2"
    rec2 = Recorder()
    train(toy_config("train.checkpoint_every=2"), None, run, resume=True, max_steps=4, progress=False,
          callbacks=[rec2])
    assert rec2.events[:2] == [("begin", 3), ("step", 4)]


def test_gradient_checkpointing_is_switched_on_from_the_run_config(fake_root, tmp_path):
    """train.gradient_checkpointing (on in the svd preset) turns on the U-Net's checkpointing; the model
    config no longer carries it."""
    pytest.importorskip("egopressdiff.models")
    from egopressdiff.config import load_run_config

    class Probe(TrainerCallback):
        def on_train_begin(self, trainer):
            self.on = trainer.model.denoiser.unet.is_gradient_checkpointing

    sets = ["model.clip_length=2", "model.crop_size=32", "data.stride=4", "train.batch_size=1",
            "train.checkpoint_every=10", "train.val_every=0"]
    seen = {}
    for flag in (True, False):
        probe = Probe()
        cfg = load_run_config("tiny", sets + [f"train.gradient_checkpointing={str(flag).lower()}"])
        s = train(cfg, fake_root, tmp_path / str(flag), max_steps=1, progress=False, callbacks=[probe])
        seen[flag] = probe.on
        assert math.isfinite(s["last_losses"][-1][1])  # the checkpointed backward ran
    assert seen == {True: True, False: False}
    saved = json.loads((tmp_path / "True" / "model" / "config.json").read_text())
    assert "training" not in saved and "gradient_checkpointing" not in json.dumps(saved)


def test_enable_gradient_checkpointing_skips_modules_that_do_not_support_it():
    from egopressdiff.training.accel import enable_gradient_checkpointing

    class Switchable(torch.nn.Linear):
        _supports_gradient_checkpointing = True
        on = False

        def enable_gradient_checkpointing(self):
            self.on = True

    class Unsupported(torch.nn.Module):  # like a diffusers ModelMixin without support: the method raises
        _supports_gradient_checkpointing = False

        def __init__(self):
            super().__init__()
            self.trained, self.frozen = Switchable(2, 2), Switchable(2, 2)

        def enable_gradient_checkpointing(self):
            raise ValueError("not supported")

    model = Unsupported()
    assert enable_gradient_checkpointing(model, {id(p) for p in model.trained.parameters()})
    assert model.trained.on and not model.frozen.on  # only the part holding trainable weights
    assert not enable_gradient_checkpointing(torch.nn.Linear(2, 2), set())
