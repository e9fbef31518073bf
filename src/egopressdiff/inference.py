"""Whole-sequence prediction: checkpoint + dataset -> one ``.npz`` per sequence, through the pipeline.

The dataset's frames go through ``ClipDataset`` (the reader + the pipeline's input
processor, no ground truth needed) and the model's pipeline; windows are streamed
(``pipelines.windows.predict_windows`` yields each frame as soon as it is final) into a
``PredictionWriter`` (memmap-backed, renamed into place when complete), so memory stays
flat with sequence length and an interrupted run leaves only complete files.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from egopressdiff.data.splits import select_sequences  # noqa: F401  (re-exported for the CLI)
from egopressdiff.errors import DataError, EgoPressDiffError
from egopressdiff.fsutil import atomic_write_text, ensure_output_dir
from egopressdiff.pipelines.windows import DEFAULT_BATCH_SIZE


@dataclass
class PredictOptions:
    steps: int | None = None  # None -> the model's documented default
    samples: int = 1
    window: int | None = None  # None -> the model's clip length
    overlap: int | None = None  # None -> min(4, window // 4)
    seed: int = 0
    batch_size: int = DEFAULT_BATCH_SIZE  # windows per model call (pipelines.windows.predict_windows)
    mesh: str = "annotated"  # the hand mesh fed to the model: the annotation, the estimated-mesh track, or a folder
    # of the user's own meshes (data.mesh_files)
    overwrite: bool = False
    progress: bool = True


@dataclass
class PredictReport:
    written: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    frames: int = 0
    seconds: float = 0.0


def _to_batch(item: dict):
    """A dataset item (one clip, no batch dim) -> batch of 1 (tensors get a leading dim)."""
    import torch

    out = {}
    for k, v in item.items():
        if isinstance(v, torch.Tensor):
            out[k] = v.unsqueeze(0)
        elif isinstance(v, np.ndarray):
            out[k] = torch.from_numpy(v).unsqueeze(0)
        else:
            out[k] = [v]
    return out


def _copy_batch(batch: dict) -> dict:
    """A copy of a cached batch: a pipeline may work in place on its inputs, the next model must not see it."""
    return {k: v.clone() if hasattr(v, "clone") else list(v) for k, v in batch.items()}


def predict_dataset(model, data_root, output, pairs=None, split="test", options: PredictOptions | None = None,
                    dataset_kwargs: dict | None = None, input_cache: dict | None = None) -> PredictReport:
    """Predict every sequence of ``pairs`` (default: the ``split``) into ``output``, one ``.npz`` each.

    ``input_cache``: a dict shared by several calls on the same data (the demo's models): windows
    whose model inputs were built before (same sequence, frames, mesh and input sizes) are reused
    instead of read and built again. Memory grows with every window kept: for small datasets.
    """
    import torch
    from tqdm.auto import tqdm

    from egopressdiff.data.clips import ClipDataset
    from egopressdiff.data.reader import EgoPressureReader
    from egopressdiff.evaluation.predictions import PredictionWriter, prediction_path
    from egopressdiff.pipelines.base import PressurePipeline, pipeline_for
    from egopressdiff.pipelines.windows import predict_windows

    options = options or PredictOptions()
    pipeline = model if isinstance(model, PressurePipeline) else pipeline_for(model)
    model = pipeline.model
    if Path(output).exists() and not Path(output).is_dir():
        raise EgoPressDiffError(f"prediction output path {output} is a file, not a directory")
    reader = EgoPressureReader(data_root)
    if pairs is None:
        pairs = select_sequences(reader, split=split)
    req = dict(model.data_requirements())
    req.update(dataset_kwargs or {})
    window = int(options.window or req.get("clip_length") or 16)
    overlap = min(4, window // 4) if options.overlap is None else int(options.overlap)
    if window < 1:
        raise EgoPressDiffError(f"--window must be >= 1, got {window}")
    if overlap < 0 or overlap >= window:
        raise EgoPressDiffError(f"--overlap {overlap} must be >= 0 and smaller than --window {window}")
    if options.samples < 1:
        raise EgoPressDiffError(f"--samples must be >= 1, got {options.samples}")
    dataset = ClipDataset(data_root, participants=sorted({p for p, _ in pairs}), clip_length=1, stride=1,
                          crop_size=req.get("crop_size") or 64, uv_conditioning=bool(req.get("uv_conditioning")),
                          uv_cond_size=req.get("uv_cond_size") or 64, targets=False, mesh=options.mesh)
    from egopressdiff.data.mesh_files import MeshFolder

    if isinstance(dataset.mesh, MeshFolder):
        # the user's own meshes: every sequence's file must cover its frames before anything is predicted
        for p_, s_ in pairs:
            dataset.mesh.check_covers(p_, s_, reader.predictable_frames(p_, s_))
    out = ensure_output_dir(output, "prediction output")
    # Skipping finished sequences is only safe when they were made with the same settings:
    # a folder must not mix, say, 8-step and 4-step predictions without anyone noticing.
    settings = {"steps": options.steps, "samples": options.samples, "window": window, "overlap": overlap,
                "seed": options.seed, "mesh": str(options.mesh),
                "output_floor_kpa": getattr(getattr(model, "config", None), "output_floor_kpa", None)}
    info_path = Path(out) / "predict_info.json"
    if info_path.is_file() and not options.overwrite:
        try:
            before = json.loads(info_path.read_text())
        except (OSError, ValueError):
            before = {}
        differ = {k: (before[k], v) for k, v in settings.items() if k in before and before[k] != v}
        if differ:
            what = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in differ.items())
            raise EgoPressDiffError(f"{out} holds predictions made with other settings ({what}); "
                                    "use another --output or --overwrite")
    report = PredictReport()
    t0 = time.perf_counter()
    model.eval()
    bar = tqdm(pairs, desc="predict", unit="seq", disable=not options.progress)
    for participant, sequence in bar:
        dest = prediction_path(out, participant, sequence)
        if dest.exists() and not options.overwrite:
            report.skipped.append(f"{participant}/{sequence}")
            continue
        frames = reader.predictable_frames(participant, sequence)  # annotated, with colour and depth
        if len(frames) == 0:
            raise DataError("sequence has no annotated frames to predict", sequence=sequence)

        def load_window(start, stop, _p=participant, _s=sequence, _f=frames):
            fr = [int(f) for f in _f[start:stop]]
            if input_cache is None:
                return _to_batch(dataset.load_frames(_p, _s, fr))
            key = (str(data_root), _p, _s, tuple(fr), options.mesh,
                   dataset.crop_size, dataset.uv_size, dataset.uv_conditioning, dataset.uv_cond_size)
            if key not in input_cache:
                input_cache[key] = _to_batch(dataset.load_frames(_p, _s, fr))
            return _copy_batch(input_cache[key])

        with PredictionWriter(out, participant, sequence, frames, with_std=options.samples > 1) as writer:
            with torch.no_grad():
                for idx, mean, std in predict_windows(pipeline, len(frames), load_window, window=window,
                                                      overlap=overlap, steps=options.steps,
                                                      seed=options.seed, num_samples=options.samples,
                                                      batch_size=options.batch_size):
                    writer.put(idx, mean, std)
        report.written.append(f"{participant}/{sequence}")
        report.frames += len(frames)
        bar.set_postfix(frames=report.frames)
    report.seconds = time.perf_counter() - t0
    info = {"data_root": str(data_root), "sequences": report.written + report.skipped, **settings,
            "seconds": round(report.seconds, 3), "frames_predicted": report.frames}
    atomic_write_text(Path(out) / "predict_info.json", json.dumps(info, indent=2))
    return report
