"""Print the README results table (Markdown) from `egopressdiff evaluate --json` files.

    python scripts/results_table.py metrics/*.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

COLUMNS = (("contact_iou", "Contact IoU ↑"), ("volumetric_iou", "Volumetric IoU ↑"), ("mae_kpa", "MAE kPa ↓"),
           ("temporal_accuracy", "Temporal acc. ↑"), ("false_contact_rate", "False contact (hover) ↓"),
           ("force_error_n", "Force err. N ↓"))


def main(paths) -> int:
    print("| method | " + " | ".join(c[1] for c in COLUMNS) + " |")
    print("|---|" + "---:|" * len(COLUMNS))
    for p in paths:
        m = json.loads(Path(p).read_text())
        cells = ["-" if m.get(k) is None else f"{m[k]:.3f}" for k, _ in COLUMNS]
        print(f"| {Path(p).stem} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
