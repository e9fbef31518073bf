"""The shipped models load by name and predict on freshly generated data; the demo runs end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from egopressdiff.shipped import SHIPPED_MODEL_NAMES, model_card, resolve_checkpoint, shipped_models


@pytest.fixture(scope="module")
def fresh_sequence(tmp_path_factory):
    from egopressdiff.data.synth import generate_dataset

    root = tmp_path_factory.mktemp("fresh")
    generate_dataset(root, participants=1, sequences=2, frames=24, seed=987, image_size=(96, 72), progress=False)
    return root


def test_every_shipped_model_is_installed_with_a_card():
    ships = shipped_models()
    assert set(SHIPPED_MODEL_NAMES) <= set(ships)
    total = 0
    for name in SHIPPED_MODEL_NAMES:
        card = model_card(ships[name])
        assert card["trained_on"] and card["training"], name
        total += sum(f.stat().st_size for f in ships[name].rglob("*") if f.is_file())
    assert total <= 60 * 2**20  # the size budget for all shipped weights together


@pytest.mark.parametrize("name", SHIPPED_MODEL_NAMES)
def test_shipped_model_predicts_fresh_sequence(name, fresh_sequence):
    from egopressdiff.data.clips import ClipDataset
    from egopressdiff.inference import _to_batch
    from egopressdiff.pipelines.base import pipeline_for
    from egopressdiff.training.registry import load_model

    model = load_model(resolve_checkpoint(name))
    req = model.data_requirements()
    ds = ClipDataset(fresh_sequence, clip_length=req["clip_length"], crop_size=req["crop_size"],
                     uv_conditioning=req["uv_conditioning"], uv_cond_size=req["uv_cond_size"] or 64)
    p, s, frames = ds.clip_frames(0)
    batch = _to_batch(ds.load_frames(p, s, frames))
    with torch.no_grad():
        out = pipeline_for(model).sample(batch, num_inference_steps=2, seed=0)["pressure_kpa"]
    assert out.shape == (1, len(frames), 224, 224)
    out = out.numpy()
    mask = batch["uv_mask"][0].numpy()
    assert np.isfinite(out).all() and (out >= 0).all()
    assert np.all(out[:, :, mask == 0] == 0)  # masked by the UV mask


def test_models_command_lists_the_shipped_models(capsys):
    from egopressdiff.cli.main import main

    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = {r["name"]: r for r in rows}
    for name in SHIPPED_MODEL_NAMES:
        assert names[name]["installed"] is True


def info_steps(out):
    """The sampling steps recorded by the demo's EgoPressDiff predictions."""
    return {json.loads((d / "predict_info.json").read_text())["steps"]
            for d in (out / "predictions").iterdir() if d.name.startswith("synthetic-egopressdiff")}


def test_demo_cli_samples_egopressdiff_with_the_demo_steps():
    """`egopressdiff demo`'s --steps default is the demo's documented speed setting."""
    import argparse

    from egopressdiff.cli import demo as cli_demo
    from egopressdiff.demo import DEMO_STEPS

    p = argparse.ArgumentParser()
    cli_demo.add_arguments(p)
    assert p.parse_args([]).steps == DEMO_STEPS == 3


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    from egopressdiff.demo import run_demo

    out = tmp_path / "demo"
    res = run_demo(out, participants=1, sequences=2, frames=20, steps=2, render_sequences=1, progress=False,
                   log=lambda *a: None)
    html = (out / "index.html").read_text()
    assert "EgoPressDiff" in html and "Per-frame classification" in html and "PressureFormer-style" in html
    assert "never seen in training" in html and "monocular hand-mesh estimator" in html  # the notes say what it is
    # fewer steps than the model's default: the report says so, and how to get the default
    from egopressdiff.shipped import resolve_checkpoint
    from egopressdiff.training.registry import load_model

    default = load_model(resolve_checkpoint("synthetic-egopressdiff")).config.sample_steps
    assert f"EgoPressDiff sampled with 2 steps for speed (the model&#x27;s default: {default}" in html
    assert info_steps(out) == {2}
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"EgoPressDiff (ours)", "Per-frame classification", "Per-frame regression",
                            "PressureFormer-style", "EgoPressDiff (ours), estimated mesh"}
    for m in metrics.values():
        assert 0.0 <= m["volumetric_iou"] <= 1.0 and m["mae_kpa"] >= 0.0
    # the estimated-mesh row really was predicted from the estimated mesh, the others from the annotation
    info = {d.name: json.loads((d / "predict_info.json").read_text()) for d in (out / "predictions").iterdir()}
    assert info["synthetic-egopressdiff-estimated-mesh"]["mesh"] == "estimated"
    assert {i["mesh"] for n, i in info.items() if n != "synthetic-egopressdiff-estimated-mesh"} == {"annotated"}
    assert len(info) == 5
    assert res["timings"]["total_s"] > 0
    assert any(out.joinpath("render").rglob("*.png"))


def test_predict_floor_option(tmp_path, fresh_sequence):
    """--floor overrides EgoPressDiff's output floor (recorded in predict_info.json); baselines refuse it."""
    from egopressdiff.cli.main import main
    from egopressdiff.data.reader import EgoPressureReader
    from egopressdiff.evaluation.predictions import prediction_path, read_prediction

    p = EgoPressureReader(fresh_sequence).participants()[0]
    common = ["--data", str(fresh_sequence), "--participants", p, "--steps", "2", "--no-progress"]
    outs = {}
    for floor in ("0", "1e6"):
        out = tmp_path / f"floor{floor}"
        assert main(["predict", "--checkpoint", "synthetic-egopressdiff", "--output", str(out),
                     "--floor", floor] + common) == 0
        assert json.loads((out / "predict_info.json").read_text())["output_floor_kpa"] == float(floor)
        seq = json.loads((out / "predict_info.json").read_text())["sequences"][0].split("/")[1]
        outs[floor] = np.asarray(read_prediction(prediction_path(out, p, seq)).pressure_kpa)
    assert outs["0"].max() > 0 and np.all(outs["1e6"] == 0)  # a floor above every value zeroes the map
    assert main(["predict", "--checkpoint", "synthetic-baseline-cls", "--output", str(tmp_path / "b"),
                 "--floor", "1"] + common) == 2
    assert main(["predict", "--checkpoint", "synthetic-egopressdiff", "--output", str(tmp_path / "c"),
                 "--floor", "-1"] + common) == 2


def test_predict_refuses_to_mix_settings_in_one_folder(tmp_path, fresh_sequence):
    """Re-running predict into a folder made with other settings would silently skip its finished
    sequences and mix two settings: it is refused (exit 2) unless --overwrite."""
    from egopressdiff.cli.main import main
    from egopressdiff.data.reader import EgoPressureReader

    p = EgoPressureReader(fresh_sequence).participants()[0]
    out = tmp_path / "pred"
    base = ["predict", "--checkpoint", "synthetic-egopressdiff", "--data", str(fresh_sequence), "--output", str(out),
            "--participants", p, "--no-progress"]
    assert main(base + ["--steps", "2"]) == 0
    assert main(base + ["--steps", "2"]) == 0  # same settings: finished sequences are skipped
    assert main(base + ["--steps", "3"]) == 2
    assert main(base + ["--steps", "2", "--floor", "1"]) == 2  # not the shipped floor (0.25): another floor mixes
    assert main(base + ["--steps", "3", "--overwrite"]) == 0
    assert json.loads((out / "predict_info.json").read_text())["steps"] == 3
