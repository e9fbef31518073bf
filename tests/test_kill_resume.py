"""Real crashes: SIGKILL an `egopressdiff train` process (also while it writes a checkpoint),
SIGTERM/SIGINT it, then resume -- the result equals an uninterrupted run (CPU, fixed seed).

The processes run tests/train_launcher.py: the console entry point with the toy model
registered and the slowing callbacks of tests/train_callbacks.py injected."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from egopressdiff.training.checkpoint import list_checkpoints
from egopressdiff.training.loop import train
from toy_training import assert_same_weights, model_weights, toy_config
from train_callbacks import StepSleep

LAUNCHER = Path(__file__).with_name("train_launcher.py")

SETS = ["train.checkpoint_every=3", "train.keep_checkpoints=10", "train.grad_accum=2", "data.toy_size=10",
        "train.val_every=0"]
STEPS = 15


def _cmd(run: Path, *extra: str, test_options: tuple = ()) -> list[str]:
    sets = [a for s in SETS for a in ("--set", s)]
    return [sys.executable, str(LAUNCHER), *map(str, test_options), "train", "--config", "toy",
            "--output", str(run), "--max-steps", str(STEPS), "--no-progress", *sets, *extra]


def _env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def _wait_for(cond, proc, timeout=60.0):
    t0 = time.time()
    while not cond():
        if proc.poll() is not None:
            raise AssertionError(f"train exited early with {proc.returncode}: {proc.stderr.read()}")
        if time.time() - t0 > timeout:
            proc.kill()
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def _steps(run: Path) -> list[int]:
    return [s for s, _ in list_checkpoints(run / "checkpoints")]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    run = tmp_path_factory.mktemp("ref") / "run"
    train(toy_config(*SETS), None, run, max_steps=STEPS, progress=False)
    return model_weights(run / "model")


def _resume(run: Path) -> None:
    res = subprocess.run(_cmd(run, "--resume"), env=_env(), capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr


def test_sigkill_between_and_during_checkpoints(tmp_path, reference):
    # 1) killed between steps, after at least one complete checkpoint
    run = tmp_path / "run"
    proc = subprocess.Popen(_cmd(run, test_options=("--step-sleep", 0.15)), env=_env(), stderr=subprocess.PIPE,
                            text=True)
    _wait_for(lambda: len(_steps(run)) >= 1, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert _steps(run) and _steps(run)[-1] < STEPS and not (run / "model").exists()

    # 2) resumed, then killed while writing the checkpoint of step >= 9 (paused half-way through it)
    marker = tmp_path / "saving"
    pause = ("--save-pause", 60, "--save-pause-from", 9, "--save-marker", marker)
    proc = subprocess.Popen(_cmd(run, "--resume", test_options=pause), stderr=subprocess.PIPE, text=True, env=_env())
    _wait_for(marker.exists, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    being_written = int(marker.read_text())
    tmp_dir = run / "checkpoints" / f".step-{being_written:06d}.tmp"
    assert tmp_dir.is_dir() and not (tmp_dir / "complete").exists()  # the half-written checkpoint ...
    assert being_written not in _steps(run) and max(_steps(run)) < being_written  # ... is not a checkpoint

    # 3) resumed again: continues from the newest complete checkpoint, same result as no crash
    _resume(run)
    assert not tmp_dir.exists()  # stale temporary folder cleaned up
    assert_same_weights(reference, model_weights(run / "model"))
    assert json.loads((run / "train_summary.json").read_text())["steps"] == STEPS


def _check_stopped_run(run: Path, sig_name: str) -> None:
    last = _steps(run)[-1]
    # the state at the stop is checkpointed ("interrupted", or "periodic" when the signal came just
    # after a periodic checkpoint and nothing was trained since)
    state = json.loads((run / "checkpoints" / f"step-{last:06d}" / "state.json").read_text())
    assert state["saved_because"] in ("interrupted", "periodic") and last < STEPS
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["steps"] == last and summary["interrupted"] == sig_name
    assert (run / "model" / "model.safetensors").is_file()


def test_sigterm_saves_checkpoint_and_exits_143(tmp_path, reference):
    run = tmp_path / "run"
    proc = subprocess.Popen(_cmd(run, test_options=("--step-sleep", 0.15)), env=_env(), stderr=subprocess.PIPE,
                            text=True)
    _wait_for(lambda: len(_steps(run)) >= 1, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "stopped at step" in err
    _check_stopped_run(run, "SIGTERM")
    train(toy_config(*SETS), None, run, resume=True, max_steps=STEPS, progress=False)
    assert_same_weights(reference, model_weights(run / "model"))


def test_sigint_in_process_stops_with_130(tmp_path, reference):
    run = tmp_path / "run"

    def interrupt_when_checkpointed():
        t0 = time.time()
        while not _steps(run) and time.time() - t0 < 60:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=interrupt_when_checkpointed, daemon=True)
    thread.start()
    summary = train(toy_config(*SETS), None, run, max_steps=STEPS, progress=False, callbacks=[StepSleep(0.1)])
    thread.join()
    assert summary["exit_code"] == 130
    _check_stopped_run(run, "SIGINT")
    train(toy_config(*SETS), None, run, resume=True, max_steps=STEPS, progress=False)
    assert_same_weights(reference, model_weights(run / "model"))
