"""Copy trained benchmark runs into the package as the shipped models, with a model card.

    python scripts/ship_models.py WORKDIR [FLOOR_KPA [STEPS]]   (WORKDIR as in reproduce_results.sh)

FLOOR_KPA: EgoPressDiff's output_floor_kpa, chosen on the validation split with
scripts/choose_floor.py (reproduce_results.sh writes it to WORKDIR/floor.txt; default 0 = off).
STEPS: EgoPressDiff's default sampling steps (`sample_steps`; default: keep the run's).
Env: CONFIGS (the config folder the runs were trained with, default configs/benchmark; the GPU
budget is configs/benchmark-gpu), MACHINE (where they were trained, for the model card).

Each shipped model is the run's final `model/` folder (config.json + safetensors; EMA weights)
plus `model_card.json`: what it was trained on, how, and its test metrics.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SHIPS = {
    "synthetic-egopressdiff": ("egopressdiff-uv", "EgoPressDiff-tiny, UV-aligned conditioning (cond_space=uv)"),
    "synthetic-baseline-cls": ("baseline-cls-uv", "per-frame 9-class classification baseline (PressureVision style), UV-aligned inputs"),
    "synthetic-baseline-reg": ("baseline-reg-uv", "per-frame regression baseline, UV-aligned inputs"),
}
CONFIGS = os.environ.get("CONFIGS", "configs/benchmark").rstrip("/")
MACHINE = os.environ.get("MACHINE", "2-core CPU (Intel Xeon), no GPU")
DATA_CMD = "egopressdiff synth DATA --participants 8 --sequences 8 --frames 64 --seed 1"


def main(work: str, floor_kpa: float = 0.0, steps: int | None = None) -> int:
    work = Path(work)
    dest_root = ROOT / "src" / "egopressdiff" / "assets" / "models"
    for name, (run, description) in SHIPS.items():
        run_dir = work / "runs" / run
        summary = json.loads((run_dir / "train_summary.json").read_text())
        cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
        metrics_file = work / "metrics" / f"{run}.json"
        metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else None
        card = {
            "name": name,
            "description": description,
            "trained_on": f"this project's synthetic benchmark: `{DATA_CMD}`, training participants "
                          "p_001-p_005 (validation p_006, test p_007-p_008)",
            "training": {"config": f"{CONFIGS}/{run}.yaml", "steps": summary["steps"],
                         "wall_time_s": summary["wall_time_s"], "ema": summary.get("ema"),
                         "lr": cfg["train"]["lr"], "batch_size": cfg["train"]["batch_size"],
                         "machine": MACHINE,
                         "last_val_loss": (summary.get("val_losses") or [None])[-1]},
        }
        if metrics is not None:
            card["metrics"] = {k: metrics[k] for k in ("contact_iou", "volumetric_iou", "mae_kpa",
                                                      "temporal_accuracy", "false_contact_rate")}
            card["metrics"]["evaluated_on"] = "test participants p_007-p_008 of the same benchmark"
        dest = dest_root / name
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(run_dir / "model", dest)
        if name == "synthetic-egopressdiff":
            cfg_path = dest / "config.json"
            model_cfg = json.loads(cfg_path.read_text())
            model_cfg["output_floor_kpa"] = float(floor_kpa)
            if steps is not None:
                model_cfg["sample_steps"] = int(steps)
            cfg_path.write_text(json.dumps(model_cfg, indent=2) + "\n")
            card["training"]["output_floor_kpa"] = {"value": float(floor_kpa),
                                                    "chosen_on": "validation participant p_006 (choose_floor.py)"}
            card["training"]["sample_steps"] = {"value": model_cfg["sample_steps"],
                                                "chosen_on": "validation participant p_006"}
        (dest / "model_card.json").write_text(json.dumps(card, indent=2) + "\n")
        size = sum(f.stat().st_size for f in dest.iterdir()) / 2**20
        print(f"{name}: {size:.1f} MiB from {run_dir / 'model'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else "bench-work",
                          float(sys.argv[2]) if len(sys.argv) > 2 else 0.0,
                          int(sys.argv[3]) if len(sys.argv) > 3 else None))
