"""``predict --mesh estimated`` feeds the estimated-mesh track; data without one get one clear line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

REF = Path(__file__).parent / "data" / "reference" / "data"  # written before the estimated track existed


def _predict(data, out, *extra):
    cmd = [sys.executable, "-m", "egopressdiff", "predict", "--checkpoint", "synthetic-baseline-reg", "--data",
           str(data), "--output", str(out), "--split", "all", "--no-progress", *extra]
    return subprocess.run(cmd, capture_output=True, text=True)


def test_estimated_mesh_on_data_without_the_track_is_one_line_exit_2(tmp_path):
    r = _predict(REF, tmp_path / "pred", "--mesh", "estimated")
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "no estimated-mesh track" in lines[0] and "vertices_estimated" in lines[0]
    assert not list((tmp_path / "pred").rglob("*.npz"))


def test_estimated_mesh_predicts_other_maps_and_is_recorded(tmp_path):
    from egopressdiff.data.synth import generate_dataset

    data = tmp_path / "data"
    generate_dataset(data, participants=1, sequences=1, frames=20, seed=4, image_size=(160, 120), progress=False)
    a, b = _predict(data, tmp_path / "ann"), _predict(data, tmp_path / "est", "--mesh", "estimated")
    assert a.returncode == 0 and b.returncode == 0, (a.stderr, b.stderr)
    info = json.loads((tmp_path / "est" / "predict_info.json").read_text())
    assert info["mesh"] == "estimated"
    (fa,) = (tmp_path / "ann").rglob("*.npz")
    (fb,) = (tmp_path / "est").rglob("*.npz")
    pa, pb = np.load(fa)["pressure_kpa"], np.load(fb)["pressure_kpa"]
    assert pa.shape == pb.shape and not np.array_equal(pa, pb)  # another mesh, other inputs, other maps
    # a re-run into the same folder with the other mesh is refused rather than mixed
    c = _predict(data, tmp_path / "est")
    assert c.returncode == 2 and "mesh estimated -> annotated" in c.stderr
