"""What predictions put on the no-contact (hover) sequences: false contact at several floors.

    python benchmarks/hover_false_contact.py DATA PRED [PRED ...] [--floors 0 1 2 3 4]

For each prediction folder (made with ``--floor 0`` so that the floors can be applied here) and
each floor: the false-contact rate (share of hover frames with any texel at or above 1 kPa after
the floor, as ``egopressdiff evaluate`` counts it), the median over hover frames of the
per-frame maximum (kPa), and the mean share of the hand's texels at or above 1 kPa. The
false-contact rate is all-or-nothing per frame; the other two say how much spurious pressure
there is, so two models that both "false-contact" every frame can still be told apart (the
no-depth ablation of issue 5).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def hover_maps(data, pred_root) -> np.ndarray | None:
    """The predicted kPa on the hand's texels, (hover frames, texels), of every hover sequence in PRED."""
    from egopressdiff.data.layout import gesture_family
    from egopressdiff.data.reader import EgoPressureReader
    from egopressdiff.evaluation.metrics import HOVER_FAMILY
    from egopressdiff.evaluation.predictions import (
        check_prediction_complete,
        prediction_path,
        read_prediction,
    )
    from egopressdiff.evaluation.run import sequences_to_evaluate

    reader = EgoPressureReader(data)
    hover = []
    for p, s in sequences_to_evaluate(pred_root, reader):
        if gesture_family(s) != HOVER_FAMILY:
            continue
        pred = read_prediction(prediction_path(pred_root, p, s))
        rows = check_prediction_complete(pred, reader.annotated_frames(p, s))
        mask = reader.atlas(p, s).mask(224).astype(bool)
        hover.append(np.asarray(pred.pressure_kpa[rows])[:, mask])
    return np.concatenate(hover) if hover else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("pred", nargs="+")
    ap.add_argument("--floors", type=float, nargs="+", default=[0, 1, 2, 3, 4])
    args = ap.parse_args(argv)
    from egopressdiff.errors import EgoPressDiffError
    from egopressdiff.evaluation.metrics import CONTACT_THRESHOLD_KPA

    print("prediction                                 floor  false_contact  median_max_kPa  texels>=1kPa_%  frames")
    for root in args.pred:
        try:
            x = hover_maps(args.data, root)
        except EgoPressDiffError as e:
            print(f"hover_false_contact: error: {e.one_line()}", file=sys.stderr)
            return 2
        if x is None:
            print(f"{root}: no hover sequence predicted")
            continue
        for fl in args.floors:
            y = np.where(x < fl, 0.0, x)
            hot = y >= CONTACT_THRESHOLD_KPA
            fc = hot.any(axis=1).mean()
            share = hot.mean(axis=1) * 100
            print(f"{root[-42:]:42s} {fl:5.1f}  {fc:13.3f}  {np.median(y.max(axis=1)):14.2f}  "
                  f"{share.mean():14.3f}  {len(x):6d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
