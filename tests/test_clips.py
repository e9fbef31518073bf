"""ClipDataset: clip boundaries, item contract, crop smoothing, UV conditioning, DataLoader workers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from egopressdiff.data import layout
from egopressdiff.data.clips import (
    ClipDataset,
    clip_starts,
    hand_crop_boxes,
    longest_runs,
    smooth_boxes,
)
from egopressdiff.data.reader import EgoPressureReader
from egopressdiff.errors import DataError

SMALL = dict(clip_length=4, stride=3, crop_size=32, uv_size=64)


@pytest.fixture(scope="module")
def ds(fake_root):
    return ClipDataset(fake_root, **SMALL)


def test_runs_and_starts():
    assert longest_runs(np.array([3, 4, 5, 7, 8, 10])) == [(3, 3), (7, 2), (10, 1)]
    assert clip_starts(9, 4, 3) == [0, 3, 5]  # end-aligned extra clip covers the tail
    assert clip_starts(10, 4, 3) == [0, 3, 6]
    assert clip_starts(3, 4, 1) == []


def test_clips_never_cross_gaps_unannotated_or_dropped_frames(ds, fake_root):
    r = EgoPressureReader(fake_root)
    assert len(ds) > 0
    covered = set()
    for i in range(len(ds)):
        p, s, frames = ds.clip_frames(i)
        assert np.all(np.diff(frames) == 1)
        usable = set(ds.usable_frames(p, s).tolist())
        assert set(frames.tolist()) <= usable
        assert set(frames.tolist()) <= set(r.annotated_frames(p, s).tolist())
        covered |= {(s, int(f)) for f in frames}
    s1, s2 = "p_001_press_palm_high_x5_right", "p_001_index_press_high_x5_left"
    for bad in (1, 2, 12, 20):  # unannotated 1, 2, 20; 12 missing from every shard
        assert (s1, bad) not in covered
    assert (s2, 7) not in covered  # dropped by the colour camera
    # every usable frame of a run long enough is in some clip (nothing silently lost)
    assert {(s1, f) for f in (3, 11, 13, 19, 21, 24)} <= covered


def test_item_contract(ds, fake_root):
    item = ds[0]
    N, S, U = 4, 32, 64
    shapes = {"rgb": (N, 3, S, S), "depth": (N, 1, S, S), "depth_valid": (N, 1, S, S), "pose_map": (N, 3, S, S),
              "vertices": (N, 778, 3), "pressure": (N, U, U), "uv_mask": (U, U), "frame": (N,)}
    for k, shp in shapes.items():
        assert tuple(item[k].shape) == shp, k
        assert item[k].dtype == (torch.int64 if k == "frame" else torch.float32), k
    assert "uv_cond" not in item
    assert item["participant"] == "p_001" and item["hand_side"] in ("left", "right")
    assert 0 <= item["rgb"].min() and item["rgb"].max() <= 1 and item["pose_map"].max() <= 1
    assert item["depth"].abs().max() <= 1 and set(item["depth_valid"].unique().tolist()) <= {0.0, 1.0}
    assert item["depth_valid"].mean() > 0.7
    assert torch.all(item["depth"][item["depth_valid"] == 0] == 0)
    # the fake hand is skin-coloured (red > blue) at the crop centre
    centre = item["rgb"][:, :, 12:20, 12:20]
    assert (centre[:, 0] - centre[:, 2]).mean() > 0.1
    # vertices are in the camera frame, pressure in kPa (fake: 5 + frame inside a block)
    r = EgoPressureReader(fake_root)
    p, s, frames = ds.clip_frames(0)
    np.testing.assert_allclose(item["vertices"][1].numpy(), r.load_annotation(p, s, int(frames[1])).vertices_cam,
                               atol=1e-6)
    assert item["vertices"][..., 2].min() > 0.4
    assert item["pressure"].max() == pytest.approx(5.0 + frames[-1], rel=1e-4)
    assert torch.equal(item["frame"], torch.from_numpy(frames))
    # the pose map draws coloured bones
    assert (item["pose_map"].sum(dim=1) > 0).float().mean() > 0.01


def test_depth_normalisation_matches_registered_depth(ds, fake_root):
    """The crop's normalised depth, undone, lies between hand and pad depth (metres)."""
    item = ds[0]
    v = item["vertices"].numpy()
    d_ref = np.median(v[..., 2])
    metres = item["depth"].numpy() * 0.15 + d_ref
    valid = item["depth_valid"].numpy() > 0
    assert metres[valid].min() > v[..., 2].min() - 0.01
    assert metres[valid].max() < 0.52  # the pad is ~0.5 m away


