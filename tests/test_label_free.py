"""`egopressdiff predict` on recordings without ground truth, end to end through the real CLI.

Depends on the input building no longer reading pressure when predicting (data/clips.py's
ClipDataset / build_inputs and inference.predict_dataset); until then `predict` stops with
"missing shard ... pressure.parquet" and these tests fail. The reader and evaluate side is
in test_no_ground_truth.py and passes on its own.

A prediction must not depend on the labels: each stripped sequence is predicted exactly as
the same sequence with its pressure.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from egopressdiff.cli.main import main
from egopressdiff.data.reader import EgoPressureReader
from egopressdiff.evaluation.predictions import prediction_path, read_prediction
from label_free_data import P, label_free_dataset

MODELS = [("synthetic-baseline-reg", []), ("synthetic-egopressdiff", ["--steps", "1"])]


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return label_free_dataset(tmp_path_factory.mktemp("label_free"))


def predict(checkpoint, data, out, extra) -> int:
    return main(["predict", "--checkpoint", checkpoint, "--data", str(data), "--output", str(out), "--split", "all",
                 "--no-progress", *extra])


@pytest.mark.parametrize("checkpoint,extra", MODELS, ids=[m for m, _ in MODELS])
def test_predict_without_ground_truth(ds, tmp_path, capsys, checkpoint, extra):
    free, with_labels = tmp_path / "free", tmp_path / "with_labels"
    assert predict(checkpoint, ds["label_free"], free, extra) == 0, capsys.readouterr().err
    assert predict(checkpoint, ds["original"], with_labels, extra) == 0
    reader = EgoPressureReader(ds["label_free"])
    info = json.loads((free / "predict_info.json").read_text())
    assert sorted(info["sequences"]) == sorted(f"{P}/{ds[k]}" for k in ("no_file", "emptied", "labelled"))
    for key in ("no_file", "emptied", "labelled"):
        s = ds[key]
        pred = read_prediction(prediction_path(free, P, s))
        assert np.array_equal(pred.frame, reader.predictable_frames(P, s))
        assert pred.pressure_kpa.shape == (len(pred.frame), 224, 224)
        assert np.all(np.isfinite(pred.pressure_kpa)) and pred.pressure_kpa.min() >= 0
        same = read_prediction(prediction_path(with_labels, P, s))
        np.testing.assert_allclose(pred.pressure_kpa, same.pressure_kpa, rtol=0, atol=1e-6)

    # scoring them is refused in one line that names the sequence
    capsys.readouterr()
    assert main(["evaluate", "--pred", str(free), "--data", str(ds["label_free"]), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no ground truth to evaluate against" in err[0]
    assert ds["no_file"] in err[0] or ds["emptied"] in err[0]
