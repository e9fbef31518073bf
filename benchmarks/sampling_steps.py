"""Few-step sampling: metrics and time of `predict` versus sampling steps (and samples averaged).

    .venv/bin/python benchmarks/sampling_steps.py --checkpoint synthetic-egopressdiff --data DATA \\
        [--split test] [--steps 25 12 8 4] [--samples 1 4] [--output DIR] [--json OUT]

For every (steps, samples) pair: ``inference.predict_dataset`` on the split, then
``evaluation.run.evaluate_folder``; prints Volumetric IoU, Contact IoU, MAE (kPa), temporal
accuracy and the prediction's wall time. CHECKPOINT is a shipped model name, a run folder or
a save_pretrained folder. Predictions go to DIR/steps-K-samples-S (a temporary folder by default).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

KEYS = ("volumetric_iou", "contact_iou", "mae_kpa", "temporal_accuracy", "false_contact_rate")


def sweep(checkpoint, data, split: str = "test", steps=(25, 12, 8, 4), samples=(1,), output=None,
          seed: int = 0, progress: bool = False) -> list[dict]:
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
        for k in steps:
            for s in samples:
                pred = Path(output) / f"steps-{k}-samples-{s}"
                rep = predict_dataset(model, data, pred, split=split,
                                      options=PredictOptions(steps=k, samples=s, seed=seed, overwrite=True,
                                                             progress=progress))
                met = evaluate_folder(pred, data, split=split, progress=progress)
                rows.append({"steps": k, "samples": s, "frames": rep.frames, "seconds": round(rep.seconds, 3),
                             "frames_per_second": round(rep.frames / rep.seconds, 3) if rep.seconds else None,
                             **{key: met.get(key) for key in KEYS}})
    finally:
        if tmp is not None:
            tmp.cleanup()
    return rows


def format_rows(rows: list[dict]) -> str:
    head = f"{'steps':>5} {'samples':>7} {'vol IoU':>8} {'contact IoU':>11} {'MAE kPa':>8} {'temp acc':>8} " \
           f"{'false ct':>8} {'seconds':>8} {'frames/s':>8}"
    out = [head]

    def f(v, nd=3):
        return "-" if v is None else f"{v:.{nd}f}"

    for r in rows:
        out.append(f"{r['steps']:>5} {r['samples']:>7} {f(r['volumetric_iou']):>8} {f(r['contact_iou']):>11} "
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
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--output", default=None, help="keep the predictions here (default: a temporary folder)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args(argv)
    from egopressdiff.errors import EgoPressDiffError

    try:
        rows = sweep(args.checkpoint, args.data, args.split, args.steps, args.samples, args.output, args.seed,
                     args.progress)
    except EgoPressDiffError as e:
        print(f"sampling_steps: error: {e.one_line()}", file=sys.stderr)
        return 2
    print(format_rows(rows))
    if args.json:
        from egopressdiff.fsutil import atomic_write_text

        atomic_write_text(args.json, json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