def test_crop_smoothing_reduces_jitter():
    rng = np.random.default_rng(0)
    t = np.arange(16)
    true = np.stack([100 + 3 * t, 80 + 0.5 * t], axis=1).astype(float)
    raw = true + rng.normal(0, 4.0, true.shape)
    sides = 60 + rng.normal(0, 5, 16)
    smooth, side = smooth_boxes(raw, sides)

    def jitter(c):
        return np.abs(np.diff(c, n=2, axis=0)).mean()

    assert jitter(smooth) < 0.5 * jitter(raw)
    assert side == sides.max()
    # a steady motion is followed, not lagged (centred window)
    assert np.abs(smooth - true)[2:-2].mean() < np.abs(raw - true)[2:-2].mean()


def test_crop_box_is_smoothed_in_items(fake_root):
    """Head jitter in the fake data moves the raw hand box; the crop boxes the items use move less."""
    ds = ClipDataset(fake_root, sequences=["p_002_pinch-zoom_5x_right"], clip_length=12, stride=12, crop_size=32,
                     uv_size=64)
    item = ds[0]
    r = ds.reader
    p, s, frames = ds.clip_frames(0)
    intr = r.intrinsics(p, s)
    boxes, raw = hand_crop_boxes(item["vertices"].numpy().astype(np.float64), intr)
    assert np.all(boxes[:, 2] - boxes[:, 0] == boxes[0, 2] - boxes[0, 0])  # one side for the clip
    assert np.all(boxes[:, 3] - boxes[:, 1] == boxes[0, 2] - boxes[0, 0])
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2

    def jitter(c):
        return np.abs(np.diff(c, n=2, axis=0)).mean()

    assert jitter(raw) > 0.5  # the fake head jitter is visible
    assert jitter(centres) < 0.6 * jitter(raw)
    # the item was cut with these boxes: the wrist drawn in the pose map sits where the box puts it
    from egopressdiff.data.calibration import project
    from egopressdiff.data.clips import crop_intrinsics

    for i in (0, 5):
        b = boxes[i]
        ck = crop_intrinsics(intr, b[0], b[1], b[2] - b[0], 32)
        wrist = project(r.load_annotation(p, s, int(frames[i])).joints_cam[0], ck)
        x, y = np.rint(wrist).astype(int)
        assert item["pose_map"][i, :, y, x].min() > 0.9  # the wrist dot is white


def test_uv_conditioning_channels(fake_root):
    ds = ClipDataset(fake_root, uv_conditioning=True, uv_cond_size=32, **SMALL)
    item = ds[0]
    cond = item["uv_cond"].numpy()
    assert cond.shape == (4, 7, 32, 32)
    atlas = ds.reader.atlas(item["participant"], item["sequence"])
    mask = atlas.mask(32) > 0
    assert np.all(cond[:, :, ~mask] == 0)
    # channel 6: height above the pad from the world-frame texel points
    p, s, frames = ds.clip_frames(0)
    vw = ds.reader.load_annotation(p, s, int(frames[0])).vertices
    height = np.clip(-atlas.texel_points(vw, 32)[..., 2] / 0.02, -1, 1)
    np.testing.assert_allclose(cond[0, 6][mask], height[mask], atol=1e-5)
    # the sheet faces the camera: almost all texels visible, sampled colour is skin-like (red > blue)
    assert cond[:, 5][:, mask].mean() > 0.8
    assert (cond[:, 0][:, mask] - cond[:, 2][:, mask]).mean() > 0.05
    # observed and own depth agree where visible
    vis = cond[:, 5] > 0
    assert np.abs(cond[:, 3][vis] - cond[:, 4][vis]).mean() * 0.15 < 0.005


def test_load_frames_any_frames(ds):
    s = "p_001_press_palm_high_x5_right"
    item = ds.load_frames("p_001", s, [21, 22, 23, 24, 3])  # any list, not only clip-shaped
    assert item["rgb"].shape[0] == 5 and item["frame"].tolist() == [21, 22, 23, 24, 3]
    assert set(item) == set(ds[0])
    with pytest.raises(DataError, match=r"not annotated.*frame 20"):
        ds.load_frames("p_001", s, [19, 20])


