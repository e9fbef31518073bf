"""scripts/ship_models.py: model cards that name the data version, budget, overrides, seeds and machine;
a missing run is refused before anything is copied."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "ship_models.py"


@pytest.fixture(scope="module")
def ship():
    spec = importlib.util.spec_from_file_location("ship_models", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def fake_work(tmp_path, ship, version=2):
    """A WORKDIR as reproduce_results.sh leaves it: data configs with the generator's marker, and the runs."""
    from egopressdiff.config import load_run_config, save_run_config
    from egopressdiff.data.synth.version import SYNTH_MARKER

    work = tmp_path / "work"
    for i in range(1, 9):
        d = work / "data" / "configs" / f"p_{i:03d}"
        d.mkdir(parents=True)
        for k in range(8):
            (d / f"p_{i:03d}_seq{k}.json").write_text(json.dumps({SYNTH_MARKER: {"generator_version": version,
                                                                                 "seed": 1}}))
    runs = [(run, []) for run, _ in ship.SHIPS.values()]
    runs.append(("baseline-pformer-uv-s1", ["train.seed=1"]))
    runs[0] = (runs[0][0], ["train.lr=1e-4"])  # a --set override the card must record
    for run, sets in runs:
        r = work / "runs" / run
        (r / "model").mkdir(parents=True)
        (r / "model" / "config.json").write_text(json.dumps({"clip_length": 16, "sample_steps": 8}))
        cfg = load_run_config(ROOT / "configs" / "benchmark" / f"{run.split('-s')[0]}.yaml", sets)
        if run.startswith("baseline-"):
            cfg["data"]["clip_length"] = 4  # the trainer fills it in; EgoPressDiff's is left to its model config
        save_run_config(cfg, r / "config.yaml")
        (r / "train_summary.json").write_text(json.dumps({"steps": cfg["train"]["max_steps"],
                                                          "max_steps": cfg["train"]["max_steps"], "wall_time_s": 12.5,
                                                          "world_size": 1, "ema": 0.998,
                                                          "val_losses": [[10, 0.5]]}))
    return work


def test_cards_name_data_budget_overrides_seeds_and_machine(tmp_path, ship, monkeypatch):
    work = fake_work(tmp_path, ship)
    dest = tmp_path / "models"
    monkeypatch.setattr(ship, "DEST", dest)
    monkeypatch.setattr(ship, "CONFIGS", "configs/benchmark")
    monkeypatch.setattr(ship, "MACHINE", "the test machine")
    assert ship.main(str(work)) == 0
    assert {d.name for d in dest.iterdir()} == set(ship.SHIPS)
    card = json.loads((dest / "synthetic-baseline-pressureformer" / "model_card.json").read_text())
    assert card["data"]["generator_version"] == 2 and "generator version 2" in card["trained_on"]
    t = card["training"]
    assert t["config"] == "configs/benchmark/baseline-pformer-uv.yaml"
    assert t["budget"].startswith("1500 steps x 16 frames/step") and t["frames_per_step"] == 16
    assert t["seed"] == 0 and t["seeds_trained"] == [0, 1]
    assert t["machine"] == "the test machine" and t["overrides"] == {}
    ours = json.loads((dest / "synthetic-egopressdiff" / "model_card.json").read_text())
    assert ours["training"]["overrides"] == {"train.lr": 1e-4}
    assert ours["training"]["frames_per_step"] == 32  # batch 2 x 16-frame clips
    assert json.loads((dest / "synthetic-egopressdiff" / "config.json").read_text())["output_floor_kpa"] == 0.0
    assert ours["training"]["sample_steps"] == {"value": 8, "how": "the run's config"}


def test_sampling_steps_chosen_on_validation_are_named_in_the_card(tmp_path, ship, monkeypatch):
    work = fake_work(tmp_path, ship)
    dest = tmp_path / "models"
    monkeypatch.setattr(ship, "DEST", dest)
    choice = {"split": "val", "chosen_steps": 3, "rule": "best mean", "rows": [{"seed": 0}, {"seed": 1}]}
    (work / ship.STEPS_CHOICE).write_text(json.dumps(choice))
    assert ship.main(str(work), 0.0) == 0  # no STEPS given: the validation choice
    cfg = json.loads((dest / "synthetic-egopressdiff" / "config.json").read_text())
    how = json.loads((dest / "synthetic-egopressdiff" / "model_card.json").read_text())["training"]["sample_steps"]
    assert cfg["sample_steps"] == 3 and how["value"] == 3
    assert "validation" in how["how"] and "--seeds 0 1" in how["how"]
    assert ship.main(str(work), 0.0, 4) == 0  # not the validation choice: said so
    how = json.loads((dest / "synthetic-egopressdiff" / "model_card.json").read_text())["training"]["sample_steps"]
    assert how == {"value": 4, "how": "given to ship_models.py"}


def test_a_floor_chosen_with_the_steps_on_validation_is_shipped_and_named(tmp_path, ship, monkeypatch):
    """A sweep over several floors (reproduce_results.sh STEPS=choose FLOOR=choose) sets the shipped floor
    when none is given; one given explicitly wins and the card says so."""
    work = fake_work(tmp_path, ship)
    dest = tmp_path / "models"
    monkeypatch.setattr(ship, "DEST", dest)
    choice = {"split": "val", "chosen_steps": 3, "chosen_floor_kpa": 0.25, "floors_kpa": [0.0, 0.25, 1.0],
              "rule": "best mean", "rows": [{"seed": 0}]}
    (work / ship.STEPS_CHOICE).write_text(json.dumps(choice))

    def shipped():
        cfg = json.loads((dest / "synthetic-egopressdiff" / "config.json").read_text())
        card = json.loads((dest / "synthetic-egopressdiff" / "model_card.json").read_text())
        return cfg["output_floor_kpa"], card["training"]["output_floor_kpa"]["how"]

    assert ship.main(str(work)) == 0
    floor, how = shipped()
    assert floor == 0.25 and "together with the sampling steps" in how and "--floors 0 0.25 1" in how
    assert ship.main(str(work), 0.5) == 0
    assert shipped() == (0.5, "given to ship_models.py")
    # a sweep at one floor chose no floor: the default stays the raw samples
    (work / ship.STEPS_CHOICE).write_text(json.dumps({**choice, "floors_kpa": [0.0], "chosen_floor_kpa": 0.0}))
    assert ship.main(str(work)) == 0
    assert shipped() == (0.0, "0: the raw samples")


def test_a_missing_run_is_refused_in_one_line(tmp_path, ship):
    work = fake_work(tmp_path, ship)
    (work / "runs" / "baseline-pformer-uv" / "model" / "config.json").unlink()
    dest = tmp_path / "models"
    env = {**os.environ, "SHIP_DEST": str(dest), "PYTHONPATH": str(ROOT / "src")}
    res = subprocess.run([sys.executable, str(SCRIPT), str(work)], capture_output=True, text=True, env=env)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "baseline-pformer-uv" in res.stderr
    assert not dest.exists() or not any(dest.iterdir())  # nothing shipped
