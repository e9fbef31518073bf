"""Writing a whole synthetic dataset: the plan, one sequence after another or in worker processes.

Each sequence is written atomically (an interrupted run leaves only complete
sequences) and depends only on (seed, participant, sequence), so the worker count
does not change the files.
"""

from __future__ import annotations

import time
from pathlib import Path

from egopressdiff.data.synth.camera import DEFAULT_IMAGE_SIZE
from egopressdiff.data.synth.gestures import plan_dataset
from egopressdiff.data.synth.imperfections import Imperfections
from egopressdiff.data.synth.participants import make_participant
from egopressdiff.data.synth.sequence import render_sequence


def _sequence_job(job) -> tuple:
    """Worker: render and write one sequence (used by ``generate_dataset(workers > 1)``)."""
    from egopressdiff.data.writer import write_sequence

    root, plan, frames, seed, size, imperf = job
    participant = make_participant(plan.participant_index, seed, imperf)
    records, config, k4a, stats = render_sequence(plan, frames, seed, participant, size, imperf)
    write_sequence(root, plan.participant, plan.name, records, config, k4a)
    return plan, stats


def generate_dataset(out_root, participants: int = 3, sequences: int = 6, frames: int = 48, seed: int = 0,
                     image_size=DEFAULT_IMAGE_SIZE, imperfections: Imperfections | None = None,
                     progress: bool = True, workers: int = 1) -> dict:
    """Write a synthetic dataset in the EgoPressure layout under ``out_root``; returns a summary.

    ``sequences`` is per participant; gestures follow :func:`plan_dataset`. Each sequence is
    written atomically (an interrupted run leaves only complete sequences) and depends only on
    (seed, participant, sequence), so ``workers > 1`` (processes) gives identical files.
    """
    from egopressdiff.data.writer import write_sequence

    imperfections = imperfections or Imperfections()
    if participants < 1 or sequences < 1 or frames < 1:
        raise ValueError("participants, sequences and frames must all be >= 1")
    w, h = int(image_size[0]), int(image_size[1])
    if w < 32 or h < 32 or w > 4096 or h > 4096:
        raise ValueError(f"image size must be between 32 and 4096 pixels per side, got {w}x{h}")
    root = Path(out_root)
    root.mkdir(parents=True, exist_ok=True)
    plans = plan_dataset(participants, sequences)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(plans) * frames, unit="frame", desc="synth", leave=False)
    t_start = time.perf_counter()
    out = {"root": str(root), "participants": participants, "sequences": [], "frames": 0, "annotated_frames": 0,
           "contact_frames": 0, "families": {}, "seed": seed, "image_size": [w, h]}

    def add(plan, stats):
        out["sequences"].append({"participant": plan.participant, "sequence": plan.name, "gesture": plan.gesture,
                                 "family": plan.family, "side": plan.side, **stats})
        out["frames"] += stats["frames"]
        out["annotated_frames"] += stats["annotated_frames"]
        out["contact_frames"] += stats["contact_frames"]
        out["families"][plan.family] = out["families"].get(plan.family, 0) + 1

    try:
        if workers > 1 and len(plans) > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            jobs = [(str(root), plan, frames, seed, (w, h), imperfections) for plan in plans]
            with ProcessPoolExecutor(max_workers=min(workers, len(plans)),
                                     mp_context=multiprocessing.get_context("spawn")) as ex:
                for plan, stats in ex.map(_sequence_job, jobs):
                    add(plan, stats)
                    if bar is not None:
                        bar.update(frames)
        else:
            people = {p: make_participant(p, seed, imperfections) for p in range(participants)}
            tick = (lambda: bar.update(1)) if bar is not None else None
            for plan in plans:
                records, config, k4a, stats = render_sequence(
                    plan, frames, seed, people[plan.participant_index], (w, h), imperfections, on_frame=tick)
                write_sequence(root, plan.participant, plan.name, records, config, k4a)
                add(plan, stats)
    finally:
        if bar is not None:
            bar.close()
    out["seconds"] = round(time.perf_counter() - t_start, 3)
    out["frames_per_second"] = round(out["frames"] / max(out["seconds"], 1e-9), 2)
    return out
