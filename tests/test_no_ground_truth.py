"""Recordings without ground truth (no pressure.parquet, or only empty pressure cells in it).

The reader treats pressure as optional: such a sequence has the same frames to predict as
with its labels, `info` lists it, and `evaluate` / `render` refuse it in one line (exit 2)
that names the sequence and says there is no ground truth. The end-to-end `predict` on such
data is in test_label_free.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from egopressdiff.cli.main import main
from egopressdiff.data import layout
from egopressdiff.data.reader import EgoPressureReader
from egopressdiff.errors import DataError
from egopressdiff.evaluation.predictions import write_prediction
from label_free_data import P, label_free_dataset


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return label_free_dataset(tmp_path_factory.mktemp("no_ground_truth"))


def write_zero_predictions(pred_root, data_root, sequences) -> None:
    reader = EgoPressureReader(data_root)
    for s in sequences:
        frames = reader.predictable_frames(P, s)
        write_prediction(pred_root, P, s, frames, np.zeros((len(frames), 224, 224), np.float32))


def error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_reader_pressure_is_optional(ds):
    r, before = EgoPressureReader(ds["label_free"]), EgoPressureReader(ds["original"])
    for s in (ds["no_file"], ds["emptied"]):
        assert before.has_pressure(P, s) and not r.has_pressure(P, s)
        assert len(r.pressure_frames(P, s)) == 0
        # the frames to predict do not depend on the labels
        frames = r.predictable_frames(P, s)
        assert len(frames) > 0 and np.array_equal(frames, before.predictable_frames(P, s))
        assert set(frames) <= set(r.annotated_frames(P, s))
        r.validate_sequence(P, s)
        fr = r.load_frame(P, s, int(frames[0]))
        assert fr["pressure_kpa"] is None and fr["force_kpa"] is None
        assert fr["rgb"].shape == (72, 96, 3) and fr["vertices_cam"].shape == (778, 3)
        with pytest.raises(DataError, match=rf"no ground truth to evaluate against: {P}/{s} has no pressure.*"
                                            rf"sequence {s}, file .*pressure\.parquet"):
            r.require_pressure(P, s)
    assert r.has_pressure(P, ds["labelled"])
    assert set(r.annotated_frames(P, ds["labelled"])) <= set(r.pressure_frames(P, ds["labelled"]))
    r.require_pressure(P, ds["labelled"])
    # asking for a pressure map that is not there is still an error, never a zero map
    with pytest.raises(DataError, match=rf"missing shard.*sequence {ds['no_file']}"):
        r.load_pressure(P, ds["no_file"], int(r.predictable_frames(P, ds["no_file"])[0]))
    with pytest.raises(DataError, match=rf"is null.*sequence {ds['emptied']}"):
        r.load_pressure(P, ds["emptied"], int(r.predictable_frames(P, ds["emptied"])[0]))


def test_a_damaged_pressure_file_is_not_taken_for_no_labels(ds, tmp_path):
    import shutil

    root = tmp_path / "damaged"
    shutil.copytree(ds["original"], root)
    s = ds["labelled"]
    layout.shard_path(root, P, s, layout.PRESSURE_SHARD).write_bytes(b"PAR1 broken")
    with pytest.raises(DataError, match=rf"cannot read Parquet shard.*sequence {s}.*pressure\.parquet"):
        EgoPressureReader(root).has_pressure(P, s)


def test_info_lists_sequences_without_ground_truth(ds, tmp_path, capsys):
    out = tmp_path / "info.json"
    assert main(["info", str(ds["label_free"]), "--check", "--full", "--json", str(out)]) == 0
    rows = {r["sequence"]: r for r in json.loads(out.read_text())["sequences"]}
    assert rows[ds["no_file"]]["has_pressure"] is False and rows[ds["emptied"]]["has_pressure"] is False
    assert rows[ds["labelled"]]["has_pressure"] is True
    assert rows[ds["no_file"]]["annotated"] > 0 and rows[ds["no_file"]]["contact_frames"] == 0


@pytest.mark.parametrize("which,what", [("no_file", "no pressure.parquet"),
                                        ("emptied", "no pressure map on any annotated frame")])
def test_evaluate_says_there_is_no_ground_truth(ds, tmp_path, capsys, which, what):
    s = ds[which]
    pred, metrics = tmp_path / "pred", tmp_path / "metrics.json"
    write_zero_predictions(pred, ds["label_free"], [ds["labelled"], s])
    rc = main(["evaluate", "--pred", str(pred), "--data", str(ds["label_free"]), "--json", str(metrics),
               "--no-progress"])
    assert rc == 2
    line = error_line(capsys)
    assert line.startswith(f"egopressdiff evaluate: error: no ground truth to evaluate against: {P}/{s} has {what}")
    assert f"sequence {s}" in line and "Traceback" not in line
    assert not metrics.exists()


def test_evaluate_still_scores_labelled_sequences(ds, tmp_path, capsys):
    pred = tmp_path / "pred"
    write_zero_predictions(pred, ds["label_free"], [ds["labelled"]])
    assert main(["evaluate", "--pred", str(pred), "--data", str(ds["label_free"]), "--no-progress"]) == 0


def test_render_says_there_is_no_ground_truth(ds, tmp_path, capsys):
    s = ds["no_file"]
    pred, out = tmp_path / "pred", tmp_path / "pics"
    write_zero_predictions(pred, ds["label_free"], [s])
    assert main(["render", "--pred", str(pred), "--data", str(ds["label_free"]), "--output", str(out),
                 "--no-metrics", "--no-progress"]) == 2
    line = error_line(capsys)
    assert f"no ground truth to draw beside the prediction: {P}/{s} has no pressure.parquet" in line
    assert not (out / "index.html").exists()
