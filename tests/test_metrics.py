"""Metrics on hand-made cases with known answers."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from egopressdiff.evaluation.metrics import (
    MetricAccumulator,
    compute_metrics,
    evaluate_predictions,
    format_comparison_table,
    format_metrics_table,
    metrics_to_json,
)

H = 8
FULL = np.ones((H, H), np.float32)


def blob(r0, r1, c0, c1, value=5.0, t=1):
    m = np.zeros((t, H, H), np.float32)
    m[:, r0:r1, c0:c1] = value
    return m


def test_perfect_prediction():
    gt = blob(1, 4, 1, 4, 7.0, t=3)
    r = compute_metrics(gt.copy(), gt, FULL)
    assert r["contact_iou"] == 1.0 and r["volumetric_iou"] == 1.0
    assert r["mae_kpa"] == 0.0 and r["temporal_accuracy"] == 1.0 and r["num_frames"] == 3


def test_disjoint_contact():
    r = compute_metrics(blob(0, 2, 0, 2), blob(5, 7, 5, 7), FULL)
    assert r["contact_iou"] == 0.0 and r["volumetric_iou"] == 0.0
    # 4 + 4 pixels wrong by 5 kPa over 64 pixels
    assert r["mae_kpa"] == pytest.approx(8 * 5.0 / 64)
    assert r["temporal_accuracy"] == 1.0  # both frames say "in contact"


def test_known_partial_values():
    pred = blob(0, 2, 0, 4, 4.0)  # 8 px at 4 kPa
    gt = blob(0, 2, 0, 2, 6.0)  # 4 px at 6 kPa, inside pred's area
    r = compute_metrics(pred, gt, FULL)
    assert r["contact_iou"] == pytest.approx(4 / 8)
    assert r["volumetric_iou"] == pytest.approx((4 * 4.0) / (4 * 6.0 + 4 * 4.0))
    assert r["mae_kpa"] == pytest.approx((4 * 2.0 + 4 * 4.0) / 64)


def test_contact_threshold_is_strictly_above_one_kpa():
    pred = np.full((1, H, H), 1.0, np.float32)  # exactly 1 kPa: not contact
    r = compute_metrics(pred, np.zeros_like(pred), FULL)
    assert r["contact_iou"] == 1.0  # neither side has contact -> convention 1.0
    assert r["temporal_accuracy"] == 1.0
    assert r["volumetric_iou"] == 0.0  # but the volume is wrong
    r2 = compute_metrics(pred + 0.01, np.zeros_like(pred), FULL)
    assert r2["contact_iou"] == 0.0 and r2["temporal_accuracy"] == 0.0


def test_empty_frames_convention():
    z = np.zeros((2, H, H), np.float32)
    r = compute_metrics(z, z, FULL)
    assert r["contact_iou"] == 1.0 and r["volumetric_iou"] == 1.0 and r["mae_kpa"] == 0.0
    assert r["temporal_accuracy"] == 1.0
    assert r["force_error_n"] is None and r["false_contact_rate"] is None
    empty = MetricAccumulator().result()
    assert empty["num_frames"] == 0 and empty["contact_iou"] is None
    json.loads(metrics_to_json(empty))


def test_sum_not_mean_aggregation():
    # frame 0: big perfect overlap (16 px); frame 1: tiny disjoint blobs (1 px each)
    pred = np.concatenate([blob(0, 4, 0, 4), blob(7, 8, 7, 8)])
    gt = np.concatenate([blob(0, 4, 0, 4), blob(0, 1, 7, 8)])
    r = compute_metrics(pred, gt, FULL)
    mean_of_frames = (1.0 + 0.0) / 2
    pooled = 16 / (16 + 2)
    assert r["contact_iou"] == pytest.approx(pooled)
    assert r["contact_iou"] != pytest.approx(mean_of_frames)
    assert r["volumetric_iou"] == pytest.approx(16 * 5.0 / (18 * 5.0))


def test_streaming_and_merge_equal_one_pass():
    rng = np.random.default_rng(0)
    pred = rng.gamma(0.5, 3.0, (6, H, H)).astype(np.float32)
    gt = rng.gamma(0.5, 3.0, (6, H, H)).astype(np.float32)
    area = rng.random((6, H, H)) * 1e-6
    one = compute_metrics(pred, gt, FULL, area)
    a = MetricAccumulator().update(pred[:2], gt[:2], FULL, area[:2])
    b = MetricAccumulator().update(pred[2:], gt[2:], FULL, area[2:])
    assert (a + b).result() == pytest.approx(one)
    a.update(pred[2:], gt[2:], FULL, area[2:])
    assert a.result() == pytest.approx(one)


def test_prediction_is_masked_first():
    mask = np.zeros((H, H), np.float32)
    mask[:4] = 1
    gt = blob(0, 2, 0, 2)
    pred = gt + blob(6, 8, 0, 8, 9.0)  # spurious pressure outside the mask
    r = compute_metrics(pred, gt, mask)
    assert r["contact_iou"] == 1.0 and r["volumetric_iou"] == 1.0 and r["mae_kpa"] == 0.0
    assert compute_metrics(pred, gt, FULL)["contact_iou"] < 1.0


def test_temporal_accuracy():
    gt = np.concatenate([blob(0, 2, 0, 2), np.zeros((1, H, H)), np.zeros((1, H, H)), blob(3, 4, 3, 4)])
    pred = np.concatenate([blob(5, 6, 5, 6), np.zeros((1, H, H)), blob(1, 2, 1, 2), np.zeros((1, H, H))])
    # frame 0: both contact (agree, even though disjoint); 1: both none; 2: false contact; 3: missed
    assert compute_metrics(pred, gt, FULL)["temporal_accuracy"] == pytest.approx(0.5)


def test_force_error_in_newtons():
    area = np.full((H, H), 1e-4)  # 1 cm² per texel
    gt = blob(0, 1, 0, 1, 10.0)  # 10 kPa on 1 cm² = 1 N
    pred = blob(0, 1, 0, 2, 10.0)  # 2 N
    r = compute_metrics(pred, gt, FULL, area=area)
    assert r["force_error_n"] == pytest.approx(1.0)


def test_evaluate_predictions_groups_and_false_contact():
    gt_press = blob(0, 2, 0, 2, t=2)
    hover_gt = np.zeros((4, H, H), np.float32)
    hover_pred = hover_gt.copy()
    hover_pred[1, 0, 0] = 3.0  # one false-contact frame of four
    items = [
        {"participant": "p_001", "sequence": "p_001_press_palm_high_x5_right", "pred": gt_press,
         "gt": gt_press, "mask": FULL},
        {"participant": "p_001", "sequence": "p_001_press_palm_no-contact_x5_right", "mask": FULL,
         "chunks": [{"pred": hover_pred[:2], "gt": hover_gt[:2]}, {"pred": hover_pred[2:], "gt": hover_gt[2:]}]},
    ]
    res = evaluate_predictions(items)
    assert res["num_frames"] == 6
    assert res["false_contact_rate"] == pytest.approx(0.25)
    assert set(res["per_gesture"]) == {"palm_press", "hover"}
    assert res["per_gesture"]["palm_press"]["false_contact_rate"] is None
    seq = res["per_sequence"]["p_001/p_001_press_palm_no-contact_x5_right"]
    assert seq["gesture_family"] == "hover" and seq["num_frames"] == 4
    assert res["temporal_accuracy"] == pytest.approx(5 / 6)
    text = json.dumps(res, allow_nan=False)
    for key in ("contact_iou", "volumetric_iou", "mae_kpa", "temporal_accuracy", "per_sequence", "per_gesture",
                "force_error_n", "false_contact_rate", "num_frames"):
        assert f'"{key}"' in text
    table = format_metrics_table(res, per_sequence=True)
    assert "overall" in table and "hover" in table and "p_001_press_palm_high_x5_right" in table
    assert "Contact IoU" in format_comparison_table({"ours": res})


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        compute_metrics(np.zeros((2, H, H)), np.zeros((3, H, H)), FULL)
    with pytest.raises(ValueError):
        compute_metrics(np.zeros((2, H, H)), np.zeros((2, H, H)), np.ones((4, 4)))


maps = arrays(np.float32, (2, 4, 4), elements=st.floats(0, 100, width=32))


@settings(max_examples=60, deadline=None)
@given(maps, maps)
def test_volumetric_iou_bounded_and_symmetric(a, b):
    m = np.ones((4, 4), np.float32)
    r_ab = compute_metrics(a, b, m)
    r_ba = compute_metrics(b, a, m)
    assert 0.0 <= r_ab["volumetric_iou"] <= 1.0
    assert r_ab["volumetric_iou"] == pytest.approx(r_ba["volumetric_iou"])
    assert r_ab["contact_iou"] == pytest.approx(r_ba["contact_iou"])
    assert 0.0 <= r_ab["contact_iou"] <= 1.0


@settings(max_examples=40, deadline=None)
@given(maps)
def test_volumetric_iou_is_one_for_identical_maps(a):
    a = a.copy()
    a[0, 0, 0] = 2.0  # non-empty
    assert compute_metrics(a, a, np.ones((4, 4)))["volumetric_iou"] == 1.0
