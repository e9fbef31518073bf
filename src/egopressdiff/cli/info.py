"""``egopressdiff info ROOT``: what a dataset holds."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = """Show the participants, sequences, frames, annotated frames and pressure statistics of a dataset.

Works on the real EgoPressure dataset and on synthetic data (same layout). By default the
pressure statistics come from `pressure_map_range` only (fast): a frame's peak pressure is
its range maximum; contact frames have a peak > 1 kPa. --full also reads every UV map for
the mean pressure over contact texels (slow on the real dataset). --check decodes every
frame of every shard and reports the first damaged one (exit code 2).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", help="dataset root (holds configs/ and data/)")
    parser.add_argument("--participants", nargs="+", metavar="P", help="only these participants")
    parser.add_argument("--split", choices=["train", "val", "test", "all"], help="only this participant split")
    parser.add_argument("--full", action="store_true", help="read the UV maps for mean contact pressure (slow)")
    parser.add_argument("--json", metavar="FILE", help="also write the table as JSON (atomically)")
    parser.add_argument("--check", action="store_true",
                        help="decode every frame (images, depth registration, mesh, pressure, force) and stop at the "
                             "first problem with its file, sequence and frame (slow on the real dataset)")


def _table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    cells = [[h for _, h in columns]] + [[_fmt(r.get(k)) for k, _ in columns] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    text_cols = {i for i, (k, _) in enumerate(columns) if k in ("participant", "sequence", "side")}
    lines = ["  ".join(c[i].ljust(widths[i]) if i in text_cols else c[i].rjust(widths[i]) for i in range(len(columns)))
             for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.1f}"
    return "" if v is None else str(v)


def run(args) -> int:
    from tqdm import tqdm

    from egopressdiff.data.reader import EgoPressureReader
    from egopressdiff.data.splits import describe_split, split_participants
    from egopressdiff.errors import DataError, EgoPressDiffError

    if args.json and Path(args.json).is_dir():
        raise EgoPressDiffError(f"--json {args.json} is a directory; give a file name")
    reader = EgoPressureReader(args.root)
    all_ps = reader.participants()
    ps = all_ps
    if args.participants:
        unknown = sorted(set(args.participants) - set(all_ps))
        if unknown:
            raise DataError(f"unknown participants {unknown}", path=reader.root)
        ps = sorted(set(args.participants))
    if args.split:
        ps = [p for p in split_participants(all_ps, args.split) if p in ps]
    pairs = reader.all_sequences(ps)
    rows = []
    for p, s in tqdm(pairs, desc="sequences", unit="seq", file=sys.stderr, disable=len(pairs) < 2, leave=False):
        if args.check:
            _check_sequence(reader, p, s)
        st = reader.pressure_summary(p, s, full=args.full)
        rows.append({"participant": p, "sequence": s, "side": reader.hand_side(p, s),
                     "synthetic": reader.is_synthetic(p, s), **st})
    cols = [("participant", "participant"), ("sequence", "sequence"), ("side", "side"), ("frames", "frames"),
            ("annotated", "annotated"), ("contact_frames", "contact"), ("max_kpa", "max kPa"),
            ("mean_peak_kpa", "mean peak kPa")]
    if args.full:
        cols.append(("mean_contact_kpa", "mean contact kPa"))
    total = {"participant": "TOTAL", "sequence": f"{len(rows)} sequences", "side": "",
             "frames": sum(r["frames"] for r in rows), "annotated": sum(r["annotated"] for r in rows),
             "contact_frames": sum(r["contact_frames"] for r in rows),
             "max_kpa": max((r["max_kpa"] for r in rows), default=0.0)}
    n_contact = total["contact_frames"]
    total["mean_peak_kpa"] = (sum(r["mean_peak_kpa"] * r["contact_frames"] for r in rows) / n_contact
                              if n_contact else 0.0)
    kind = "synthetic" if rows and all(r["synthetic"] for r in rows) else "real" if rows else "empty"
    split = describe_split(all_ps)
    print(f"dataset {reader.root} ({kind}): {len(ps)} participants, {len(rows)} sequences")
    print(f"splits: train {split['train']}  val {split['val']}  test {split['test']}"
          + ("" if split["held_out"] else "  (fewer than 3 participants: nothing held out)"))
    print(_table(rows + [total], cols))
    if args.json:
        from egopressdiff.fsutil import atomic_write_text

        atomic_write_text(args.json, json.dumps({"root": str(reader.root), "kind": kind, "splits": split,
                                                 "sequences": rows, "total": total}, indent=1))
    return 0


def _check_sequence(reader, participant: str, sequence: str) -> None:
    """Decode every row of every shard of one sequence (DataError at the first problem)."""
    from egopressdiff.data import layout

    reader.validate_sequence(participant, sequence)
    labelled = reader.has_pressure(participant, sequence)  # a recording without the pressure pad has none
    for frame in reader.frames(participant, sequence):
        f = int(frame)
        ann = reader.load_annotation(participant, sequence, f)
        if ann.has_annotation and labelled:
            reader.load_pressure(participant, sequence, f)
            reader.load_force(participant, sequence, f, required=False)
        for shard, load in ((layout.COLOR_SHARD, reader.load_rgb), (layout.DEPTH_SHARD, reader.load_depth),
                            (layout.MASK_SHARD, reader.load_mask)):
            if f in reader.shard(participant, sequence, shard).index:
                load(participant, sequence, f)
