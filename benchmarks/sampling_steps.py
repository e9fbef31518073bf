"""Few-step sampling: metrics and time of `predict` versus sampling steps (and samples averaged).

    .venv/bin/python benchmarks/sampling_steps.py --checkpoint synthetic-egopressdiff --data DATA \\
        [--split test] [--steps 25 12 8 4] [--samples 1 4] [--seeds 0 1 2] [--output DIR] [--json OUT]

For every (steps, samples, sampling seed): ``inference.predict_dataset`` on the split, then
``evaluation.run.evaluate_folder``; prints Volumetric IoU, Contact IoU, MAE (kPa), temporal
accuracy and the prediction's wall time. CHECKPOINT is a shipped model name, a run folder or
a save_pretrained folder. Predictions go to DIR/steps-K-samples-S[-seed-N] (a temporary folder
by default).

With several ``--seeds`` it also prints each (steps, samples)'s mean and sd over the seeds
(a single sample's result moves by about 0.01 Volumetric IoU with its noise, as much as the steps
change it) and the number of steps with the highest mean Volumetric IoU at one sample: the
choice of a model's default ``sample_steps``. Make that choice on the validation split, never on
the test participants.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

KEYS = ("volumetric_iou", "contact_iou", "mae_kpa", "temporal_accuracy", "false_contact_rate")


def sweep(checkpoint, data, split: str = "test", steps=(25, 12, 8, 4), samples=(1,), output=None,
          seed: int = 0, progress: bool = False, seeds=None) -> list[dict]:
    """One row per (steps, samples, seed); ``seeds`` (a list) instead of the single ``seed``."""
    from egopressdiff.evaluation.run import evaluate_folder
    from egopressdiff.inference import PredictOptions, predict_dataset
    from egopressdiff.runtime import configure_cpu_threads
    from egopressdiff.shipped import resolve_checkpoint
    from egopressdiff.training.registry import load_model

    configure_cpu_threads()
    model = load_model(resolve_checkpoint(checkpoint))
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
                    met = evaluate_folder(pred, data, split=split, progress=progress)
                    rows.append({"steps": k, "samples": s, "seed": sd, "frames": rep.frames,
                                 "seconds": round(rep.seconds, 3),
                                 "frames_per_second": round(rep.frames / rep.seconds, 3) if rep.seconds else None,
                                 **{key: met.get(key) for key in KEYS}})
    finally:
        if tmp is not None:
            tmp.cleanup()
    return rows


def summarize(rows: list[dict]) -> dict:
    """Mean and sample sd over the seeds of each (steps, samples), and the steps to choose: the highest
    mean Volumetric IoU at one sample (ties: fewer steps, the cheaper)."""
    import numpy as np

    groups: dict[tuple[int, int], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["steps"], r["samples"]), []).append(r)
    out = []
    for (k, s), rs in groups.items():
        row = {"steps": k, "samples": s, "seeds": [r.get("seed") for r in rs]}
        for key in KEYS:
            vals = [r[key] for r in rs if r.get(key) is not None]
            row[key] = float(np.mean(vals)) if vals else None
            row[key + "_sd"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else None
        out.append(row)
    single = [r for r in out if r["samples"] == 1 and r["volumetric_iou"] is not None]
    best = max(single, key=lambda r: (round(r["volumetric_iou"], 6), -r["steps"]))["steps"] if single else None
    return {"by_steps": out, "chosen_steps": best,
            "rule": "highest mean Volumetric IoU over the sampling seeds at one sample; ties: fewer steps"}


def format_summary(summary: dict) -> str:
    def f(r, key, nd=3):
        v, sd = r[key], r[key + "_sd"]
        return "-" if v is None else (f"{v:.{nd}f}" + ("" if sd is None else f" ± {sd:.{nd}f}"))

    out = [f"{'steps':>5} {'samples':>7} {'seeds':>5} {'vol IoU':>15} {'MAE kPa':>17} {'temp acc':>15}"]
    for r in summary["by_steps"]:
        out.append(f"{r['steps']:>5} {r['samples']:>7} {len(r['seeds']):>5} {f(r, 'volumetric_iou'):>15} "
                   f"{f(r, 'mae_kpa', 4):>17} {f(r, 'temporal_accuracy'):>15}")
    out.append(f"chosen: {summary['chosen_steps']} steps ({summary['rule']})")
    return "\n".join(out)


def format_rows(rows: list[dict]) -> str:
    head = f"{'steps':>5} {'samples':>7} {'seed':>4} {'vol IoU':>8} {'contact IoU':>11} {'MAE kPa':>8} {'temp acc':>8} " \
           f"{'false ct':>8} {'seconds':>8} {'frames/s':>8}"
    out = [head]

    def f(v, nd=3):
        return "-" if v is None else f"{v:.{nd}f}"

    for r in rows:
        out.append(f"{r['steps']:>5} {r['samples']:>7} {r.get('seed', 0):>4} {f(r['volumetric_iou']):>8} {f(r['contact_iou']):>11} "
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
    ap.add_argument("--output", default=None, help="keep the predictions here (default: a temporary folder)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args(argv)
    from egopressdiff.errors import EgoPressDiffError

    try:
        rows = sweep(args.checkpoint, args.data, args.split, args.steps, args.samples, args.output, args.seed,
                     args.progress, seeds=args.seeds)
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
