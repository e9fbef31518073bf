"""Few-step sampling: metrics and time of `predict` versus sampling steps (and samples averaged).

    .venv/bin/python benchmarks/sampling_steps.py --checkpoint synthetic-egopressdiff --data DATA \\
        [--split test] [--steps 25 12 8 4] [--samples 1 4] [--seeds 0 1 2] [--floors 0 0.25 0.5 1] \\
        [--output DIR] [--json OUT]

For every (steps, samples, sampling seed): ``inference.predict_dataset`` on the split, then
``evaluation.run.evaluate_folder``; prints Volumetric IoU, Contact IoU, MAE (kPa), temporal
accuracy and the prediction's wall time. CHECKPOINT is a shipped model name, a run folder or
a save_pretrained folder. Predictions go to DIR/steps-K-samples-S[-seed-N] (a temporary folder
by default).

With several ``--seeds`` it also prints each (steps, samples)'s mean and sd over the seeds
(a single sample's result moves by about 0.01 Volumetric IoU with its noise, as much as the steps
change it) and the number of steps with the highest mean Volumetric IoU at one sample: the
choice of a model's default ``sample_steps``. With ``--floors`` every prediction (made with no
floor) is also evaluated with each output floor applied, and the choice is the (steps, floor) pair
with the highest mean: the default ``sample_steps`` and ``output_floor_kpa`` chosen together. Make
that choice on the validation split, never on the test participants.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

KEYS = ("volumetric_iou", "contact_iou", "mae_kpa", "temporal_accuracy", "false_contact_rate")


def sweep(checkpoint, data, split: str = "test", steps=(25, 12, 8, 4), samples=(1,), output=None,
          seed: int = 0, progress: bool = False, seeds=None, floors=(0.0,)) -> list[dict]:
    """One row per (steps, samples, seed, floor); ``seeds`` (a list) instead of the single ``seed``.
    The predictions are made with no floor; each of ``floors`` (kPa) is applied when evaluating."""
    from egopressdiff.evaluation.run import evaluate_folder
    from egopressdiff.inference import PredictOptions, predict_dataset
    from egopressdiff.runtime import configure_cpu_threads
    from egopressdiff.shipped import resolve_checkpoint
    from egopressdiff.training.registry import load_model

    configure_cpu_threads()
    model = load_model(resolve_checkpoint(checkpoint))
    if hasattr(getattr(model, "config", None), "output_floor_kpa"):
        model.config.output_floor_kpa = 0.0  # raw samples; the floors are applied when evaluating
    tmp = None
    if output is None:
        tmp = tempfile.TemporaryDirectory(prefix="sampling_steps_")
        output = tmp.name
    rows = []
    try:
        many = seeds is not None
        for k in steps:
            for s in samples:
                for sd in (seeds if many else [seed]):
                    pred = Path(output) / (f"steps-{k}-samples-{s}" + (f"-seed-{sd}" if many else ""))
                    rep = predict_dataset(model, data, pred, split=split,
                                          options=PredictOptions(steps=k, samples=s, seed=sd, overwrite=True,
                                                                 progress=progress))
                    for fl in floors:
                        met = evaluate_folder(pred, data, split=split, progress=progress, floor_kpa=fl)
                        rows.append({"steps": k, "samples": s, "seed": sd, "floor_kpa": float(fl),
                                     "frames": rep.frames, "seconds": round(rep.seconds, 3),
                                     "frames_per_second": round(rep.frames / rep.seconds, 3) if rep.seconds else None,
                                     **{key: met.get(key) for key in KEYS}})
    finally:
        if tmp is not None:
            tmp.cleanup()
    return rows


def summarize(rows: list[dict]) -> dict:
    """Mean and sample sd over the seeds of each (steps, samples, floor), and the setting to choose: the
    highest mean Volumetric IoU at one sample (ties: fewer steps, the cheaper; then the lower floor)."""
    import numpy as np

    groups: dict[tuple[int, int, float], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["steps"], r["samples"], float(r.get("floor_kpa", 0.0))), []).append(r)
    out = []
    for (k, s, fl), rs in groups.items():
        row = {"steps": k, "samples": s, "floor_kpa": fl, "seeds": [r.get("seed") for r in rs]}
        for key in KEYS:
            vals = [r[key] for r in rs if r.get(key) is not None]
            row[key] = float(np.mean(vals)) if vals else None
            row[key + "_sd"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else None
        out.append(row)
    single = [r for r in out if r["samples"] == 1 and r["volumetric_iou"] is not None]
    best = max(single, key=lambda r: (round(r["volumetric_iou"], 6), -r["steps"], -r["floor_kpa"])) if single else None
    floors = sorted({r["floor_kpa"] for r in out})
    return {"by_steps": out, "chosen_steps": best["steps"] if best else None,
            "chosen_floor_kpa": best["floor_kpa"] if best else None, "floors_kpa": floors,
            "rule": "highest mean Volumetric IoU over the sampling seeds at one sample; ties: fewer steps"
                    + (", then the lower floor" if len(floors) > 1 else "")}


def format_summary(summary: dict) -> str:
    def f(r, key, nd=3):
        v, sd = r[key], r[key + "_sd"]
        return "-" if v is None else (f"{v:.{nd}f}" + ("" if sd is None else f" ± {sd:.{nd}f}"))

    out = [f"{'steps':>5} {'samples':>7} {'floor':>5} {'seeds':>5} {'vol IoU':>15} {'MAE kPa':>17} {'temp acc':>15}"]
    for r in summary["by_steps"]:
        out.append(f"{r['steps']:>5} {r['samples']:>7} {r['floor_kpa']:>5g} {len(r['seeds']):>5} "
                   f"{f(r, 'volumetric_iou'):>15} {f(r, 'mae_kpa', 4):>17} {f(r, 'temporal_accuracy'):>15}")
    chosen = f"chosen: {summary['chosen_steps']} steps"
    if len(summary.get("floors_kpa", [])) > 1:
        chosen += f", floor {summary['chosen_floor_kpa']:g} kPa"
    out.append(f"{chosen} ({summary['rule']})")
    return "\n".join(out)


def format_rows(rows: list[dict]) -> str:
    head = f"{'steps':>5} {'samples':>7} {'seed':>4} {'floor':>5} {'vol IoU':>8} {'contact IoU':>11} {'MAE kPa':>8} {'temp acc':>8} " \
           f"{'false ct':>8} {'seconds':>8} {'frames/s':>8}"
    out = [head]

    def f(v, nd=3):
        return "-" if v is None else f"{v:.{nd}f}"

    for r in rows:
        out.append(f"{r['steps']:>5} {r['samples']:>7} {r.get('seed', 0):>4} {r.get('floor_kpa', 0.0):>5g} {f(r['volumetric_iou']):>8} {f(r['contact_iou']):>11} "
                   f"{f(r['mae_kpa'], 4):>8} {f(r['temporal_accuracy']):>8} {f(r['false_contact_rate']):>8} {r['seconds']:>8.2f} "
                   f"{f(r['frames_per_second'], 1):>8}")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="shipped model name, run folder or model folder")
    ap.add_argument("--data", required=True, help="dataset root (EgoPressure layout)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--steps", type=int, nargs="+", default=[25, 12, 8, 4])
    ap.add_argument("--samples", type=int, nargs="+", default=[1])
    ap.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    ap.add_argument("--seeds", type=int, nargs="+", default=None,
                    help="several sampling seeds: every row once per seed, plus mean ± sd and the chosen steps")
    ap.add_argument("--floors", type=float, nargs="+", default=[0.0], metavar="KPA",
                    help="output floors (kPa) to apply to each no-floor prediction when evaluating; the choice "
                         "is then the best (steps, floor) (default: 0 only). Keep them at or under the field's "
                         "1 kPa contact threshold: a floor above it would hide false contacts, not residue")
    ap.add_argument("--output", default=None, help="keep the predictions here (default: a temporary folder)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args(argv)
    from egopressdiff.errors import EgoPressDiffError

    if any(not f >= 0 for f in args.floors):
        print("sampling_steps: error: --floors must be >= 0 kPa", file=sys.stderr)
        return 2

    try:
        rows = sweep(args.checkpoint, args.data, args.split, args.steps, args.samples, args.output, args.seed,
                     args.progress, seeds=args.seeds, floors=args.floors)
    except EgoPressDiffError as e:
        print(f"sampling_steps: error: {e.one_line()}", file=sys.stderr)
        return 2
    print(format_rows(rows))
    result = rows
    if args.seeds:
        summary = summarize(rows)
        print(format_summary(summary))
        if args.split == "test":
            print("sampling_steps: note: a default chosen on the test participants would not be a test result; "
                  "choose on --split val", file=sys.stderr)
        result = {"checkpoint": str(args.checkpoint), "split": args.split, "rows": rows, **summary}
    if args.json:
        from egopressdiff.fsutil import atomic_write_text

        atomic_write_text(args.json, json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
