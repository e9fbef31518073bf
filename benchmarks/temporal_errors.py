"""Where temporal accuracy is lost: the frames whose any-contact flag disagrees with the ground truth.

    python benchmarks/temporal_errors.py DATA PRED [PRED ...] [--near 2] [--json OUT]

Temporal accuracy (``egopressdiff evaluate``) is the share of frames whose flag "any texel of the
UV-masked prediction > 1 kPa" agrees with the ground truth's. This splits its errors, per
prediction folder, into:

* false contact next to a touch: the prediction has contact, the ground truth has none, and a
  ground-truth contact frame of the same sequence lies at most ``--near`` frames away (the
  approach and release frames around a touch);
* other false contact (on hovers, or far from any touch);
* missed contact: the ground truth has contact and the prediction none, with the median of those
  frames' ground-truth maximum (kPa): a missed 1.5 kPa graze is not a missed 30 kPa press.

For the false contacts beside a touch it also counts those whose ground truth is exactly 0 kPa
(not a graze just under the threshold) and gives the median predicted peak; for the missed
frames, the median predicted peak (just under 1 kPa: a weak sample; 0: nothing at all).

A model that loses its accuracy on the frames beside each touch is limited by when contact
starts, which one frame may not show; one that misses frames of firm presses is not.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def temporal_errors(data, pred_root, near: int = 2) -> dict:
    """The counts above for one prediction folder (every sequence it holds, all its frames)."""
    from egopressdiff.data.reader import EgoPressureReader
    from egopressdiff.evaluation.metrics import CONTACT_THRESHOLD_KPA
    from egopressdiff.evaluation.run import _items, check_evaluable, sequences_to_evaluate

    reader = EgoPressureReader(data)
    pairs = sequences_to_evaluate(pred_root, reader)
    check_evaluable(pred_root, reader, pairs)
    frames = agree = beside = other = beside_zero = 0
    missed_max, missed_pred, beside_pred = [], [], []
    for item in _items(pred_root, reader, pairs):  # what `egopressdiff evaluate` scores, read the same way
        mask = item["mask"] > 0
        chunks = list(item["chunks"])
        pr = np.concatenate([c["pred"] for c in chunks])[:, mask]
        gt = np.concatenate([c["gt"] for c in chunks])[:, mask]
        on_p = (pr > CONTACT_THRESHOLD_KPA).any(axis=1)
        on_g = (gt > CONTACT_THRESHOLD_KPA).any(axis=1)
        frames += len(on_g)
        agree += int(np.count_nonzero(on_p == on_g))
        touch = np.flatnonzero(on_g)
        for i in np.flatnonzero(on_p & ~on_g):
            if len(touch) and np.min(np.abs(touch - i)) <= near:
                beside += 1
                beside_zero += int(gt[i].max() == 0)
                beside_pred.append(float(pr[i].max()))
            else:
                other += 1
        missed_max += list(gt[~on_p & on_g].max(axis=1))
        missed_pred += list(pr[~on_p & on_g].max(axis=1))
    return {"frames": frames, "temporal_accuracy": agree / max(frames, 1),
            "false_contact_beside_touch": beside, "false_contact_other": other, "missed_contact": len(missed_max),
            "missed_contact_median_gt_max_kpa": float(np.median(missed_max)) if missed_max else None,
            "missed_contact_median_pred_max_kpa": float(np.median(missed_pred)) if missed_pred else None,
            "false_contact_beside_touch_gt_zero": beside_zero,
            "false_contact_beside_touch_median_pred_max_kpa": float(np.median(beside_pred)) if beside_pred else None,
            "near_frames": near}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="temporal_errors.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("data", help="dataset root (the ground truth)")
    ap.add_argument("pred", nargs="+", help="prediction folders (egopressdiff predict --output)")
    ap.add_argument("--near", type=int, default=2,
                    help="false contact at most this many frames from a ground-truth contact frame counts as "
                         "'beside a touch' (default 2)")
    ap.add_argument("--json", metavar="OUT", help="also write the figures to this JSON file")
    args = ap.parse_args(argv)
    from egopressdiff.errors import EgoPressDiffError

    rows = {}
    w = max(len("prediction"), *(len(r) for r in args.pred))  # whole names: they differ at the end
    print(f"{'prediction':{w}s} {'frames':>6s} {'temporal':>8s} {'FC beside':>9s} {'FC other':>8s} "
          f"{'missed':>6s} {'missed GT max kPa':>17s}")
    for root in args.pred:
        try:
            r = temporal_errors(args.data, root, near=args.near)
        except EgoPressDiffError as e:
            print(f"temporal_errors: error: {e.one_line()}", file=sys.stderr)
            return 2
        rows[root] = r
        m = r["missed_contact_median_gt_max_kpa"]
        print(f"{root:{w}s} {r['frames']:6d} {r['temporal_accuracy']:8.3f} {r['false_contact_beside_touch']:9d} "
              f"{r['false_contact_other']:8d} {r['missed_contact']:6d} {'-' if m is None else f'{m:.1f}':>17s}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
