"""Checkpoint files: pickle-free state trees, RNG round trips, atomic completion, discovery, pruning."""

from __future__ import annotations

import json
import random
import shutil

import numpy as np
import pytest
import torch

from egopressdiff.errors import CheckpointError
from egopressdiff.training import checkpoint as ckpt
from egopressdiff.training.registry import build_model, load_model, read_model_type
from toy_model import ToyModel


def _optimizer_state():
    torch.manual_seed(0)
    model = ToyModel.from_config("toy")
    opt = torch.optim.AdamW(model.trainable_parameters(), lr=1e-2, betas=(0.8, 0.9))
    for _ in range(2):
        model.net[0].weight.sum().backward()
        opt.step()
    return model, opt


def test_optimizer_state_round_trips_without_pickle(tmp_path):
    model, opt = _optimizer_state()
    sd = opt.state_dict()
    ckpt.save_tree(sd, tmp_path, "optimizer")
    assert not list(tmp_path.glob("*.pt")) and not list(tmp_path.glob("*.pkl"))
    json.loads((tmp_path / "optimizer.json").read_text())  # plain JSON
    back = ckpt.load_tree(tmp_path, "optimizer")
    assert back["param_groups"][0]["betas"] == (0.8, 0.9)  # tuples survive
    assert set(back["state"]) == set(sd["state"])  # integer keys survive
    for i, st in sd["state"].items():
        for k, v in st.items():
            assert torch.equal(back["state"][i][k], v)
    opt2 = torch.optim.AdamW(model.trainable_parameters(), lr=1.0)
    opt2.load_state_dict(back)
    assert opt2.param_groups[0]["lr"] == 1e-2


def test_flatten_refuses_unknown_objects():
    with pytest.raises(CheckpointError, match="object"):
        ckpt.flatten_state({"x": object()})


def test_rng_capture_restore_round_trip(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    torch.rand(5)
    ckpt.save_tree(ckpt.capture_rng(), tmp_path, "rng")
    expected = (random.random(), np.random.rand(), torch.rand(3))
    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    ckpt.restore_rng(ckpt.load_tree(tmp_path, "rng"))
    got = (random.random(), np.random.rand(), torch.rand(3))
    assert got[0] == expected[0] and got[1] == expected[1] and torch.equal(got[2], expected[2])


def _save(root, step, **kw):
    model, opt = _optimizer_state()
    return ckpt.save_checkpoint(root, step, model=model, optimizer_state=opt.state_dict(),
                                scheduler_state={"last_epoch": step}, train_state={"epoch": 0, "batch_in_epoch": step},
                                **kw)


def test_save_is_complete_and_loadable(tmp_path):
    path = _save(tmp_path, 7)
    assert path.name == "step-000007" and ckpt.is_complete(path)
    assert not list(tmp_path.glob(".step-*"))  # the temporary folder was renamed
    loaded = ckpt.load_checkpoint(path)
    assert loaded["state"]["step"] == 7 and loaded["state"]["batch_in_epoch"] == 7
    assert loaded["rng"] is not None and loaded["ema"] is None and loaded["scaler"] is None
    assert isinstance(load_model(path / "model"), ToyModel)


def test_incomplete_and_temporary_checkpoints_are_ignored(tmp_path):
    _save(tmp_path, 3)
    _save(tmp_path, 6)
    # a crash while writing step 9 leaves its temporary folder
    shutil.copytree(tmp_path / "step-000006", tmp_path / ".step-000009.tmp")
    (tmp_path / ".step-000009.tmp" / "complete").unlink()
    # a folder with the final name but no completion marker (e.g. copied by hand, half-way)
    shutil.copytree(tmp_path / "step-000006", tmp_path / "step-000012")
    (tmp_path / "step-000012" / "complete").unlink()
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [3, 6]
    assert ckpt.latest_checkpoint(tmp_path).name == "step-000006"
    with pytest.raises(CheckpointError, match="incomplete"):
        ckpt.load_checkpoint(tmp_path / "step-000012")
    removed = ckpt.clean_stale(tmp_path)
    assert [p.name for p in removed] == [".step-000009.tmp"]


def test_keep_prunes_oldest(tmp_path):
    for s in (1, 2, 3, 4):
        _save(tmp_path, s, keep=2)
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [3, 4]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000003", "step-000004"]


def test_corrupt_checkpoint_files_are_clear_errors(tmp_path):
    path = _save(tmp_path, 2)
    (path / "optimizer.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="optimizer.safetensors"):
        ckpt.load_checkpoint(path)
    path = _save(tmp_path, 4)
    (path / "scheduler.json").unlink()
    with pytest.raises(CheckpointError, match="scheduler.json"):
        ckpt.load_checkpoint(path)


def test_registry_model_types(tmp_path):
    model = build_model({"model_type": "toy", "preset": "toy", "hidden": 4})
    assert model.config.hidden == 4
    model.save_pretrained(tmp_path / "m")
    assert read_model_type(tmp_path / "m") == "toy"
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    for bad, words in [({k: v for k, v in cfg.items() if k != "model_type"}, "no model_type"),
                       (dict(cfg, model_type="gan"), "unknown model_type")]:
        (tmp_path / "m" / "config.json").write_text(json.dumps(bad))
        with pytest.raises(CheckpointError, match=words):
            load_model(tmp_path / "m")
    with pytest.raises(CheckpointError, match="config.json"):
        load_model(tmp_path / "nothing")
