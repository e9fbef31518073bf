"""Frozen-encoder cache (training/cache.py): built once, reused, invalidated, loss-identical."""

from __future__ import annotations

import os
import shutil

import pytest
import torch
from torch.utils.data import default_collate

pytest.importorskip("egopressdiff.models")

from egopressdiff.data.clips import ClipDataset  # noqa: E402
from egopressdiff.errors import ConfigError  # noqa: E402
from egopressdiff.models import EgoPressDiff  # noqa: E402
from egopressdiff.training.cache import CachedClipDataset, check_cacheable, prepare_cache  # noqa: E402


@pytest.fixture()
def data_copy(fake_root, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(fake_root, root)
    return root


def _model(**kw):
    torch.manual_seed(0)
    return EgoPressDiff.from_config("tiny", clip_length=2, crop_size=32, **kw)


def _dataset(root, model, split="train"):
    return ClipDataset(root, split=split, clip_length=2, stride=4, crop_size=model.config.crop_size)


class _Counter:
    """Counts calls of the model's frozen encoders."""

    def __init__(self, model, monkeypatch):
        self.calls = 0
        for name in ("encode_conditions", "encode_targets"):
            orig = getattr(model, name)

            def wrapped(batch, _orig=orig):
                self.calls += 1
                return _orig(batch)

            monkeypatch.setattr(model, name, wrapped)


def test_built_once_then_reused(data_copy, tmp_path, monkeypatch):
    model = _model()
    ds = _dataset(data_copy, model)
    count = _Counter(model, monkeypatch)
    cache = prepare_cache(model, ds, tmp_path / "cache", progress=False)
    assert count.calls > 0 and len(cache) == len(ds)
    built = count.calls
    again = prepare_cache(model, ds, tmp_path / "cache", progress=False)
    assert count.calls == built  # no re-encoding on the second run
    assert again.folder == cache.folder
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [cache.folder.name]
    # the cached inputs equal the dataset's, the frozen outputs equal a fresh encoding
    for i in (0, len(ds) - 1):
        ref, item = ds[i], cache[i]
        for k in ("vertices", "pose_map", "uv_mask", "frame"):
            assert torch.equal(torch.as_tensor(ref[k]), item[k]), k
        assert (ref["participant"], ref["sequence"], ref["hand_side"]) == (
            item["participant"], item["sequence"], item["hand_side"])
        batch = default_collate([ref])
        with torch.no_grad():
            enc = {**model.encode_conditions(batch), **model.encode_targets(batch)}
        for k, v in enc.items():
            torch.testing.assert_close(item[k], v[0], rtol=1e-5, atol=1e-6)
    # a reader that opens the folder directly sees the same
    assert len(CachedClipDataset(cache.folder)) == len(ds)


def test_invalidated_when_data_changes(data_copy, tmp_path, monkeypatch):
    model = _model()
    first = prepare_cache(model, _dataset(data_copy, model), tmp_path / "cache", progress=False)
    count = _Counter(model, monkeypatch)
    shard = next((data_copy / "data").rglob("pressure.parquet"))
    st = shard.stat()
    os.utime(shard, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # a rewritten shard
    second = prepare_cache(model, _dataset(data_copy, model), tmp_path / "cache", progress=False)
    assert count.calls > 0 and second.folder != first.folder
    assert not first.folder.exists()  # the stale cache of this split is gone


def test_invalidated_when_encoder_weights_change(data_copy, tmp_path, monkeypatch):
    model = _model()
    ds = _dataset(data_copy, model)
    first = prepare_cache(model, ds, tmp_path / "cache", progress=False)
    with torch.no_grad():
        next(model.image_encoder.parameters()).add_(0.01)
    count = _Counter(model, monkeypatch)
    second = prepare_cache(model, ds, tmp_path / "cache", progress=False)
    assert count.calls > 0 and second.folder != first.folder
    # a trainable-part change does not invalidate it
    with torch.no_grad():
        next(model.denoiser.parameters()).add_(0.01)
    calls = count.calls
    assert prepare_cache(model, ds, tmp_path / "cache", progress=False).folder == second.folder
    assert count.calls == calls


def test_cached_loss_equals_uncached(data_copy, tmp_path):
    model = _model()
    ds = _dataset(data_copy, model)
    cache = prepare_cache(model, ds, tmp_path / "cache", progress=False)
    idx = [0, len(ds) - 1]
    plain = default_collate([ds[i] for i in idx])
    cached = default_collate([cache[i] for i in idx])
    assert not {"rgb", "depth", "pressure"} & set(cached)  # the frozen encoders cannot run on it
    model.train()
    torch.manual_seed(7)
    a = model.training_loss(plain)
    torch.manual_seed(7)
    b = model.training_loss(cached)
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_refusals(data_copy):
    model = _model()
    with pytest.raises(ConfigError, match="augment"):
        check_cacheable(model, {"source": "egopressure", "augment": True})
    with pytest.raises(ConfigError, match="frozen"):
        check_cacheable(_model(train_image_encoder=True))
    from toy_model import ToyModel

    with pytest.raises(ConfigError, match="no frozen encoders"):
        check_cacheable(ToyModel.from_config("toy"))


def test_train_loop_with_cache_matches_without(fake_root, tmp_path):
    """`egopressdiff train` with train.cache_encoders=true: same losses and weights as without;
    --build-cache builds the cache alone and a later run reuses it."""
    from egopressdiff.cli.main import main
    from egopressdiff.config import load_run_config
    from egopressdiff.training.loop import train
    from egopressdiff.training.registry import load_model

    sets = ["model.clip_length=2", "model.crop_size=32", "data.stride=4", "train.batch_size=1",
            "train.checkpoint_every=10", "train.val_every=2", "train.val_batches=1", "train.log_every=1"]
    plain = train(load_run_config("tiny", sets), fake_root, tmp_path / "plain", max_steps=2, progress=False)
    run = tmp_path / "cached"
    args = ["train", "--config", "tiny", "--data", str(fake_root), "--output", str(run), "--no-progress"]
    for s in sets:
        args += ["--set", s]
    assert main(args + ["--build-cache"]) == 0
    folders = sorted(p.name for p in (run / "cache").iterdir())
    assert [f.split("-")[0] for f in folders] == ["train", "val"]
    mtimes = {f: (run / "cache" / f / "index.json").stat().st_mtime_ns for f in folders}
    assert main(args + ["--max-steps", "2", "--set", "train.cache_encoders=true"]) == 0
    assert {f: (run / "cache" / f / "index.json").stat().st_mtime_ns for f in folders} == mtimes  # reused
    import json

    cached = json.loads((run / "train_summary.json").read_text())
    for (s1, l1), (s2, l2) in zip(plain["last_losses"], cached["last_losses"]):
        assert s1 == s2 and l1 == pytest.approx(l2, rel=1e-5)
    assert plain["val_losses"][0][1] == pytest.approx(cached["val_losses"][0][1], rel=1e-5)
    a, b = load_model(tmp_path / "plain" / "model").state_dict(), load_model(run / "model").state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-6)
