"""Write one sequence in the EgoPressure on-disk layout.

Used by the synthetic generator and by tests. The shards are written with
small row groups (:data:`ROW_GROUP_SIZE` rows) so the reader can decode only
the row groups that hold the frames it needs.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from egopressdiff import fsutil
from egopressdiff.data import layout

ROW_GROUP_SIZE = 16  # rows per Parquet row group: random access decodes at most this many frames

# annotation array columns in the order they are written (all float32 flat lists)
ANNOTATION_ARRAY_COLUMNS = (
    "vertices", "joint_position", "betas", "full_pose", "transl",
    "normals", "displacement", "visible_vertices",
)
# the two columns present on every row, annotated or not
ALWAYS_PRESENT = ("ego_R", "ego_T")
REQUIRED_ANNOTATION_KEYS = ("vertices", "joint_position")


@dataclass
class FrameRecord:
    """Everything stored for one frame of one sequence.

    ``image_jpeg`` / ``depth_png`` / ``mask_png`` may be ``None``: the frame is
    then absent from that camera shard (a dropped frame, as in the real data).
    """

    frame: int
    image_jpeg: bytes | None
    depth_png: bytes | None
    mask_png: bytes | None
    hand_side: str
    ego_R: np.ndarray
    ego_T: np.ndarray
    annotation: dict[str, np.ndarray] | None = None  # None -> has_annotation False
    force: np.ndarray | None = None  # (105, 185) Sensel counts
    pressure_map: np.ndarray | None = None  # (224, 224) normalised
    pressure_map_range: np.ndarray | None = None  # (2,) [min, max] counts
    # the estimated-mesh track (layout.ESTIMATED_SHAPES keys); {} = the estimator failed on this frame
    # (null cells); None = no such track (the columns are written when any frame has one)
    estimated: dict[str, np.ndarray] | None = None


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    """RGB uint8 (H, W, 3) -> JPEG bytes."""
    from PIL import Image

    arr = np.asarray(rgb)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"encode_jpeg needs uint8 (H, W, 3), got {arr.dtype} {arr.shape}")
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, format="JPEG", quality=int(quality))
    return buf.getvalue()


def encode_png(array: np.ndarray) -> bytes:
    """uint8 (H, W) / (H, W, 3) or uint16 (H, W) array -> lossless PNG bytes."""
    from PIL import Image

    arr = np.asarray(array)
    if arr.dtype == np.uint16 and arr.ndim == 2:
        img = Image.fromarray(arr)  # 16-bit greyscale ("I;16")
    elif arr.dtype == np.uint8 and arr.ndim in (2, 3):
        img = Image.fromarray(arr)
    elif arr.dtype == bool and arr.ndim == 2:
        img = Image.fromarray(arr.astype(np.uint8) * 255)
    else:
        raise ValueError(f"encode_png needs uint8/uint16 (H, W) or uint8 (H, W, 3), got {arr.dtype} {arr.shape}")
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)  # speed over size: the data is re-read far more than written
    return buf.getvalue()


def _flat(value, shape, what: str, frame: int) -> list | None:
    if value is None:
        return None
    arr = np.asarray(value, dtype=np.float32)
    if arr.size != int(np.prod(shape)):
        raise ValueError(f"frame {frame}: {what} has {arr.size} values, expected shape {shape}")
    return arr.reshape(-1)


def _image_struct_type():
    import pyarrow as pa

    return pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def _image_table(frames, column: str, ext: str, payloads):
    import pyarrow as pa

    rows = [(f, b) for f, b in zip(frames, payloads) if b is not None]
    schema = pa.schema([(layout.FRAME_COLUMN, pa.int64()), (column, _image_struct_type())])
    return pa.table(
        {
            layout.FRAME_COLUMN: pa.array([f for f, _ in rows], pa.int64()),
            column: pa.array([{"bytes": b, "path": f"{f:06d}.{ext}"} for f, b in rows], _image_struct_type()),
        },
        schema=schema,
    )


def _list_array(values):
    """Flat float32 arrays (or None) -> pyarrow list<float32> without a Python-level per-element loop."""
    import pyarrow as pa

    lengths = np.array([0 if v is None else len(v) for v in values], dtype=np.int64)
    offsets = np.zeros(len(values) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    present = [v for v in values if v is not None]
    flat = np.concatenate(present).astype(np.float32) if present else np.zeros(0, np.float32)
    mask = np.array([v is None for v in values])
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(flat, pa.float32()),
                                    mask=pa.array(mask) if mask.any() else None)


def _validate(frames: list[FrameRecord]) -> None:
    if not frames:
        raise ValueError("write_sequence needs at least one frame")
    nums = [int(r.frame) for r in frames]
    if nums[0] < 1 or any(b <= a for a, b in zip(nums, nums[1:])):
        raise ValueError(f"frame numbers must start at >= 1 and strictly increase, got {nums[:8]}...")
    for r in frames:
        if r.hand_side not in ("left", "right"):
            raise ValueError(f"frame {r.frame}: hand_side must be 'left' or 'right', got {r.hand_side!r}")
        if r.annotation is not None:
            missing = [k for k in REQUIRED_ANNOTATION_KEYS if r.annotation.get(k) is None]
            if missing:
                raise ValueError(f"frame {r.frame}: annotation lacks {missing}")
            unknown = set(r.annotation) - set(ANNOTATION_ARRAY_COLUMNS)
            if unknown:
                raise ValueError(f"frame {r.frame}: unknown annotation keys {sorted(unknown)}")
        if r.estimated:
            unknown = set(r.estimated) - set(layout.ESTIMATED_SHAPES)
            if unknown:
                raise ValueError(f"frame {r.frame}: unknown estimated-mesh keys {sorted(unknown)}")


def build_tables(frames: list[FrameRecord]) -> dict[str, object]:
    """FrameRecords -> {shard file name: pyarrow.Table} (exposed for tests that corrupt single shards)."""
    import pyarrow as pa

    _validate(frames)
    nums = [int(r.frame) for r in frames]
    tables = {
        layout.COLOR_SHARD: _image_table(nums, "image", "jpg", [r.image_jpeg for r in frames]),
        layout.DEPTH_SHARD: _image_table(nums, "depth", "png", [r.depth_png for r in frames]),
        layout.MASK_SHARD: _image_table(nums, "mask", "png", [r.mask_png for r in frames]),
    }
    frame_arr = pa.array(nums, pa.int64())
    tables[layout.PRESSURE_SHARD] = pa.table({
        layout.FRAME_COLUMN: frame_arr,
        "force": _list_array([_flat(r.force, layout.FORCE_GRID_SHAPE, "force", r.frame) for r in frames]),
        "pressure_map": _list_array([_flat(r.pressure_map, (layout.UV_SIZE, layout.UV_SIZE, 1), "pressure_map",
                                           r.frame) for r in frames]),
        "pressure_map_range": _list_array([_flat(r.pressure_map_range, (2,), "pressure_map_range", r.frame)
                                           for r in frames]),
    })
    cols = {
        layout.FRAME_COLUMN: frame_arr,
        "has_annotation": pa.array([r.annotation is not None for r in frames], pa.bool_()),
        "hand_side": pa.array([r.hand_side for r in frames], pa.string()),
    }
    for key in ANNOTATION_ARRAY_COLUMNS:
        cols[key] = _list_array([
            None if r.annotation is None else _flat(r.annotation.get(key), layout.ANNOTATION_SHAPES[key], key, r.frame)
            for r in frames
        ])
    for key, attr in (("ego_R", "ego_R"), ("ego_T", "ego_T")):
        cols[key] = _list_array([_flat(getattr(r, attr), layout.ANNOTATION_SHAPES[key], key, r.frame) for r in frames])
    if any(r.estimated is not None for r in frames):
        for key, shape in layout.ESTIMATED_SHAPES.items():
            cols[key] = _list_array([_flat((r.estimated or {}).get(key), shape, key, r.frame) for r in frames])
    tables[layout.ANNOTATION_SHARD] = pa.table(cols)
    return tables


def write_table(table, path: Path, row_group_size: int = ROW_GROUP_SIZE) -> None:
    """Write one shard with small row groups (atomic)."""
    import pyarrow.parquet as pq

    with fsutil.atomic_path(path) as tmp:
        pq.write_table(table, tmp, row_group_size=row_group_size, compression="zstd")


def write_sequence(root, participant: str, sequence: str, frames: list[FrameRecord], config: dict,
                   k4a_calibration: dict, row_group_size: int = ROW_GROUP_SIZE) -> None:
    """Write one sequence: config JSON, k4a calibration JSON and the five Parquet shards.

    The shard directory appears complete or not at all (written in a temporary
    directory, then renamed); an existing sequence is replaced.
    """
    import pyarrow.parquet as pq

    fsutil.check_safe_name(participant, "participant")
    fsutil.check_safe_name(sequence, "sequence")
    root = Path(root)
    tables = build_tables(frames)
    # calibration first: a sequence is listed by its data folder, which appears (complete) last,
    # so an interruption never leaves a listed sequence without its calibration
    fsutil.atomic_write_text(layout.k4a_calibration_path(root, participant, sequence),
                             json.dumps(k4a_calibration, indent=1))
    fsutil.atomic_write_text(layout.config_path(root, participant, sequence), json.dumps(config, indent=1))
    with fsutil.atomic_dir(layout.sequence_dir(root, participant, sequence), overwrite=True) as tmp:
        for name, table in tables.items():
            pq.write_table(table, tmp / name, row_group_size=row_group_size, compression="zstd")
