"""Helpers for the training tests: toy run configs and weight comparison."""

from __future__ import annotations

import shutil
from pathlib import Path

from safetensors.torch import load_file

from egopressdiff.config import load_run_config


def toy_config(*overrides: str) -> dict:
    """The ``toy`` preset with ``section.key=value`` overrides (validation off unless asked)."""
    return load_run_config("toy", ["train.val_every=0", *overrides])


def model_weights(model_dir: Path) -> dict:
    """The toy model's tensors from a save_pretrained folder."""
    return load_file(str(Path(model_dir) / "model.safetensors"))


def assert_same_weights(a: dict, b: dict) -> None:
    import torch

    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"tensor {k} differs"


def crash_copy(run: Path, dst: Path, keep_up_to: int) -> Path:
    """A copy of ``run`` as a crash right after checkpoint ``keep_up_to`` would have left it."""
    shutil.copytree(run, dst)
    for p in (dst / "checkpoints").iterdir():
        if p.name.startswith("step-") and int(p.name[5:]) > keep_up_to:
            shutil.rmtree(p)
    shutil.rmtree(dst / "model")
    (dst / "train_summary.json").unlink()
    return dst
