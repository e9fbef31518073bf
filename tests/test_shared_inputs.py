"""The demo's shared work: model inputs built once for every model that needs the same ones, and
display crops cut once for every method's video -- with results identical to building them anew."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REF = Path(__file__).parent / "data" / "reference"


def _count_builds(monkeypatch, module):
    calls = []
    real = module.build_inputs

    def counting(*args, **kwargs):
        calls.append(kwargs.get("crop_size"))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "build_inputs", counting)
    return calls


def test_predict_dataset_input_cache_reuses_inputs_and_changes_nothing(synth_root, tmp_path, monkeypatch):
    from egopressdiff.data import clips
    from egopressdiff.data.reader import EgoPressureReader
    from egopressdiff.inference import PredictOptions, predict_dataset, select_sequences
    from egopressdiff.shipped import resolve_checkpoint
    from egopressdiff.training.registry import load_model

    model = load_model(resolve_checkpoint("synthetic-baseline-cls"))
    pairs = select_sequences(EgoPressureReader(synth_root), split="all")[:1]
    opts = PredictOptions(overwrite=True, progress=False)
    calls = _count_builds(monkeypatch, clips)

    def predict(run, options=opts, **kw):
        predict_dataset(model, synth_root, tmp_path / run, pairs=pairs, options=options, **kw)

    predict("plain")
    plain = len(calls)
    assert plain > 1  # several windows: the cache has something to share

    cache: dict = {}
    predict("first", input_cache=cache)
    assert len(calls) == 2 * plain and len(cache) == plain
    predict("second", input_cache=cache)
    assert len(calls) == 2 * plain  # the second model built nothing
    # another mesh is another input: built, not taken from the cache
    predict("est", PredictOptions(overwrite=True, progress=False, mesh="estimated"), input_cache=cache)
    assert len(calls) == 3 * plain

    seq = next((tmp_path / "plain").rglob("*.npz")).relative_to(tmp_path / "plain")
    want = np.load(tmp_path / "plain" / seq)["pressure_kpa"]
    for run in ("first", "second"):
        np.testing.assert_array_equal(np.load(tmp_path / run / seq)["pressure_kpa"], want)


def test_cached_inputs_are_copies():
    """A pipeline that works in place on its batch must not change what the next model gets."""
    import torch

    from egopressdiff.inference import _copy_batch, _to_batch

    cached = _to_batch({"rgb": torch.zeros(2, 3), "sequence": "s"})
    got = _copy_batch(cached)
    got["rgb"] += 1
    got["sequence"].append("t")
    assert cached["rgb"].sum() == 0 and cached["sequence"] == ["s"]


def test_render_crop_cache_cuts_crops_once_with_the_same_pictures(tmp_path, monkeypatch):
    from egopressdiff.data import clips
    from egopressdiff.data.reader import EgoPressureReader
    from egopressdiff.evaluation import render, visualize
    from egopressdiff.evaluation.predictions import prediction_path, read_prediction
    from egopressdiff.inference import PredictOptions, predict_dataset
    from egopressdiff.shipped import resolve_checkpoint
    from egopressdiff.training.registry import load_model

    model = load_model(resolve_checkpoint("synthetic-baseline-cls"))
    predict_dataset(model, REF / "data", tmp_path / "pred", split="all", options=PredictOptions(progress=False))
    reader = EgoPressureReader(REF / "data")
    npz = next((tmp_path / "pred").rglob("*.npz"))
    p, s = npz.parent.name, npz.stem
    pred = read_prediction(prediction_path(tmp_path / "pred", p, s))

    videos = []
    monkeypatch.setattr(render, "write_video", lambda frames, path, fps=10: videos.append(list(frames)) or path)
    calls = _count_builds(monkeypatch, clips)
    visualize.render_sequence(reader, pred, p, s, tmp_path / "plain")
    plain = len(calls)
    cache: dict = {}
    for method in ("a", "b"):
        visualize.render_sequence(reader, pred, p, s, tmp_path / method, method=method, crop_cache=cache)
    assert len(calls) == 2 * plain  # the second method cut no crops
    assert len(videos) == 3 and len(videos[0]) == len(reader.predictable_frames(p, s))
    for frames in videos[1:]:
        assert len(frames) == len(videos[0])
        for a, b in zip(frames, videos[0]):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape", [(3, 9, 5, 7), (2, 9, 16)])
def test_decode_classes_matches_argmax(shape):
    import torch

    from egopressdiff.baselines.perframe import BIN_MIDPOINTS_KPA, decode_classes

    logits = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    want = torch.tensor(BIN_MIDPOINTS_KPA)[logits.argmax(dim=1)]
    torch.testing.assert_close(decode_classes(logits), want)
