"""Property-based tests (hypothesis) of the reader's decoders and of the metrics."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from egopressdiff.data import layout
from egopressdiff.data.reader import decode_image
from egopressdiff.data.writer import encode_jpeg, encode_png
from egopressdiff.errors import DataError
from egopressdiff.evaluation.metrics import MetricAccumulator, compute_metrics

FAST = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SIZE = 8  # small maps keep the examples fast; the metrics do not depend on the size

# pressures on a 0.25 kPa grid: exact in float64, so sums are exact and comparisons can be strict
kpa_values = st.integers(0, 400).map(lambda k: k * 0.25)


def kpa_maps(min_frames: int = 1, max_frames: int = 3, side: int = SIZE):
    return st.integers(min_frames, max_frames).flatmap(lambda t: arrays(np.float64, (t, side, side), elements=kpa_values))


# ----------------------------------------------------------------------------- layout: units and storage
@FAST
@given(arrays(np.float32, (layout.UV_SIZE, layout.UV_SIZE),
              elements=st.floats(0, 500, width=32, allow_nan=False, allow_infinity=False)))
def test_uv_map_round_trip(kpa):
    norm, rng = layout.kpa_to_uv_map(kpa)
    assert norm.shape == (layout.UV_SIZE**2,) and rng.shape == (2,)
    assert np.all(norm >= 0) and np.all(norm <= 1.0 + 1e-6)
    back = layout.uv_map_to_kpa(norm, rng)
    np.testing.assert_allclose(back, kpa, rtol=1e-5, atol=1e-4)


@FAST
@given(arrays(np.float32, (16,), elements=st.floats(-50, 50, width=32)))
def test_uv_map_clips_negative_pressure(kpa):
    norm, rng = layout.kpa_to_uv_map(np.resize(kpa, (layout.UV_SIZE, layout.UV_SIZE)))
    back = layout.uv_map_to_kpa(norm, rng)
    assert np.all(back >= 0)


@FAST
@given(arrays(np.float32, (32,), elements=st.floats(0, 1e4, width=32)))
def test_counts_kpa_round_trip_and_monotone(counts):
    kpa = layout.counts_to_kpa(counts)
    np.testing.assert_allclose(layout.kpa_to_counts(kpa), counts, rtol=1e-5, atol=1e-3)
    order = np.argsort(counts, kind="stable")
    assert np.all(np.diff(kpa[order]) >= 0)
    assert layout.counts_to_kpa(0.0) == 0


# ----------------------------------------------------------------------------- image codecs
shapes = st.tuples(st.integers(1, 24), st.integers(1, 24))


@FAST
@given(shapes.flatmap(lambda s: arrays(np.uint16, s)))
def test_png_uint16_depth_round_trip(depth):
    out = decode_image(encode_png(depth))
    assert out.dtype == np.uint16 or out.dtype.kind in "iu"
    np.testing.assert_array_equal(out.astype(np.uint16), depth)


@FAST
@given(shapes.flatmap(lambda s: arrays(np.uint8, s)))
def test_png_uint8_mask_round_trip(mask):
    np.testing.assert_array_equal(decode_image(encode_png(mask)), mask)


@FAST
@given(shapes.flatmap(lambda s: arrays(np.uint8, (*s, 3))))
def test_png_rgb_round_trip(rgb):
    np.testing.assert_array_equal(decode_image(encode_png(rgb)), rgb)


@FAST
@given(shapes, st.integers(0, 255), st.integers(0, 255), st.integers(0, 255))
def test_jpeg_decodes_to_the_same_size_close_colours(shape, r, g, b):
    rgb = np.empty((*shape, 3), np.uint8)
    rgb[...] = (r, g, b)  # flat colour: JPEG is lossy, but only slightly on a flat image
    out = decode_image(encode_jpeg(rgb, quality=95))
    assert out.shape == rgb.shape
    assert np.abs(out.astype(int) - rgb.astype(int)).max() <= 8


@FAST
@given(st.binary(max_size=300))
def test_garbage_bytes_are_a_data_error(data):
    try:
        out = decode_image(data, path="x.parquet", sequence="seq", frame=3)
    except DataError as e:
        assert "frame 3" in str(e) and "seq" in str(e)
    else:  # some short byte strings are valid images (e.g. tiny PPM/PBM headers): then they decode
        assert isinstance(out, np.ndarray) and out.ndim in (2, 3)


@FAST
@given(st.data())
def test_truncated_or_damaged_images_are_data_errors(data):
    kind = data.draw(st.sampled_from(["png16", "png8", "jpeg"]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    if kind == "png16":
        blob = encode_png(rng.integers(0, 5000, (12, 10)).astype(np.uint16))
    elif kind == "png8":
        blob = encode_png(rng.integers(0, 255, (12, 10)).astype(np.uint8))
    else:
        blob = encode_jpeg(rng.integers(0, 255, (12, 10, 3)).astype(np.uint8))
    cut = data.draw(st.integers(0, len(blob) - 1))
    damaged = blob[:cut]
    if data.draw(st.booleans()) and cut > 8:  # or flip bytes inside instead of cutting
        pos = data.draw(st.integers(8, len(blob) - 1))
        damaged = blob[:pos] + bytes([blob[pos] ^ 0xFF]) + blob[pos + 1:]
    try:
        out = decode_image(damaged, path="f", sequence="s", frame=1)
    except DataError:
        return
    # a flipped byte in pixel data of a JPEG may still decode; the shape is then intact
    assert out.shape[:2] == (12, 10)


def test_missing_bytes_are_a_data_error():
    with pytest.raises(DataError, match="image bytes are missing.*frame 2"):
        decode_image(b"", sequence="s", frame=2)


# ----------------------------------------------------------------------------- metrics
ONES = np.ones((SIZE, SIZE))


@FAST
@given(kpa_maps(), st.data())
def test_volumetric_iou_bounds_symmetry_and_identity(pred, data):
    gt = data.draw(arrays(np.float64, pred.shape, elements=kpa_values))
    a = compute_metrics(pred, gt, ONES)
    b = compute_metrics(gt, pred, ONES)
    assert 0.0 <= a["volumetric_iou"] <= 1.0
    assert a["volumetric_iou"] == b["volumetric_iou"]
    assert a["contact_iou"] == b["contact_iou"] and a["mae_kpa"] == b["mae_kpa"]
    # exactly 1 iff the maps are equal (values on an exact grid: no rounding in the sums)
    assert (a["volumetric_iou"] == 1.0) == bool(np.array_equal(pred, gt) or (pred.max() == 0 and gt.max() == 0))


@FAST
@given(kpa_maps())
def test_identical_nonempty_maps_score_perfectly(gt):
    assume(gt.max() > 0)
    r = compute_metrics(gt, gt, ONES)
    assert r["volumetric_iou"] == 1.0 and r["contact_iou"] == 1.0
    assert r["mae_kpa"] == 0.0 and r["temporal_accuracy"] == 1.0


@FAST
@given(kpa_maps(), st.data())
def test_contact_iou_and_mae_ranges(pred, data):
    gt = data.draw(arrays(np.float64, pred.shape, elements=kpa_values))
    mask = data.draw(arrays(np.float64, (SIZE, SIZE), elements=st.sampled_from([0.0, 1.0])))
    r = compute_metrics(pred, gt, mask)
    assert 0.0 <= r["contact_iou"] <= 1.0 and 0.0 <= r["temporal_accuracy"] <= 1.0
    assert 0.0 <= r["volumetric_iou"] <= 1.0
    assert r["mae_kpa"] >= 0.0
    assert (r["mae_kpa"] == 0.0) == bool(np.array_equal(pred * mask, gt))


@FAST
@given(kpa_maps(2, 6), st.data())
def test_merged_accumulators_equal_one_pass(pred, data):
    gt = data.draw(arrays(np.float64, pred.shape, elements=kpa_values))
    area = np.full((SIZE, SIZE), 1e-6)
    cut = data.draw(st.integers(1, pred.shape[0] - 1))
    hover = data.draw(st.booleans())
    one = MetricAccumulator().update(pred, gt, ONES, area, hover=hover).result()
    a = MetricAccumulator().update(pred[:cut], gt[:cut], ONES, area, hover=hover)
    b = MetricAccumulator().update(pred[cut:], gt[cut:], ONES, area, hover=hover)
    merged = (a + b).result()
    assert merged.keys() == one.keys()
    for k in one:
        if one[k] is None:
            assert merged[k] is None
        else:
            assert merged[k] == pytest.approx(one[k], rel=1e-12, abs=1e-12), k
    # merge() is what evaluate uses across sequences: same result as +
    assert a.merge(b).result() == merged
