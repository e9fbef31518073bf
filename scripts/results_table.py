"""Print the README results table (Markdown) from `egopressdiff evaluate --json` files.

    python scripts/results_table.py metrics/*.json [--baseline NAME ...] [--output table.md]

One row per file, named by the file's stem. The per-frame baselines are the rows whose
name starts with ``baseline-`` (and any named with --baseline); every row gets its
Volumetric IoU as a multiple of the best baseline row's in the same table (the paper's
claim is EgoPressDiff >= 1.34x). Files that hold the uncertainty metrics (predictions
made with --samples N > 1) fill the uncertainty columns; the columns appear only when
some row has them.

With --group-seeds, rows that differ only by a training-seed tag (``-sN``, as
reproduce_results.sh names seed N > 0; no tag = seed 0) become one row: each cell the
mean over the seeds ± their sample standard deviation, and a column with the number of
seeds; the ratio is taken between means.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

COLUMNS = (("contact_iou", "Contact IoU ↑"), ("volumetric_iou", "Volumetric IoU ↑"), ("mae_kpa", "MAE kPa ↓"),
           ("temporal_accuracy", "Temporal acc. ↑"), ("false_contact_rate", "False contact (hover) ↓"),
           ("force_error_n", "Force err. N ↓"))
RATIO_LABEL = "Vol. IoU / best baseline"
UNCERTAINTY_COLUMNS = (("std_coverage_2sd_contact", "within 2 std, contact"),
                       ("std_coverage_2sd_hover", "within 2 std, hover"),
                       ("std_error_corr_contact", "corr(std, err), contact"),
                       ("std_error_corr_hover", "corr(std, err), hover"))
BASELINE_PREFIX = "baseline-"
SEED_TAG = re.compile(r"-s\d+(?=-|$)")


def load_rows(paths) -> list[tuple[str, dict]]:
    rows = []
    for p in paths:
        p = Path(p)
        try:
            m = json.loads(p.read_text())
        except (OSError, ValueError) as e:
            raise ValueError(f"cannot read {p}: {' '.join(str(e).split())}") from None
        if not isinstance(m, dict) or "volumetric_iou" not in m:
            raise ValueError(f"{p} is not an `egopressdiff evaluate --json` file")
        rows.append((p.stem, m))
    return rows


def best_baseline(rows, baselines=()) -> tuple[str, float] | None:
    """(name, Volumetric IoU) of the best per-frame baseline row, or None without one."""
    cands = [(name, m["volumetric_iou"]) for name, m in rows
             if (name.startswith(BASELINE_PREFIX) or name in baselines) and m.get("volumetric_iou") is not None]
    return max(cands, key=lambda c: c[1]) if cands else None


def seed_of(name: str) -> int:
    """The training seed a row name says (``-sN``; none = 0)."""
    m = SEED_TAG.search(name)
    return int(m.group(0)[2:]) if m else 0


def group_seeds(rows) -> list[tuple[str, dict]]:
    """Rows that differ only by a seed tag -> one row each: per key the mean, plus ``_sd`` and ``_seeds``."""
    groups: dict[str, list[dict]] = {}
    for name, m in rows:
        groups.setdefault(SEED_TAG.sub("", name), []).append(m)
    out = []
    for name, ms in groups.items():
        g = {"_seeds": len(ms), "_sd": {}}
        for key, _ in (*COLUMNS, *UNCERTAINTY_COLUMNS):
            vals = [m[key] for m in ms if m.get(key) is not None]
            if any(key in m for m in ms):
                g[key] = statistics.fmean(vals) if vals else None
                g["_sd"][key] = statistics.stdev(vals) if len(vals) > 1 else None
        out.append((name, g))
    return out


def _cell(v, sd=None) -> str:
    if v is None:
        return "-"
    return f"{v:.3f}" if sd is None else f"{v:.3f} ± {sd:.3f}"


def markdown_table(rows, baselines=()) -> str:
    best = best_baseline(rows, baselines)
    with_ratio = best is not None and best[1] > 0
    with_spread = any(k in m for _, m in rows for k, _ in UNCERTAINTY_COLUMNS)
    grouped = any("_seeds" in m for _, m in rows)
    head = (["seeds"] if grouped else []) + [label for _, label in COLUMNS]
    if with_ratio:
        head.append(RATIO_LABEL)
    if with_spread:
        head += [label for _, label in UNCERTAINTY_COLUMNS]
    lines = ["| method | " + " | ".join(head) + " |", "|---|" + "---:|" * len(head)]
    for name, m in rows:
        sd = m.get("_sd", {})
        cells = ([str(m["_seeds"])] if grouped else []) + [_cell(m.get(k), sd.get(k)) for k, _ in COLUMNS]
        if with_ratio:
            v = m.get("volumetric_iou")
            cells.append("-" if v is None else f"{v / best[1]:.2f}×")
        if with_spread:
            cells += [_cell(m.get(k), sd.get(k)) for k, _ in UNCERTAINTY_COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if best is not None:
        lines.append("")
        lines.append(f"Best per-frame baseline: {best[0]} (Volumetric IoU {best[1]:.3f}).")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("metrics", nargs="+", help="JSON files written by `egopressdiff evaluate --json`")
    ap.add_argument("--baseline", action="append", default=[], metavar="NAME",
                    help="also count this row (file stem) as a per-frame baseline (repeatable)")
    ap.add_argument("--group-seeds", action="store_true",
                    help="one row per method over its training seeds (NAME, NAME-s1, ...): mean ± sd")
    ap.add_argument("--output", help="also write the table to this file")
    args = ap.parse_args(argv)
    try:
        rows = load_rows(args.metrics)
    except ValueError as e:
        print(f"results_table: {e}", file=sys.stderr)
        return 2
    rows.sort(key=lambda r: (SEED_TAG.sub("", r[0]), seed_of(r[0])))  # a method's seeds side by side, in order
    if args.group_seeds:
        rows = group_seeds(rows)
    table = markdown_table(rows, baselines=set(args.baseline))
    print(table)
    if args.output:
        Path(args.output).write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
