"""Copy trained benchmark runs into the package as the shipped models, each with a model card.

    python scripts/ship_models.py WORKDIR [FLOOR_KPA [STEPS]]   (WORKDIR as in reproduce_results.sh)

FLOOR_KPA: EgoPressDiff's output_floor_kpa (default: the floor chosen with the steps in
WORKDIR/sampling-steps-val-egopressdiff-uv.json when reproduce_results.sh STEPS=choose FLOOR=choose made that
sweep over several floors, else 0: the raw samples; reproduce_results.sh with FLOOR=choose alone writes a
validation choice to WORKDIR/floor-egopressdiff-uv-annotated.txt).
STEPS: EgoPressDiff's default sampling steps (`sample_steps`; default: the validation choice in
WORKDIR/sampling-steps-val-egopressdiff-uv.json when reproduce_results.sh STEPS=choose made one, else keep the
run's); the model card says how each was set.
Env: CONFIGS (the config folder the runs were trained with, default configs/benchmark; the GPU
budget is configs/benchmark-gpu), MACHINE (where they were trained, for the model cards),
SHIP_DEST (where the model folders go; default the package's assets/models).

Each shipped model is the seed-0 run's final `model/` folder (config.json + safetensors; EMA
weights) plus `model_card.json`: the data (generator version, command, split), the budget (steps x
frames per step, config, every key the run changed from that config, e.g. `--set` overrides), the
seeds, the machine, and its test metrics on each mesh track evaluated. Every run must be there:
a missing one stops the script (one line, exit 2) before anything is copied.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SHIPS = {
    "synthetic-egopressdiff": ("egopressdiff-uv", "EgoPressDiff-tiny, UV-aligned conditioning (cond_space=uv)"),
    "synthetic-baseline-cls": ("baseline-cls-uv", "per-frame 9-class classification baseline (PressureVision style), UV-aligned inputs"),
    "synthetic-baseline-reg": ("baseline-reg-uv", "per-frame regression baseline, UV-aligned inputs"),
    "synthetic-baseline-pressureformer": ("baseline-pformer-uv", "per-frame PressureFormer-style baseline (hand vertices "
                                          "as queries cross-attending to image features, scattered onto the UV atlas, "
                                          "9 classes), UV-aligned inputs"),
}
CONFIGS = os.environ.get("CONFIGS", "configs/benchmark").rstrip("/")
MACHINE = os.environ.get("MACHINE", "2-core CPU (Intel Xeon), no GPU")
DEST = Path(os.environ.get("SHIP_DEST", ROOT / "src" / "egopressdiff" / "assets" / "models"))
DATA_CMD = "egopressdiff synth DATA --participants 8 --sequences 8 --frames 64 --seed 1"
METRIC_KEYS = ("contact_iou", "volumetric_iou", "mae_kpa", "temporal_accuracy", "false_contact_rate", "force_error_n")
RUN_FILES = ("model/config.json", "train_summary.json", "config.yaml")


class ShipError(Exception):
    """Something the user must fix first (printed on one line, exit 2)."""


def data_info(work: Path) -> dict:
    """The benchmark data the runs were trained on, as its files record it: generator version, seed, split."""
    from egopressdiff.data.splits import split_table
    from egopressdiff.data.synth.version import GENERATOR_VERSION, HAND_MODEL, SYNTH_MARKER

    versions, seeds, per_participant = set(), set(), {}
    for f in sorted((work / "data" / "configs").glob("*/*.json")):
        marker = json.loads(f.read_text()).get(SYNTH_MARKER) or {}
        if "generator_version" in marker:
            versions.add(int(marker["generator_version"]))
            seeds.add(marker.get("seed"))
            per_participant[f.parent.name] = per_participant.get(f.parent.name, 0) + 1
    if not versions:
        raise ShipError(f"{work / 'data'} holds no synthetic dataset (no generator_version in configs/*/*.json): "
                        "the model cards must name the data version")
    one = lambda xs: sorted(xs)[0] if len(xs) == 1 else sorted(xs)  # noqa: E731
    seed, sequences = one(seeds), one(set(per_participant.values()))
    split = split_table(sorted(per_participant))
    command = DATA_CMD
    if (seed, sequences, len(per_participant)) != (1, 8, 8):  # not the README benchmark: say what it was
        command = (f"egopressdiff synth DATA --participants {len(per_participant)} --sequences {sequences} "
                   f"--seed {seed} (not the README benchmark)")
    return {"generator_version": one(versions), "generator_version_of_this_code": GENERATOR_VERSION,
            "hand_model": HAND_MODEL, "synth_seed": seed, "command": command,
            "split": "training participants {} (validation {}, test {})".format(
                *(", ".join(split[k]) or "-" for k in ("train", "val", "test")))}


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.update(_flatten(v, key + ".") if isinstance(v, dict) else {key: v})
    return out


def overrides(run_cfg: dict, config_file: Path) -> dict:
    """Every key whose value in the run differs from the config file's (the --set / --max-steps overrides).

    Keys the config leaves open (null, filled in from the model's requirements) are not overrides.
    """
    from egopressdiff.config import load_run_config

    base = _flatten(load_run_config(config_file))
    run = _flatten(run_cfg)
    return {k: run[k] for k in sorted(run) if k in base and base[k] is not None and run[k] != base[k]}


def seeds_trained(work: Path, run: str) -> list[int]:
    """Training seeds of the run and its seed siblings (RUN-sN), as their config.yaml record them."""
    seeds = []
    for d in sorted((work / "runs").iterdir()):
        if (d.name == run or re.fullmatch(re.escape(run) + r"-s\d+", d.name)) and (d / "model" / "config.json").is_file():
            seeds.append(int(yaml.safe_load((d / "config.yaml").read_text())["train"]["seed"]))
    return sorted(seeds)


def test_metrics(work: Path, run: str) -> dict:
    """The run's test metrics per mesh track (metrics/TRACK/RUN.json; the older layout metrics/RUN.json is annotated)."""
    out = {}
    for track in ("annotated", "estimated"):
        f = work / "metrics" / track / f"{run}.json"
        if not f.is_file() and track == "annotated":
            f = work / "metrics" / f"{run}.json"
        if f.is_file():
            m = json.loads(f.read_text())
            out[track] = {k: m.get(k) for k in METRIC_KEYS}
    if out:
        out["evaluated_on"] = "the test participants of the same data (see data.split), 1 sample"
    return out


def model_card(work: Path, name: str, run: str, description: str, data: dict) -> dict:
    run_dir = work / "runs" / run
    summary = json.loads((run_dir / "train_summary.json").read_text())
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    t, d = cfg["train"], cfg["data"]
    world = int(summary.get("world_size") or 1)
    # the trainer fills data.clip_length from the model; an older run's config may leave it to the model's config
    clip = d.get("clip_length") or json.loads((run_dir / "model" / "config.json").read_text()).get("clip_length")
    if not clip:
        raise ShipError(f"{run_dir / 'config.yaml'} names no data.clip_length: cannot state the frames per step")
    frames_per_step = int(t["batch_size"]) * int(clip) * int(t.get("grad_accum") or 1) * world
    card = {
        "name": name,
        "description": description,
        "trained_on": f"this project's synthetic benchmark, generator version {data['generator_version']}: "
                      f"`{data['command']}`, {data['split']}, {d.get('mesh', 'annotated')} mesh",
        "data": data,
        "training": {
            "run": f"runs/{run}",
            "config": f"{CONFIGS}/{run}.yaml",
            "overrides": overrides(cfg, ROOT / CONFIGS / f"{run}.yaml"),
            "budget": f"{summary['steps']} steps x {frames_per_step} frames/step "
                      f"(batch {t['batch_size']} x {clip} frames"
                      + (f" x {t['grad_accum']} accumulated" if int(t.get("grad_accum") or 1) > 1 else "")
                      + (f" x {world} processes" if world > 1 else "") + ")",
            "steps": summary["steps"], "frames_per_step": frames_per_step,
            "seed": int(t["seed"]), "seeds_trained": seeds_trained(work, run),
            "machine": MACHINE, "wall_time_s": summary["wall_time_s"],
            "lr": t["lr"], "batch_size": t["batch_size"], "ema": summary.get("ema"),
            "last_val_loss": (summary.get("val_losses") or [None])[-1],
        },
    }
    metrics = test_metrics(work, run)
    if metrics:
        card["metrics"] = metrics
    return card


def check_runs(work: Path) -> None:
    for run, _ in SHIPS.values():
        for f in RUN_FILES:
            if not (work / "runs" / run / f).is_file():
                raise ShipError(f"run {work / 'runs' / run} is missing {f}: train it first "
                                "(scripts/reproduce_results.sh); nothing was shipped")
        if not (ROOT / CONFIGS / f"{run}.yaml").is_file():
            raise ShipError(f"config {CONFIGS}/{run}.yaml not found: set CONFIGS to the folder the runs were trained with")


STEPS_CHOICE = "sampling-steps-val-egopressdiff-uv.json"  # reproduce_results.sh STEPS=choose writes it


def validation_steps(work: Path) -> dict | None:
    """The validation choice of sampling steps for the shipped run (benchmarks/sampling_steps.py --split val
    --seeds ..., as reproduce_results.sh STEPS=choose writes it), or None."""
    chosen = work / STEPS_CHOICE
    if not chosen.is_file():
        return None
    res = json.loads(chosen.read_text())
    ok = isinstance(res, dict) and res.get("split") == "val" and isinstance(res.get("chosen_steps"), int)
    return res if ok else None


def steps_provenance(work: Path, steps: int | None) -> str:
    """How the default sampling steps were set: the validation choice, given here, or the run's own."""
    if steps is None:
        return "the run's config"
    res = validation_steps(work)
    if res is not None and res["chosen_steps"] == int(steps):
        seeds = sorted({r.get("seed") for r in res.get("rows", [])})
        return (f"chosen on the validation participant: benchmarks/sampling_steps.py --split val --seeds "
                f"{' '.join(map(str, seeds))} ({res.get('rule')})")
    return "given to ship_models.py"


def floor_chosen_with_steps(choice: dict | None) -> float | None:
    """The output floor the validation sweep chose together with the steps (a sweep over several floors)."""
    if choice is None or len(choice.get("floors_kpa", [])) < 2 or choice.get("chosen_floor_kpa") is None:
        return None
    return float(choice["chosen_floor_kpa"])


def floor_provenance(work: Path, floor_kpa: float, choice: dict | None) -> str:
    """How the output floor was set: with the steps on validation, by choose_floor.py on validation, or here."""
    joint = floor_chosen_with_steps(choice)
    if joint is not None and joint == float(floor_kpa):
        return (f"chosen on the validation participant together with the sampling steps: "
                f"benchmarks/sampling_steps.py --split val --floors {' '.join(f'{f:g}' for f in choice['floors_kpa'])}"
                f" ({choice.get('rule')})")
    chosen = work / "floor-egopressdiff-uv-annotated.txt"
    if chosen.is_file() and float(chosen.read_text()) == float(floor_kpa) and floor_kpa > 0:
        return "chosen on the validation participant (scripts/choose_floor.py)"
    return "0: the raw samples" if floor_kpa == 0 else "given to ship_models.py"


def main(work: str, floor_kpa: float | None = None, steps: int | None = None) -> int:
    work = Path(work)
    dest_root = DEST
    dest_root.mkdir(parents=True, exist_ok=True)
    check_runs(work)
    choice = validation_steps(work)
    if steps is None and choice is not None:
        steps = choice["chosen_steps"]
    if floor_kpa is None:
        joint = floor_chosen_with_steps(choice)
        floor_kpa = 0.0 if joint is None else joint
    data = data_info(work)
    cards = {name: model_card(work, name, run, desc, data) for name, (run, desc) in SHIPS.items()}
    total = 0.0
    for name, (run, _) in SHIPS.items():
        card = cards[name]
        dest = dest_root / name
        tmp = dest_root / f".{name}.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        shutil.copytree(work / "runs" / run / "model", tmp)
        if name == "synthetic-egopressdiff":
            cfg_path = tmp / "config.json"
            model_cfg = json.loads(cfg_path.read_text())
            model_cfg["output_floor_kpa"] = float(floor_kpa)
            if steps is not None:
                model_cfg["sample_steps"] = int(steps)
            cfg_path.write_text(json.dumps(model_cfg, indent=2) + "\n")
            card["training"]["output_floor_kpa"] = {"value": float(floor_kpa),
                                                    "how": floor_provenance(work, floor_kpa, choice)}
            card["training"]["sample_steps"] = {"value": model_cfg.get("sample_steps"),
                                                "how": steps_provenance(work, steps)}
        (tmp / "model_card.json").write_text(json.dumps(card, indent=2) + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
        size = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file()) / 2**20
        total += size
        print(f"{name}: {size:.1f} MiB from {work / 'runs' / run / 'model'}; {card['training']['budget']}, "
              f"seeds {card['training']['seeds_trained']}, overrides {card['training']['overrides'] or 'none'}")
    print(f"total {total:.1f} MiB (budget 60 MB)")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else "bench-work",
                              float(sys.argv[2]) if len(sys.argv) > 2 else None,
                              int(sys.argv[3]) if len(sys.argv) > 3 else None))
    except ShipError as e:
        print(f"ship_models: {e}", file=sys.stderr)
        raise SystemExit(2) from None
