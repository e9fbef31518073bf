"""Geometry oracles: how much of the answer one monotone rule, with no learning, reads off the inputs.

    python benchmarks/oracles.py DATA [--mesh annotated|estimated] [--space uv|pad|both] [--json OUT]
                                      [--max-frames N]

Each oracle maps ONE quantity to kPa through ONE monotone curve (isotonic regression, either
direction, plus a gain and a floor) fitted on the train participants and scored on the test
participants with the field's metrics:

* UV space (224x224 UV maps, UV mask, every annotated frame of the test sequences, as
  ``egopressdiff evaluate``): each of the 7 ``uv_cond`` channels (RGB, observed depth, texel depth,
  visibility, height; built at --uv-cond-size and upsampled to 224) and the mesh's height above
  the pad per texel;
* pad grid (the 105x185 ``force`` grid in kPa): the mesh's penetration below the pad per cell,
  blurred by one Gaussian width chosen on train.

A benchmark whose oracles come close to the learned methods gives the answer away in its inputs.
The method is documented in ``egopressdiff.evaluation.oracles``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="oracles.py", description=__doc__.split("\n\n")[0],
                                 epilog="Method: see the docstring of egopressdiff.evaluation.oracles.")
    ap.add_argument("data", help="dataset root in the EgoPressure layout (at least 3 participants)")
    ap.add_argument("--mesh", choices=("annotated", "estimated"), default="annotated",
                    help="mesh track the oracles read: 'annotated' (vertices, the paper's protocol) or "
                         "'estimated' (vertices_estimated, a monocular estimator's mesh); default annotated")
    ap.add_argument("--space", choices=("uv", "pad", "both"), default="both",
                    help="UV-space oracles, the pad-grid oracle, or both (default)")
    ap.add_argument("--json", metavar="OUT", help="write every figure and the fitted curves to this JSON file")
    ap.add_argument("--max-frames", type=int, metavar="N",
                    help="use only the first N annotated frames of each sequence (quick runs; default all)")
    ap.add_argument("--uv-cond-size", type=int, default=64,
                    help="size the uv_cond channels are built at, as a model sees them (default 64, the "
                         "per-frame baselines'; EgoPressDiff-tiny uses 56)")
    ap.add_argument("--fit-samples", type=int, default=4_000_000,
                    help="UV texels sampled from the train frames for the curves (default 4,000,000)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the train-texel sampling (default 0)")
    ap.add_argument("--per-gesture", action="store_true", help="also print the figures per gesture family")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    return ap


def format_report(res: dict, per_gesture: bool = False) -> str:
    """Plain-text table: one row per oracle, test metrics and the fitted curve's summary."""
    from egopressdiff.evaluation.metrics import format_comparison_table

    rows, fits = {}, {}
    uv = res.get("uv")
    if uv:
        for name, o in uv["oracles"].items():
            tag = " (best by train)" if name == uv["best_by_train"] else ""
            tag += " (best on test)" if name == uv["best_on_test"] else ""
            rows[f"uv {name}{tag}"] = o["test"]
            fits[f"uv {name}"] = o["curve"]
    if res.get("pad"):
        pad = res["pad"]
        rows[f"pad penetration, blur {pad['blur_width_cells']:g} cells"] = pad["test"]
        fits["pad penetration"] = pad["curve"]
    text = [f"geometry oracles on {res['data']} ({res['mesh']} mesh; train {', '.join(res['split']['train'])}; "
            f"test {', '.join(res['split']['test'])})", "", format_comparison_table(rows), ""]
    width = max(len(k) for k in fits) if fits else 0
    text.append(f"{'curve':{width}s}  direction   gain  floor kPa  train Vol. IoU  x range")
    for name, c in fits.items():
        text.append(f"{name:{width}s}  {c['direction']:10s}  {c['gain']:4.2f}  {c['floor_kpa']:9.2f}  "
                    f"{c['train_volumetric_iou']:14.4f}  [{c['x_range'][0]:.3g}, {c['x_range'][1]:.3g}]")
    if per_gesture:
        for name, r in rows.items():
            text += ["", name, format_comparison_table(r.get("per_gesture", {}))]
    text.append(f"\n{res['seconds']:.1f} s")
    return "\n".join(text)


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    from egopressdiff.errors import EgoPressDiffError
    from egopressdiff.evaluation.oracles import OracleOptions, run_oracles

    if args.max_frames is not None and args.max_frames < 1:
        print(f"oracles: error: --max-frames must be >= 1, got {args.max_frames}", file=sys.stderr)
        return 2
    if args.uv_cond_size < 8 or args.fit_samples < 1:
        print("oracles: error: --uv-cond-size must be >= 8 and --fit-samples >= 1", file=sys.stderr)
        return 2
    if not Path(args.data).is_dir():
        print(f"oracles: error: dataset root {args.data} is not a directory", file=sys.stderr)
        return 2
    opts = OracleOptions(mesh=args.mesh, uv_cond_size=args.uv_cond_size, max_frames=args.max_frames,
                         fit_samples=args.fit_samples, seed=args.seed, progress=not args.no_progress)
    try:
        res = run_oracles(args.data, args.space, opts)
    except EgoPressDiffError as e:
        print(f"oracles: error: {e.one_line()}", file=sys.stderr)
        return 2
    if args.json:
        from egopressdiff.evaluation.metrics import metrics_to_json

        try:
            Path(args.json).write_text(metrics_to_json(res) + "\n")
        except OSError as e:
            print(f"oracles: error: cannot write {args.json} ({e.strerror})", file=sys.stderr)
            return 2
    print(format_report(res, per_gesture=args.per_gesture))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