def test_too_short_sequences_are_reported(fake_root):
    # p_001's runs are at most 13 frames (gap, unannotated and dropped frames), p_003 has 16, p_002 18
    with pytest.raises(DataError, match=r"no run of 17 consecutive annotated frames \(longest run: 13, frames 8-20\)"
                                        r".*sequence p_001_index_press_high_x5_left"):
        ClipDataset(fake_root, clip_length=17, stride=4, crop_size=32)
    with pytest.warns(UserWarning, match="skipped 3 sequences"):
        ds = ClipDataset(fake_root, clip_length=17, stride=4, crop_size=32, skip_short=True)
    assert {s for _, s, _ in ds.skipped} == {"p_001_press_palm_high_x5_right", "p_001_index_press_high_x5_left",
                                             "p_003_press_fingers_low_5x_right"}
    assert [c[1:] for c in ds.clips] == [("p_002_pinch-zoom_5x_right", 1), ("p_002_pinch-zoom_5x_right", 2)]


def test_split_selection(fake_root):
    assert {p for p, _, _ in ClipDataset(fake_root, split="test", **SMALL).clips} == {"p_003"}
    assert {p for p, _, _ in ClipDataset(fake_root, split="train", **SMALL).clips} == {"p_001"}
    with pytest.raises(DataError, match="unknown participants"):
        ClipDataset(fake_root, participants=["p_999"], **SMALL)


def test_augment_changes_inputs_not_targets(fake_root):
    ds = ClipDataset(fake_root, augment=True, **SMALL)
    plain = ClipDataset(fake_root, **SMALL)
    torch.manual_seed(0)
    a = ds[0]
    b = plain[0]
    assert not torch.allclose(a["rgb"], b["rgb"])
    assert torch.equal(a["pressure"], b["pressure"]) and torch.equal(a["vertices"], b["vertices"])


def test_dataloader_two_workers_match_one_process(ds):
    from torch.utils.data import DataLoader

    def collect(workers):
        dl = DataLoader(ds, batch_size=2, shuffle=False, num_workers=workers)
        return [b for b in dl]

    seq = collect(0)
    par = collect(2)
    assert len(seq) == len(par) == -(-len(ds) // 2)
    for a, b in zip(seq, par):
        assert a["sequence"] == b["sequence"]
        for k in ("rgb", "depth", "pose_map", "vertices", "pressure", "frame"):
            assert torch.equal(a[k], b[k]), k
    assert seq[0]["rgb"].shape[:2] == (2, 4)


def test_synthetic_round_trip(synth_root):
    """Once the generator exists: clips load from its output and frames are numbered from 1."""
    r = EgoPressureReader(synth_root)
    p = r.participants()[0]
    s = r.sequences(p)[0]
    assert r.frames(p, s)[0] == 1 and r.is_synthetic(p, s)
    ds = ClipDataset(synth_root, clip_length=4, stride=4, crop_size=32, uv_size=64, uv_conditioning=True,
                     uv_cond_size=32, skip_short=True)
    item = ds[0]
    assert item["uv_cond"].shape == (4, 7, 32, 32) and item["pressure"].shape == (4, 64, 64)
    assert layout.NUM_VERTICES == item["vertices"].shape[1]


def test_reduced_jpeg_decoding_crops_like_full_decoding():
    """Large frames are decoded at 1/2..1/8 scale for small crops; the crop must match a full decode."""
    import io

    from PIL import Image

    from egopressdiff.data.clips import _crop_rgb
    from egopressdiff.data.writer import encode_jpeg

    ys, xs = np.mgrid[0:480, 0:640]
    img = np.stack([xs * 255 // 639, ys * 255 // 479, (xs + ys) * 255 // 1118], -1).astype(np.uint8)
    jpeg = encode_jpeg(img, quality=95)

    class OneImage:
        def load_rgb(self, p, s, f, reduce=1):
            im = Image.open(io.BytesIO(jpeg))
            full = im.size
            if reduce > 1:
                im.draft("RGB", (full[0] // reduce, full[1] // reduce))
            arr = np.asarray(im.convert("RGB"))
            return (arr, full) if reduce > 1 else arr

    for box in [(100, 60, 420, 380), (-50, -40, 350, 360), (500, 300, 740, 540)]:
        small = _crop_rgb(OneImage(), "p", "s", 1, box, 32).astype(float)
        full = np.asarray(Image.fromarray(img).crop(box).resize((32, 32), Image.BILINEAR)).astype(float)
        inside = full.sum(-1) > 0
        assert np.abs(small - full)[inside].mean() < 4.0, box
        # the outside of the image stays black (zero padding) in both
        if (~inside).any():
            assert np.abs(small[~inside]).mean() < 10.0
