"""Run configs: presets, YAML files, dotted overrides and the errors for bad keys/types."""

from __future__ import annotations

import pytest
import torch
import yaml

from egopressdiff.config import (
    PRESETS,
    TRAIN_SCHEMA,
    load_run_config,
    resolve_data_options,
    save_run_config,
)
from egopressdiff.errors import ConfigError


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_resolve_completely(name):
    cfg = load_run_config(name)
    assert set(cfg) == {"model", "data", "train"}
    assert set(cfg["train"]) == set(TRAIN_SCHEMA)
    assert cfg["model"]["model_type"] == PRESETS[name]["model"]["model_type"]
    assert cfg["model"]["preset"] in (name, "tiny")


def test_presets_build_their_models():
    """Every preset's model section is accepted by its model class (the baselines and tiny are built)."""
    pytest.importorskip("egopressdiff.models")
    from egopressdiff.training.registry import build_model

    for name in sorted(PRESETS):
        if name in ("svd", "baseline-cls", "baseline-reg", "baseline-pformer"):
            continue  # full size: too big to build in a unit test (baseline-pformer also needs MANO files)
        model = build_model(load_run_config(name)["model"])
        assert model.data_requirements()["clip_length"] >= 1
    uv = build_model(load_run_config("tiny-uv")["model"])
    assert uv.data_requirements()["uv_conditioning"] is True


def test_svd_preset_is_the_papers_size():
    t = load_run_config("svd")["train"]
    assert t["lr"] == 1e-5 and t["batch_size"] == 2 and t["mixed_precision"] == "bf16"
    assert t["gradient_checkpointing"] is True


def test_overrides_parse_values_with_yaml():
    cfg = load_run_config("tiny", ["train.lr=3e-4", "train.max_steps=7", "train.grad_clip=null",
                                   "data.augment=true", "model.unet_channels=[8, 16]", "train.ema=0.99"])
    assert cfg["train"]["lr"] == pytest.approx(3e-4) and isinstance(cfg["train"]["lr"], float)
    assert cfg["train"]["max_steps"] == 7
    assert cfg["train"]["grad_clip"] is None
    assert cfg["data"]["augment"] is True
    assert cfg["model"]["unet_channels"] == [8, 16]  # model fields pass through to the model class
    assert cfg["train"]["ema"] == 0.99


def test_int_is_accepted_for_float_keys():
    assert load_run_config("toy", ["train.lr=1"])["train"]["lr"] == 1.0


@pytest.mark.parametrize(
    "override, words",
    [
        ("train.lrr=1", ["train.lrr"]),
        ("data.clip_len=4", ["data.clip_len"]),
        ("optim.lr=1", ["section"]),
        ("train.max_steps=many", ["train.max_steps", "integer"]),
        ("train.max_steps=2.5", ["train.max_steps", "integer"]),
        ("train.max_steps=true", ["train.max_steps", "integer"]),
        ("train.lr=fast", ["train.lr", "number"]),
        ("train.mixed_precision=fp8", ["train.mixed_precision", "fp16"]),
        ("train.lr_schedule=step", ["train.lr_schedule", "cosine"]),
        ("data.augment=3", ["data.augment", "true/false"]),
        ("train.batch_size=0", ["train.batch_size", "> 0"]),
        ("train.ema=1.5", ["train.ema"]),
        ("train.lr=.nan", ["train.lr", "finite"]),
        ("model.model_type=gan", ["model.model_type"]),
        ("nonsense", ["section.key=value"]),
        ("train.lr=[1", ["train.lr=[1", "parse"]),
    ],
)
def test_bad_overrides_name_the_key(override, words):
    with pytest.raises(ConfigError) as e:
        load_run_config("toy", [override])
    msg = str(e.value)
    for w in words:
        assert w in msg, msg


