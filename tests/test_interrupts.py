"""Interruptions outside training: SIGINT / SIGTERM / SIGKILL during `predict` and `synth`.

`predict` keeps the sequences it finished, never leaves a half-written file under a final
name, exits 130 (SIGINT) / 143 (SIGTERM), and a re-run completes the rest while skipping the
finished ones. `synth` builds its dataset beside OUT and renames it only when complete.
The processes are real (`python -c` running the console entry point); predict is slowed by
a wrapper that sleeps in PredictionWriter.put, so the signal lands mid-sequence.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from egopressdiff.cli.main import main
from egopressdiff.evaluation.predictions import list_predictions, read_prediction

SEQS = ["p_001_index_press_high_x5_right", "p_001_pinch-zoom_5x_right", "p_001_press_palm_high_x5_right"]
FRAMES = 5

SLOW_MAIN = """
import os, sys, time
import egopressdiff.evaluation.predictions as P
_put = P.PredictionWriter.put
def slow_put(self, *a, **k):
    time.sleep(float(os.environ["EGOPRESSDIFF_TEST_SLOW_PUT"]))
    return _put(self, *a, **k)
P.PredictionWriter.put = slow_put
from egopressdiff.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory, make_sequence, fake_mano_dir):
    from egopressdiff.config import load_run_config
    from egopressdiff.training.registry import build_model

    base = tmp_path_factory.mktemp("interrupts")
    for i, s in enumerate(SEQS):
        make_sequence(base / "data", "p_001", s, FRAMES, seed=i)
    build_model(load_run_config("baseline-reg-tiny")["model"]).save_pretrained(base / "model")
    return base


def _sigint_default():
    """Run the child as if started from a terminal: a non-interactive shell that starts the test run
    in the background (``cmd &``) leaves SIGINT ignored in every descendant, and Python then (rightly)
    keeps ignoring it, so Ctrl-C could not be tested."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _env(**kw):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("EGOPRESSDIFF_DEBUG", None)
    env.update({k: str(v) for k, v in kw.items()})
    return env


def _predict_argv(setup, out):
    return ["predict", "--checkpoint", str(setup / "model"), "--data", str(setup / "data"), "--output", str(out),
            "--split", "all", "--no-progress"]


def _final_npz(out: Path) -> list[Path]:
    return sorted(p for p in out.glob("*/*.npz") if not p.name.startswith("."))


def _wait_for(cond, proc, timeout=90.0):
    t0 = time.time()
    while not cond():
        if proc.poll() is not None:
            raise AssertionError(f"process ended early ({proc.returncode}): {proc.stderr.read()}")
        if time.time() - t0 > timeout:
            proc.kill()
            raise AssertionError("timed out")
        time.sleep(0.01)


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGKILL, -9)],
                         ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_interrupted_predict_keeps_finished_sequences_and_resumes(setup, tmp_path, sig, code, capsys):
    out = tmp_path / "pred"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_MAIN, *_predict_argv(setup, out)], env=_env(
        EGOPRESSDIFF_TEST_SLOW_PUT=0.3), preexec_fn=_sigint_default, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # after the first sequence is complete, wait until the second one is being written, then signal
    _wait_for(lambda: len(_final_npz(out)) >= 1, proc)
    _wait_for(lambda: any(p.name.endswith(".tmp") for p in out.glob("*/.*")), proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    if sig != signal.SIGKILL:
        assert "Traceback" not in err
        assert err.strip().splitlines()[-1].endswith("finished outputs were kept, unfinished ones removed")
    done = _final_npz(out)
    assert 1 <= len(done) < len(SEQS)
    for f in done:  # every file under a final name is complete
        assert len(read_prediction(f)) == FRAMES
    assert not (out / "predict_info.json").exists()
    leftovers = [p for p in out.rglob(".*")]
    if sig == signal.SIGKILL:
        assert all(p.name.endswith(".tmp") for p in leftovers)  # only hidden temporaries can survive a SIGKILL
    else:
        assert leftovers == []  # SIGINT/SIGTERM unwind: temporaries removed
    mtimes = {f: f.stat().st_mtime_ns for f in done}

    capsys.readouterr()
    assert main(_predict_argv(setup, out)) == 0
    printed = capsys.readouterr().out
    assert f"predicted {len(SEQS) - len(done)} sequences" in printed and f"skipped {len(done)}" in printed
    assert {f: f.stat().st_mtime_ns for f in done} == mtimes  # finished ones untouched
    assert sorted(s for _, s, _ in list_predictions(out)) == sorted(SEQS)
    for _, _, f in list_predictions(out):
        assert len(read_prediction(f)) == FRAMES
    assert (out / "predict_info.json").is_file()


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
def test_interrupted_synth_leaves_no_dataset(tmp_path, sig, code):
    out = tmp_path / "synth"
    proc = subprocess.Popen([sys.executable, "-m", "egopressdiff", "synth", str(out), "--participants", "1",
                             "--sequences", "6", "--frames", "40", "--image-size", "64x48", "--no-progress"],
                            env=_env(), preexec_fn=_sigint_default, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    # the dataset is built in a hidden sibling; signal once its first sequence is written there
    _wait_for(lambda: any(tmp_path.glob(".synth.*.tmp/data/*/*")), proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # the temporary is gone too


def test_synth_writes_calibration_before_the_data_folder(tmp_path, monkeypatch):
    """A sequence is listed by its data folder; it must never appear without its calibration."""
    import egopressdiff.fsutil as fsutil
    from conftest import make_sequence_files
    from egopressdiff.data import layout, writer

    seen = []
    real = fsutil.atomic_dir

    def spy(path, *a, **k):
        seen.append(("data", layout.config_path(tmp_path, "p_001", "p_001_pinch-zoom_5x_right").is_file()))
        return real(path, *a, **k)

    monkeypatch.setattr(writer.fsutil, "atomic_dir", spy)
    make_sequence_files(tmp_path, "p_001", "p_001_pinch-zoom_5x_right", 2)
    assert seen == [("data", True)]


def test_reports_are_written_atomically(tmp_path, monkeypatch):
    """index.html goes through a temporary + rename: a failure while writing keeps the old report."""
    import egopressdiff.fsutil as fsutil
    from egopressdiff.evaluation.report import write_report

    (tmp_path / "index.html").write_text("old report")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(fsutil.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_report(tmp_path, "t", {}, [])
    assert (tmp_path / "index.html").read_text() == "old report"
    assert [p.name for p in tmp_path.iterdir()] == ["index.html"]
