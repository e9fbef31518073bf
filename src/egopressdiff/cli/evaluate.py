HELP = """Score predictions against ground truth with the field's metrics.

Contact IoU, Volumetric IoU, MAE (kPa) and temporal accuracy as PressureVision /
EgoPressure define them: the prediction is masked by the UV mask, contact is
pressure > 1 kPa, and IoUs are sums over all pixels and frames (not means of
per-frame IoUs). Also the per-frame total-force error in newtons (from the UV
texel areas) and the false-contact rate on no-contact (hover) sequences.
Reported overall, per sequence and per gesture family; --json writes them.

Predictions made with `predict --samples N` (N > 1) carry their spread
(pressure_std_kpa); then the overall result also says how well it predicts the error,
over the UV-mask texels, on contact frames (ground truth > 1 kPa somewhere) and on
hover / no-contact frames apart: the share of texels whose |pred - gt| lies within
2 std (std_coverage_2sd_contact / _hover) and the Pearson correlation of std and
|pred - gt| (std_error_corr_contact / _hover; null when undefined, e.g. a constant std).

A ground-truth frame without a prediction (or a misshapen prediction) is an error, and so
is a sequence without ground truth (no pressure.parquet: a recording without the pad)."""


def add_arguments(p):
    p.add_argument("--pred", required=True, help="prediction folder written by `egopressdiff predict`")
    p.add_argument("--data", required=True, help="dataset root")
    p.add_argument("--split", default=None, choices=["train", "val", "test", "all"],
                   help="require predictions for every sequence of this split (default: the predicted ones)")
    p.add_argument("--json", default=None, help="write the metrics as JSON here")
    p.add_argument("--per-sequence", action="store_true", help="also print the per-sequence table")
    p.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    from pathlib import Path

    from egopressdiff.errors import EgoPressDiffError
    from egopressdiff.evaluation.metrics import format_metrics_table, metrics_to_json
    from egopressdiff.evaluation.run import evaluate_folder
    from egopressdiff.fsutil import atomic_write_text

    if args.json and Path(args.json).is_dir():
        raise EgoPressDiffError(f"--json {args.json} is a directory; give a file name")
    res = evaluate_folder(args.pred, args.data, split=args.split, progress=not args.no_progress)
    if args.json:  # first, so that nothing printing can fail (a closed pipe) loses it
        atomic_write_text(args.json, metrics_to_json(res))
    print(format_metrics_table(res, per_sequence=args.per_sequence, per_gesture=True))
    if args.json:
        print(f"metrics written to {args.json}")
    return 0
