"""Uncertainty metrics (how well pressure_std_kpa predicts the error) on hand-built cases with known answers."""

import json

import numpy as np
import pytest

from egopressdiff.evaluation.metrics import evaluate_predictions, format_metrics_table, metrics_to_json
from egopressdiff.evaluation.uncertainty import UNCERTAINTY_KEYS, UncertaintyAccumulator

H = 8
FULL = np.ones((H, H), np.float32)


def contact_and_hover(seed=0):
    """gt: 3 contact frames (a 10 kPa blob) then 2 hover frames (all zero); pred = gt + nonnegative noise."""
    rng = np.random.default_rng(seed)
    gt = np.zeros((5, H, H))
    gt[:3, 2:5, 2:5] = 10.0
    pred = gt + rng.uniform(0.0, 2.0, gt.shape)
    return pred, gt


def test_std_equal_to_the_error_covers_everything_and_correlates_perfectly():
    pred, gt = contact_and_hover()
    std = np.abs(pred - gt)
    r = UncertaintyAccumulator().update(pred, std, gt, FULL).result()
    assert r["std_coverage_2sd_contact"] == 1.0 and r["std_coverage_2sd_hover"] == 1.0
    assert r["std_error_corr_contact"] == pytest.approx(1.0) and r["std_error_corr_hover"] == pytest.approx(1.0)
    assert r["std_frames_contact"] == 3 and r["std_frames_hover"] == 2


def test_coverage_counts_texels_within_two_std():
    gt = np.zeros((1, H, H))
    gt[0, 0, 0] = 5.0  # a contact frame
    pred = gt + 1.0  # error 1 everywhere
    std = np.full_like(gt, 0.5)  # 2 std = 1.0: the boundary counts as covered
    std[0, :2] = 0.4  # two rows (16 texels of 64) fall short
    r = UncertaintyAccumulator().update(pred, std, gt, FULL).result()
    assert r["std_coverage_2sd_contact"] == pytest.approx(48 / 64)
    assert r["std_coverage_2sd_hover"] is None and r["std_frames_hover"] == 0


def test_anticorrelated_std_and_undefined_correlations():
    pred, gt = contact_and_hover(1)
    err = np.abs(pred - gt)
    r = UncertaintyAccumulator().update(pred, 5.0 - err, gt, FULL).result()
    assert r["std_error_corr_contact"] == pytest.approx(-1.0)
    # a constant std says nothing about where the error is: no correlation (None, never NaN)
    r = UncertaintyAccumulator().update(pred, np.full_like(gt, 0.7), gt, FULL).result()
    assert r["std_error_corr_contact"] is None and r["std_error_corr_hover"] is None
    assert 0.0 < r["std_coverage_2sd_contact"] < 1.0  # errors are uniform in [0, 2): some within 1.4, some not
    # a perfect prediction: the error is constant (0), so no correlation either; coverage 1 even at std 0
    r = UncertaintyAccumulator().update(gt, np.zeros_like(gt), gt, FULL).result()
    assert r["std_error_corr_contact"] is None and r["std_coverage_2sd_contact"] == 1.0
    json.dumps(r, allow_nan=False)


def test_only_uv_mask_texels_count_and_prediction_is_masked_first():
    gt = np.zeros((1, H, H))
    gt[0, 1, 1] = 5.0
    mask = np.zeros((H, H))
    mask[:4] = 1.0  # the top half is the hand
    pred = gt.copy()
    pred[0, 6, 6] = 50.0  # outside the mask: masked away, and the texel is not counted
    std = np.zeros_like(gt)
    r = UncertaintyAccumulator().update(pred, std, gt, mask).result()
    assert r["std_coverage_2sd_contact"] == 1.0
    pred[0, 2, 2] = 3.0  # inside: one of the 32 hand texels is wrong beyond 2 std
    r = UncertaintyAccumulator().update(pred, std, gt, mask).result()
    assert r["std_coverage_2sd_contact"] == pytest.approx(31 / 32)


