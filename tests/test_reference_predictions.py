"""The shipped models predict what they predicted when they were shipped.

tests/data/reference holds an 18-frame synthetic sequence (written by the generator of that
time, so it does not change when the generator does) and each shipped model's prediction of
it, made by the code of that time. Every refactor of the data path, the models, the
scheduler or the pipeline must reproduce them within float tolerance.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

REF = Path(__file__).parent / "data" / "reference"
MANIFEST = json.loads((REF / "manifest.json").read_text())


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_shipped_model_reproduces_its_reference_prediction(name, tmp_path):
    from egopressdiff.inference import PredictOptions, predict_dataset
    from egopressdiff.shipped import resolve_checkpoint
    from egopressdiff.training.registry import load_model

    entry = MANIFEST[name]
    settings = entry["settings"]
    model = load_model(resolve_checkpoint(name))
    assert getattr(model.config, "output_floor_kpa", None) == settings["output_floor_kpa"]
    opts = PredictOptions(steps=settings["steps"], samples=settings["samples"], window=settings["window"],
                          overlap=settings["overlap"], seed=settings["seed"], progress=False)
    predict_dataset(model, REF / "data", tmp_path, split="all", options=opts)
    got = np.load(tmp_path / "p_001" / f"{entry['sequence']}.npz")
    want = np.load(REF / f"{name}.npz")
    np.testing.assert_array_equal(got["frame"], want["frame"])
    assert want["pressure_kpa"].max() > 1.0  # the reference shows contact: the comparison means something
    np.testing.assert_allclose(got["pressure_kpa"], want["pressure_kpa"], rtol=1e-4, atol=1e-4)
