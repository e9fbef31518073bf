"""Helpers for the tests of recordings without ground truth: a dataset built with the synth CLI,
then stripped of its pressure the two ways a user's own recording lacks it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from egopressdiff.data import layout

P = "p_001"
GROUND_TRUTH_COLUMNS = ("force", "pressure_map", "pressure_map_range")


def empty_pressure_cells(path: Path) -> None:
    """Keep ``pressure.parquet``'s frame rows, null every ground-truth cell (a pad that recorded nothing)."""
    t = pq.read_table(path)
    for column in GROUND_TRUTH_COLUMNS:
        t = t.set_column(t.schema.get_field_index(column), column, pa.nulls(len(t), t.schema.field(column).type))
    pq.write_table(t, path, row_group_size=4)


def label_free_dataset(base: Path) -> dict:
    """``base/original`` from ``egopressdiff synth`` (3 sequences of 8 frames) and ``base/label_free``,
    its copy where one sequence has no ``pressure.parquet`` and one only empty pressure cells.

    Returns the two roots and the sequence names: ``no_file``, ``emptied``, ``labelled``.
    """
    from egopressdiff.cli.main import main

    original, label_free = base / "original", base / "label_free"
    assert main(["synth", str(original), "--participants", "1", "--sequences", "3", "--frames", "8",
                 "--image-size", "96x72", "--no-progress"]) == 0
    shutil.copytree(original, label_free)
    no_file, emptied, labelled = sorted(p.name for p in (label_free / "data" / P).iterdir())
    layout.shard_path(label_free, P, no_file, layout.PRESSURE_SHARD).unlink()
    empty_pressure_cells(layout.shard_path(label_free, P, emptied, layout.PRESSURE_SHARD))
    return {"original": original, "label_free": label_free, "no_file": no_file, "emptied": emptied,
            "labelled": labelled}