def test_streaming_and_merge_equal_one_pass():
    pred, gt = contact_and_hover(2)
    std = np.random.default_rng(3).uniform(0.0, 1.5, gt.shape)
    one = UncertaintyAccumulator().update(pred, std, gt, FULL).result()
    a = UncertaintyAccumulator().update(pred[:2], std[:2], gt[:2], FULL)
    b = UncertaintyAccumulator().update(pred[2:4], std[2:4], gt[2:4], FULL).update(pred[4:], std[4:], gt[4:], FULL)
    merged = a.merge(b).result()
    for k in UNCERTAINTY_KEYS:
        assert merged[k] == pytest.approx(one[k], abs=1e-12), k
    # against numpy's own correlation on the contact frames
    err = np.abs(pred - gt)
    ref = np.corrcoef(std[:3].ravel(), err[:3].ravel())[0, 1]
    assert one["std_error_corr_contact"] == pytest.approx(ref, abs=1e-12)


def test_evaluate_predictions_reports_them_only_with_std():
    pred, gt = contact_and_hover()
    std = np.abs(pred - gt)
    items = [{"participant": "p_001", "sequence": "p_001_press_palm_high_x5_right", "mask": FULL,
              "chunks": [{"pred": pred[:2], "gt": gt[:2], "std": std[:2]},
                         {"pred": pred[2:], "gt": gt[2:], "std": std[2:]}]}]
    res = evaluate_predictions(items)
    assert res["std_coverage_2sd_contact"] == 1.0 and res["std_error_corr_hover"] == pytest.approx(1.0)
    assert "within 2 std" in format_metrics_table(res)
    assert json.loads(metrics_to_json(res))["std_frames_contact"] == 3
    plain = evaluate_predictions([{"participant": "p_001", "sequence": "s", "mask": FULL, "pred": pred, "gt": gt}])
    assert not any(k in plain for k in UNCERTAINTY_KEYS)
    assert "within 2 std" not in format_metrics_table(plain)


def test_mixed_std_and_no_std_is_an_error():
    from egopressdiff.errors import DataError

    pred, gt = contact_and_hover()
    items = [{"participant": "p_001", "sequence": "a", "mask": FULL, "pred": pred, "gt": gt, "std": pred * 0},
             {"participant": "p_001", "sequence": "b", "mask": FULL, "pred": pred, "gt": gt}]
    with pytest.raises(DataError, match="p_001/b"):
        evaluate_predictions(items)


def test_evaluate_command_writes_the_uncertainty_fields(tmp_path, synth_root):
    """A prediction folder with pressure_std_kpa (as `predict --samples N` writes) through `evaluate --json`."""
    from egopressdiff.cli.main import main
    from egopressdiff.data.reader import EgoPressureReader
    from egopressdiff.evaluation.predictions import write_prediction

    reader = EgoPressureReader(synth_root)
    pred_root = tmp_path / "pred"
    rng = np.random.default_rng(0)
    for p, s in reader.all_sequences():
        frames = reader.predictable_frames(p, s)
        gt = np.stack([reader.load_pressure(p, s, int(f)) for f in frames])
        mask = reader.atlas(p, s).mask(224)
        noise = rng.uniform(0.0, 1.0, gt.shape).astype(np.float32) * mask
        write_prediction(pred_root, p, s, frames, gt + noise, std=noise)  # the spread is exactly the error
    out = tmp_path / "m.json"
    assert main(["evaluate", "--pred", str(pred_root), "--data", str(synth_root), "--json", str(out),
                 "--no-progress"]) == 0
    m = json.loads(out.read_text())
    assert m["std_coverage_2sd_contact"] == 1.0 and m["std_coverage_2sd_hover"] == 1.0
    assert m["std_error_corr_contact"] == pytest.approx(1.0, abs=1e-6)
    assert m["std_frames_contact"] + m["std_frames_hover"] == m["num_frames"]
