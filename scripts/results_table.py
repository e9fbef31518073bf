"""Print the README results table (Markdown) from `egopressdiff evaluate --json` files.

    python scripts/results_table.py metrics/*.json [--baseline NAME ...] [--output table.md]

One row per file, named by the file's stem. The per-frame baselines are the rows whose
name starts with ``baseline-`` (and any named with --baseline); every row gets its
Volumetric IoU as a multiple of the best baseline row's in the same table (the paper's
claim is EgoPressDiff >= 1.34x). Files that hold the uncertainty metrics (predictions
made with --samples N > 1) fill the uncertainty columns; the columns appear only when
some row has them.
"""

from __future__ import annotations

import argparse
import json
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


def _cell(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def markdown_table(rows, baselines=()) -> str:
    best = best_baseline(rows, baselines)
    with_ratio = best is not None and best[1] > 0
    with_spread = any(k in m for _, m in rows for k, _ in UNCERTAINTY_COLUMNS)
    head = [label for _, label in COLUMNS]
    if with_ratio:
        head.append(RATIO_LABEL)
    if with_spread:
        head += [label for _, label in UNCERTAINTY_COLUMNS]
    lines = ["| method | " + " | ".join(head) + " |", "|---|" + "---:|" * len(head)]
    for name, m in rows:
        cells = [_cell(m.get(k)) for k, _ in COLUMNS]
        if with_ratio:
            v = m.get("volumetric_iou")
            cells.append("-" if v is None else f"{v / best[1]:.2f}×")
        if with_spread:
            cells += [_cell(m.get(k)) for k, _ in UNCERTAINTY_COLUMNS]
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
    ap.add_argument("--output", help="also write the table to this file")
    args = ap.parse_args(argv)
    try:
        rows = load_rows(args.metrics)
    except ValueError as e:
        print(f"results_table: {e}", file=sys.stderr)
        return 2
    table = markdown_table(rows, baselines=set(args.baseline))
    print(table)
    if args.output:
        Path(args.output).write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
