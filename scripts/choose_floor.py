"""Choose EgoPressDiff's `output_floor_kpa` on the VALIDATION participants.

    egopressdiff predict --checkpoint RUN --data DATA --output PRED_VAL --split val   (floor 0)
    python scripts/choose_floor.py PRED_VAL DATA [--floors 0 0.5 1 1.5 2 3 4]

Applies each floor to the saved (unfloored) predictions and prints the metrics; the floor with
the best Volumetric IoU is the one to put in the shipped model's config. The test split is never
used here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pred")
    ap.add_argument("data")
    ap.add_argument("--floors", type=float, nargs="+", default=[0, 0.5, 1, 1.5, 2, 3, 4])
    ap.add_argument("--best-to", metavar="FILE", help="also write the chosen floor (a number) to FILE")
    args = ap.parse_args(argv)
    from egopressdiff.errors import EgoPressDiffError
    from egopressdiff.evaluation.run import evaluate_folder

    if any(not f >= 0 for f in args.floors):
        ap.error("--floors must be >= 0 kPa")
    # the same evaluation as `egopressdiff evaluate`, with each floor applied to the saved raw predictions
    print("floor_kpa  contact_iou  volumetric_iou  mae_kpa  temporal_acc  false_contact")
    best = None
    for fl in args.floors:
        try:
            r = evaluate_folder(args.pred, args.data, progress=False, floor_kpa=fl)
        except EgoPressDiffError as e:
            print(f"choose_floor: error: {e.one_line()}", file=sys.stderr)
            return 2
        fc = r["false_contact_rate"]
        print(f"{fl:9.2f}  {r['contact_iou']:11.4f}  {r['volumetric_iou']:14.4f}  {r['mae_kpa']:7.4f}  "
              f"{r['temporal_accuracy']:12.4f}  {'-' if fc is None else f'{fc:.4f}'}")
        if best is None or r["volumetric_iou"] > best[1]:
            best = (fl, r["volumetric_iou"])
    print(f"best floor by Volumetric IoU on this split: {best[0]} kPa")
    if args.best_to:
        Path(args.best_to).write_text(f"{best[0]}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