def test_yaml_file_with_base_and_errors(tmp_path):
    good = tmp_path / "run.yaml"
    good.write_text("base: toy\ntrain:\n  lr: 1e-3\n  max_steps: 9\ndata:\n  toy_size: 6\n")
    cfg = load_run_config(good, ["train.seed=5"])
    assert cfg["train"]["lr"] == pytest.approx(1e-3)  # YAML 1.1 reads 1e-3 as a string: still a number here
    assert cfg["train"]["max_steps"] == 9 and cfg["train"]["seed"] == 5
    assert cfg["model"]["model_type"] == "toy" and cfg["data"]["source"] == "toy"

    bad_key = tmp_path / "bad.yaml"
    bad_key.write_text("base: toy\ntrain:\n  learning_rate: 1\n")
    with pytest.raises(ConfigError, match=r"train\.learning_rate"):
        load_run_config(bad_key)

    bad_section = tmp_path / "bad2.yaml"
    bad_section.write_text("base: toy\noptim: {}\n")
    with pytest.raises(ConfigError, match="optim"):
        load_run_config(bad_section)

    not_yaml = tmp_path / "broken.yaml"
    not_yaml.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml"):
        load_run_config(not_yaml)

    with pytest.raises(ConfigError, match="does not exist"):
        load_run_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="not a preset"):
        load_run_config("tinyy")


def test_yaml_is_loaded_safely(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("base: toy\ntrain: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_run_config(evil)


def test_saved_config_round_trips(tmp_path):
    cfg = load_run_config("toy", ["train.lr=0.05", "train.ema=0.5"])
    save_run_config(cfg, tmp_path / "config.yaml")
    assert yaml.safe_load((tmp_path / "config.yaml").read_text()) == cfg
    assert load_run_config(tmp_path / "config.yaml") == cfg


def test_data_options_merge_with_model_requirements():
    cfg = load_run_config("toy")
    need = {"clip_length": 2, "crop_size": 8, "uv_conditioning": False, "uv_cond_size": None}
    data = resolve_data_options(cfg, need)
    assert data["clip_length"] == 2 and data["crop_size"] == 8 and data["uv_conditioning"] is False
    assert resolve_data_options(load_run_config("toy", ["data.crop_size=8"]), need)["crop_size"] == 8
    with pytest.raises(ConfigError, match=r"data\.crop_size=16"):
        resolve_data_options(load_run_config("toy", ["data.crop_size=16"]), need)


def test_the_package_alone_knows_no_toy_and_reads_old_run_configs(tmp_path):
    """The toy model is the tests' (conftest registers it): a fresh process without it refuses
    model_type/data.source/preset toy, and reads an old RUN/config.yaml that still carries the
    retired data.toy_size."""
    import subprocess
    import sys

    old = load_run_config("tiny")
    old["data"]["toy_size"] = 24  # what every config.yaml of older versions holds
    save_run_config(old, tmp_path / "config.yaml")
    code = f"""
from egopressdiff.config import PRESETS, load_run_config
from egopressdiff.errors import ConfigError
from egopressdiff.training import registry
assert "toy" not in registry.model_types() and "toy" not in registry.data_sources() and "toy" not in PRESETS
for bad in (["model.model_type=toy"], ["data.source=toy"]):
    try:
        load_run_config("tiny", bad)
    except ConfigError:
        pass
    else:
        raise SystemExit("accepted " + bad[0])
cfg = load_run_config({str(tmp_path / "config.yaml")!r})
assert "toy_size" not in cfg["data"]
print("ok")
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


def test_registered_sources_bring_their_options():
    cfg = load_run_config("toy", ["data.toy_size=6"])
    assert cfg["data"]["toy_size"] == 6
    with pytest.raises(ConfigError, match="data.toy_size"):
        load_run_config("toy", ["data.toy_size=many"])
    from egopressdiff.training.registry import register_model_class
    from toy_model import ToyModel

    register_model_class("toy", ToyModel)  # the same class again: fine
    with pytest.raises(ConfigError, match="already registered"):
        register_model_class("egopressdiff", ToyModel)
    with pytest.raises(ConfigError, match="already registered"):
        register_model_class("toy", torch.nn.Linear)
