"""What to do with a training run folder, for reproduce_results.sh and run_ablations.sh.

    python scripts/run_state.py RUN CONFIG [MAX_STEPS]

Prints "done" (trained to the budget asked for now), "resume" (checkpoints, or stopped early) or
"new". A run finished with another budget is refused (one line, exit 2) rather than reused.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from egopressdiff.config import load_run_config


def main(run: str, cfg: str, max_steps: str = "") -> int:
    run = Path(run)
    want = int(max_steps) if max_steps else load_run_config(cfg)["train"]["max_steps"]
    summary = run / "train_summary.json"
    if (run / "model" / "config.json").is_file() and summary.is_file():
        s = json.loads(summary.read_text())
        if s["max_steps"] != want:
            print(f"{run} was trained for {s['max_steps']} steps, {want} asked for: use another WORKDIR or delete it",
                  file=sys.stderr)
            return 2
        print("done" if s["steps"] >= want else "resume")
    else:
        print("resume" if (run / "checkpoints").is_dir() else "new")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:4]))
