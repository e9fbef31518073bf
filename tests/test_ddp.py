"""Two-process CPU (gloo) training under torchrun: every rank ends with identical weights.

Ranks see different clips (sharded sampler) and draw different noise (per-rank seeds), so
their weights can only agree if DDP averaged the gradients -- i.e. the forward went through
the wrapped module and the optimizer held that module's parameters.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

# the console entry point with the toy model registered and a callback dumping every rank's weights
LAUNCHER = str(Path(__file__).with_name("train_launcher.py"))


def test_two_process_torchrun_keeps_ranks_identical(tmp_path):
    run, dump = tmp_path / "run", tmp_path / "ranks"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           LAUNCHER, "--rank-weights", str(dump), "train", "--config", "toy", "--output", str(run), "--max-steps", "6",
           "--no-progress", "--set", "train.checkpoint_every=3", "--set", "train.val_every=3",
           "--set", "train.grad_accum=2", "--set", "data.toy_size=12"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-3000:]
    w0, w1 = load_file(str(dump / "rank-0.safetensors")), load_file(str(dump / "rank-1.safetensors"))
    assert w0.keys() == w1.keys()
    for k in w0:
        assert torch.equal(w0[k], w1[k]), f"{k} differs between ranks"
    saved = load_file(str(run / "model" / "model.safetensors"))
    assert all(torch.equal(saved[k], w0[k]) for k in w0)
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 6
    assert len(summary["val_losses"]) == 2
    # both ranks wrote their RNG state into every checkpoint
    for step in ("step-000003", "step-000006"):
        rng = run / "checkpoints" / step / "rng"
        assert (rng / "rank-0.json").is_file() and (rng / "rank-1.json").is_file()


@pytest.mark.slow
def test_two_process_torchrun_tiny_egopressdiff(tmp_path, fake_root):
    """The acceptance case: the tiny EgoPressDiff on a small EgoPressure-layout dataset, 2 ranks."""
    pytest.importorskip("egopressdiff.models")
    run, dump = tmp_path / "run", tmp_path / "ranks"
    sets = ["model.clip_length=2", "model.crop_size=32", "data.stride=4", "train.batch_size=1",
            "train.checkpoint_every=2", "train.val_every=0"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           LAUNCHER, "--rank-weights", str(dump), "train", "--config", "tiny", "--data", str(fake_root),
           "--output", str(run),
           "--max-steps", "2", "--no-progress", *[a for s in sets for a in ("--set", s)]]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    w0, w1 = load_file(str(dump / "rank-0.safetensors")), load_file(str(dump / "rank-1.safetensors"))
    assert w0.keys() == w1.keys() and len(w0) > 10
    for k in w0:
        assert torch.equal(w0[k], w1[k]), f"{k} differs between ranks"
    assert json.loads((run / "train_summary.json").read_text())["world_size"] == 2
