"""``egopressdiff demo``: the whole pipeline on fresh synthetic data with the shipped models.

synth (a small fresh test set, seed not used for training) → predict with every
shipped model given the annotated hand mesh (the paper's protocol), and with the
shipped EgoPressDiff given the estimated mesh (what a deployment with a monocular
hand-mesh estimator gets) → evaluate → render → one ``index.html`` with the
comparison table and pictures.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from egopressdiff.errors import CheckpointError, EgoPressDiffError
from egopressdiff.fsutil import atomic_write_text, ensure_output_dir

# (row label, shipped model, hand mesh given to it)
METHODS = (
    ("EgoPressDiff (ours)", "synthetic-egopressdiff", "annotated"),
    ("Per-frame classification", "synthetic-baseline-cls", "annotated"),
    ("Per-frame regression", "synthetic-baseline-reg", "annotated"),
    ("PressureFormer-style", "synthetic-baseline-pressureformer", "annotated"),
    ("EgoPressDiff (ours), estimated mesh", "synthetic-egopressdiff", "estimated"),
)
NOTES = ("You are looking at fresh synthetic test data (seed {seed}), generated just now and never seen in training, "
         "predicted by every shipped model given the annotated hand mesh (the paper's protocol), plus one EgoPressDiff "
         "row given the estimated mesh, which is what a deployment with a monocular hand-mesh estimator gets. "
         "Metrics (ground truth from the simulated pressure pad): contact = pressure > 1 kPa; Contact IoU and "
         "Volumetric IoU (sum of min / sum of max) pooled over all UV texels and frames; MAE in kPa over the UV map; "
         "temporal accuracy = share of frames whose any-contact flag agrees; the prediction is masked by the UV mask "
         "first.\nModels: {models}. {steps_note}Wall time: {total:.0f} s.")
# EgoPressDiff's sampling steps in the demo: fewer than the shipped model's default (6, chosen on validation)
# so that the demo stays under a minute on 2 cores; on validation 3 steps reach 0.225 Volumetric IoU
# against 0.230 at 6 (README, "Sampling steps and output floor"). The report says which were used.
DEMO_STEPS = 3


def _folder(name: str, mesh: str) -> str:
    return name if mesh == "annotated" else f"{name}-{mesh}-mesh"
DEMO_SEED = 20261122  # differs from every seed the shipped models were trained on


def run_demo(output, participants: int = 1, sequences: int = 3, frames: int = 16, seed: int = DEMO_SEED,
             steps: int | None = DEMO_STEPS, samples: int = 1, render_sequences: int = 2, overwrite: bool = False,
             progress: bool = True, log=print) -> dict:
    from egopressdiff.shipped import shipped_models

    out = Path(output)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise EgoPressDiffError(f"demo output {out} is not empty (use --overwrite or another --output)")
    ensure_output_dir(out, "demo output")
    ships = shipped_models()
    methods = [m for m in METHODS if m[1] in ships]
    if not methods:
        raise CheckpointError("no shipped model is installed in this build (see `egopressdiff models`)")

    timings = {}
    t0 = time.perf_counter()
    data = out / "data"
    log(f"[1/4] synthesising a fresh test set ({participants} participant(s) x {sequences} sequences x {frames} frames)"
        " and loading the shipped models")
    # One spawned child process works beside this one: it synthesises the data while this process
    # imports and loads the shipped models (about 10 s of diffusers / transformers imports on 2 cores),
    # and later renders half of the videos. A thread would not help: both halves hold the GIL.
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    try:
        models = _synthesise_and_load(pool, data, methods, participants=participants, sequences=sequences,
                                      frames=frames, seed=seed, progress=progress)
        timings["synth_and_load_s"] = time.perf_counter() - t0

        from egopressdiff.data.reader import EgoPressureReader
        from egopressdiff.evaluation.metrics import format_comparison_table, metrics_to_json
        from egopressdiff.evaluation.run import evaluate_folder
        from egopressdiff.inference import PredictOptions, predict_dataset, select_sequences

        reader = EgoPressureReader(data)
        pairs = select_sequences(reader, split="all")
        results, preds = {}, {}
        inputs = {}  # model inputs built once for all models that need the same ones (input_cache)
        for i, (label, name, mesh) in enumerate(methods, 1):
            t = time.perf_counter()
            log(f"[2/4] predicting with {name}, {mesh} mesh ({i}/{len(methods)})")
            folder = _folder(name, mesh)
            pred_dir = out / "predictions" / folder
            predict_dataset(models[name], data, pred_dir, pairs=pairs,
                            options=PredictOptions(steps=steps, samples=samples, mesh=mesh, overwrite=True,
                                                   progress=progress), input_cache=inputs)
            timings[f"predict_{folder}_s"] = time.perf_counter() - t
            results[label] = evaluate_folder(pred_dir, data, progress=False)
            preds[label] = (folder, pred_dir)
        log("[3/4] evaluated:")
        log(format_comparison_table(results))
        atomic_write_text(out / "metrics.json", metrics_to_json(results))

        log("[4/4] rendering")
        t = time.perf_counter()
        chosen = _pick_render_sequences(reader, pairs, render_sequences)
        jobs = [(label, name, pred_dir, p, s) for label, (name, pred_dir) in preds.items() for p, s in chosen]
        items = _render_in_two_processes(pool, reader, data, out / "render", jobs, chosen)
        timings["render_s"] = time.perf_counter() - t
    finally:
        pool.shutdown(wait=True, cancel_futures=True)

    from egopressdiff.evaluation.report import write_report

    timings["total_s"] = time.perf_counter() - t0
    notes = NOTES.format(seed=seed, models=", ".join(dict.fromkeys(n for _, n, _ in methods)),
                         steps_note=_steps_note(models.values(), steps), total=timings["total_s"])
    index = write_report(out, "egopressdiff demo", results, items, notes=notes)
    atomic_write_text(out / "timings.json", json.dumps({k: round(v, 2) for k, v in timings.items()}, indent=2))
    log(f"report: {index.resolve()}  ({timings['total_s']:.0f} s)")
    return {"index": index, "results": results, "timings": timings}


def _synthesise_and_load(pool, data, methods, *, participants, sequences, frames, seed, progress) -> dict:
    """The fresh test set (in the child) and the shipped models (here), at the same time; name -> model."""
    from egopressdiff.data.synth import generate_dataset
    from egopressdiff.fsutil import atomic_dir
    from egopressdiff.shipped import resolve_checkpoint
    from egopressdiff.training.registry import load_model

    models = {}
    # built under a temporary name and renamed when complete: a re-run never reuses half a dataset
    with atomic_dir(data, overwrite=True) as tmp:
        synth = pool.submit(generate_dataset, tmp, participants=participants, sequences=sequences,
                            frames=frames, seed=seed, progress=progress)
        for _, name, _ in methods:
            if name not in models:
                models[name] = load_model(resolve_checkpoint(name))
        synth.result()
    pool.submit(_import_render_code)  # the child imports the render code while this process predicts
    return models


def _render_in_two_processes(pool, reader, data, render_root, jobs, chosen) -> list[dict]:
    """The report items of ``jobs`` in order; the child renders the first chosen sequence, this process the rest
    (split by sequence, so that each process cuts a sequence's RGB crops once for every method)."""
    theirs = [j for j in jobs if (j[3], j[4]) == tuple(chosen[0])] if len(chosen) > 1 else []
    mine = [j for j in jobs if j not in theirs]
    future = pool.submit(_render_items, data, render_root, theirs) if theirs else None
    done = dict(zip(mine, _render_items(data, render_root, mine, reader=reader)))
    if future is not None:
        done.update(zip(theirs, future.result()))
    return [done[j] for j in jobs]


def _render_items(data, render_root, jobs, reader=None) -> list[dict]:
    """Render (label, model name, prediction folder, participant, sequence) jobs; their report items in order."""
    from egopressdiff.data.reader import EgoPressureReader
    from egopressdiff.evaluation.predictions import prediction_path, read_prediction
    from egopressdiff.evaluation.visualize import render_sequence

    reader = reader or EgoPressureReader(data)
    crops = {}  # every method's video shows the same RGB crops: cut them once
    items = []
    for label, name, pred_dir, p, s in jobs:
        pred = read_prediction(prediction_path(pred_dir, p, s))
        items.append(render_sequence(reader, pred, p, s, render_root / name, method=label, crop_cache=crops))
    return items


def _import_render_code() -> None:
    import egopressdiff.evaluation.render  # noqa: F401
    import egopressdiff.evaluation.visualize  # noqa: F401
    from egopressdiff.data.clips import build_inputs  # noqa: F401


def _steps_note(models, steps: int | None) -> str:
    """The report's line on EgoPressDiff's sampling steps, and the model's default when the demo used others."""
    default = next((m.config.sample_steps for m in models if hasattr(m.config, "sample_steps")), None)
    if default is None:
        return ""
    if steps is None or steps == default:
        return f"EgoPressDiff sampled with {default} steps. "
    return (f"EgoPressDiff sampled with {steps} steps for speed (the model's default: {default}; "
            f"egopressdiff demo --steps {default} uses it). ")


def _pick_render_sequences(reader, pairs, k):
    """Prefer sequences with contact and one hover, so the pictures show both cases."""
    from egopressdiff.data.layout import gesture_family

    hover = [ps for ps in pairs if gesture_family(ps[1]) == "hover"]
    contact = [ps for ps in pairs if gesture_family(ps[1]) != "hover"]
    chosen = contact[: max(k - 1, 1)] + hover[:1]
    return chosen[:k] if len(chosen) >= k else (chosen + [p for p in pairs if p not in chosen])[:k]
