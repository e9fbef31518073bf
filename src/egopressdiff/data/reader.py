"""EgoPressureReader: one reader for the real EgoPressure dataset and our synthetic one.

Reads are lazy and **row-group granular**: opening a shard reads only its
``frame`` column (to map frame number -> (row group, row)); a frame's data is
read by decoding just the row group that holds it, and a small LRU keeps the
most recent decoded row groups. Nothing is opened at construction, and open
file handles are never pickled (each DataLoader worker process opens its own),
so one reader can be shared with ``DataLoader(num_workers>0)``.

Every problem with the data is a :class:`~egopressdiff.errors.DataError` that
names the file, the sequence and (where it applies) the frame; nothing is
skipped silently.
"""

from __future__ import annotations

import io
import json
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from egopressdiff.data import layout
from egopressdiff.data.calibration import (
    ColorIntrinsics,
    DepthCalibration,
    parse_config,
    parse_k4a,
    register_depth_to_color,
    world_to_camera,
)
from egopressdiff.errors import DataError

SYNTHETIC_MARKER = "egopressdiff_synthetic"  # top-level config key written by our generator
IMAGE_COLUMNS = {layout.COLOR_SHARD: "image", layout.DEPTH_SHARD: "depth", layout.MASK_SHARD: "mask"}
_ARRAY_SHAPES = dict(layout.ANNOTATION_SHAPES, force=layout.FORCE_GRID_SHAPE,
                     pressure_map=(layout.UV_SIZE, layout.UV_SIZE), pressure_map_range=(2,))


def nearest_valid_row(frames: np.ndarray, valid: np.ndarray, i: int) -> int:
    """Row ``i`` if valid, else the valid row whose frame number is nearest (the earlier one on a tie):
    an estimator's failed frame takes its neighbour's mesh, as a tracker holds its last output."""
    if valid[i]:
        return int(i)
    ok = np.flatnonzero(valid)
    return int(ok[np.argmin(np.abs(frames[ok] - frames[i]))])


@dataclass
class FrameAnnotation:
    """One row of ``annotation.parquet`` (world frame, metres); MANO fields None when unannotated."""

    frame: int
    has_annotation: bool
    hand_side: str
    ego_R: np.ndarray  # (3, 3) world -> camera
    ego_T: np.ndarray  # (3,) metres
    vertices: np.ndarray | None = None  # (778, 3) world
    joints: np.ndarray | None = None  # (21, 3) world ("joint_position")
    betas: np.ndarray | None = None
    full_pose: np.ndarray | None = None
    transl: np.ndarray | None = None
    normals: np.ndarray | None = None
    displacement: np.ndarray | None = None
    visible_vertices: np.ndarray | None = None

    @property
    def vertices_cam(self) -> np.ndarray | None:
        """Vertices in the ego-camera frame (``R · v + T``)."""
        return None if self.vertices is None else world_to_camera(self.vertices, self.ego_R, self.ego_T).astype(np.float32)

    @property
    def joints_cam(self) -> np.ndarray | None:
        return None if self.joints is None else world_to_camera(self.joints, self.ego_R, self.ego_T).astype(np.float32)


def decode_image(data: bytes | None, reduce: int = 1, header_only: bool = False, *, path=None,
                 sequence: str | None = None, frame: int | None = None):
    """JPEG/PNG bytes of one cell -> array ((H, W, C) or (H, W); uint16 for 16-bit PNG depth).

    ``header_only`` returns ``(width, height)``; ``reduce`` > 1 decodes a JPEG at about
    1/reduce size and returns ``(array, (full_width, full_height))``. Any damage is a
    :class:`DataError` naming ``path``, ``sequence`` and ``frame``; never another exception.
    """
    from PIL import Image

    if not data:
        raise DataError("image bytes are missing", path=path, sequence=sequence, frame=frame)
    try:
        with Image.open(io.BytesIO(data)) as img:
            full_size = img.size
            if header_only:
                return full_size
            if reduce > 1 and img.format == "JPEG":
                # JPEG DCT scaling: decode at 1/2, 1/4 or 1/8 size directly (much faster than full + resize)
                img.draft(img.mode, (-(-full_size[0] // reduce), -(-full_size[1] // reduce)))
            img.load()
            arr = np.asarray(img)
    except Exception as exc:  # PIL raises OSError/SyntaxError/ValueError/... on damaged files
        raise DataError(f"corrupt image ({type(exc).__name__}: {exc})", path=path, sequence=sequence,
                        frame=frame) from None
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise DataError(f"image has unusable shape {arr.shape}", path=path, sequence=sequence, frame=frame)
    return (arr, full_size) if reduce > 1 else arr


class _Shard:
    """One Parquet shard: lazily opened file + frame -> (row group, row) index."""

    def __init__(self, path: Path, sequence: str):
        import pyarrow.parquet as pq

        self.path = path
        self.sequence = sequence
        if not path.exists():
            raise DataError("missing shard", path=path, sequence=sequence)
        try:
            self.file = pq.ParquetFile(path)
            frames = self.file.read(columns=[layout.FRAME_COLUMN]).column(layout.FRAME_COLUMN)
            frames = np.asarray(frames.to_numpy(zero_copy_only=False))
        except DataError:
            raise
        except Exception as exc:  # pyarrow raises several types for damaged files
            raise DataError(f"cannot read Parquet shard ({type(exc).__name__}: {exc})", path=path,
                            sequence=sequence) from None
        if frames.dtype.kind not in "iu":
            raise DataError(f"column 'frame' must be integer, found {frames.dtype}", path=path, sequence=sequence)
        frames = frames.astype(np.int64)
        uniq, counts = np.unique(frames, return_counts=True)
        if (counts > 1).any():
            raise DataError("duplicated frame in shard", path=path, sequence=sequence,
                            frame=int(uniq[counts > 1][0]))
        if len(frames) and frames.min() < 1:
            raise DataError("frame numbers must start at 1", path=path, sequence=sequence, frame=int(frames.min()))
        md = self.file.metadata
        starts = np.cumsum([0] + [md.row_group(g).num_rows for g in range(md.num_row_groups)])
        rows = np.arange(len(frames))
        groups = np.searchsorted(starts, rows, side="right") - 1
        self.index = {int(f): (int(g), int(r - starts[g])) for f, g, r in zip(frames, groups, rows)}
        self.frames = np.sort(frames)
        self.columns = set(self.file.schema_arrow.names)

    def locate(self, frame: int) -> tuple[int, int]:
        loc = self.index.get(int(frame))
        if loc is None:
            raise DataError("frame missing from shard", path=self.path, sequence=self.sequence, frame=frame)
        return loc


class EgoPressureReader:
    """Reader of an EgoPressure-layout dataset root (real or synthetic).

    ``EgoPressureReader(root)``; then ``participants()``, ``sequences(p)``,
    ``frames(p, s)``, ``annotated_frames(p, s)``, ``predictable_frames(p, s)``,
    ``has_pressure(p, s)``, and per-frame loaders ``load_rgb``, ``load_depth_raw``,
    ``load_depth`` (registered, metres), ``load_mask``, ``load_annotation``,
    ``load_pressure`` (kPa UV map), ``load_force`` (kPa grid), plus ``intrinsics``,
    ``atlas`` and ``hand_side``.

    Pressure is optional: a recording made without the pressure pad has no
    ``pressure.parquet`` (or only empty cells in it). Such a sequence can be
    predicted (its frames are :meth:`predictable_frames`), but not evaluated or
    trained on; :meth:`require_pressure` says so in one line.
    """

    def __init__(self, root, cache_row_groups: int = 32):
        self.root = Path(root)
        self.cache_row_groups = int(cache_row_groups)
        if not self.root.is_dir():
            raise DataError("dataset root does not exist or is not a directory", path=self.root)
        data = self.root / "data"
        if not data.is_dir() or not any(self._subdirs(data)):
            raise DataError("not an EgoPressure dataset root: no data/<participant>/<sequence>/ folders",
                            path=self.root)
        self._reset_caches()

    # -- process-safety ---------------------------------------------------------------
    def _reset_caches(self) -> None:
        self._pid = os.getpid()
        self._shards: dict = {}
        self._groups: OrderedDict = OrderedDict()
        self._calib: dict = {}
        self._atlases: dict = {}
        self._side: dict = {}
        self._pressure_frames: dict = {}
        self._estimated: OrderedDict = OrderedDict()  # (participant, sequence) -> estimated-mesh track

    def _check_pid(self) -> None:
        # a forked DataLoader worker must not share the parent's open files / caches
        if self._pid != os.getpid():
            self._reset_caches()

    def __getstate__(self):
        return {"root": self.root, "cache_row_groups": self.cache_row_groups}

    def __setstate__(self, state):
        self.root = state["root"]
        self.cache_row_groups = state["cache_row_groups"]
        self._reset_caches()

    # -- listing --------------------------------------------------------------------------
    @staticmethod
    def _subdirs(path: Path) -> list[str]:
        # names starting with "." are temporaries of atomic writes, never data
        return sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))

    def participants(self) -> list[str]:
        """Participant ids (sorted)."""
        return self._subdirs(self.root / "data")

    def sequences(self, participant: str) -> list[str]:
        """Sequence names of one participant (sorted)."""
        d = self.root / "data" / participant
        if not d.is_dir():
            raise DataError(f"unknown participant {participant!r}", path=d)
        return self._subdirs(d)

    def all_sequences(self, participants=None) -> list[tuple[str, str]]:
        """(participant, sequence) pairs of the given participants (default all)."""
        ps = self.participants() if participants is None else list(participants)
        return [(p, s) for p in ps for s in self.sequences(p)]

    def shard(self, participant: str, sequence: str, name: str) -> _Shard:
        self._check_pid()
        key = (participant, sequence, name)
        sh = self._shards.get(key)
        if sh is None:
            sh = _Shard(layout.shard_path(self.root, participant, sequence, name), sequence)
            self._shards[key] = sh
        return sh

    def frames(self, participant: str, sequence: str) -> np.ndarray:
        """All frame numbers of a sequence (from ``annotation.parquet``), sorted."""
        return self.shard(participant, sequence, layout.ANNOTATION_SHARD).frames.copy()

    def annotated_frames(self, participant: str, sequence: str) -> np.ndarray:
        """Frame numbers with ``has_annotation`` true, sorted."""
        sh = self.shard(participant, sequence, layout.ANNOTATION_SHARD)
        t = self._read_columns(sh, [layout.FRAME_COLUMN, "has_annotation"])
        fr = np.asarray(t.column(0).to_numpy(zero_copy_only=False), dtype=np.int64)
        ha = t.column(1).to_numpy(zero_copy_only=False)
        return np.sort(fr[ha.astype(bool)])

    def shard_frames(self, participant: str, sequence: str, name: str) -> np.ndarray:
        """Frames present in one shard (a camera drops frames by leaving rows out)."""
        return self.shard(participant, sequence, name).frames.copy()

    def predictable_frames(self, participant: str, sequence: str) -> np.ndarray:
        """Frames a model can predict (sorted): a hand mesh, a colour and a depth image; no pressure needed."""
        f = self.annotated_frames(participant, sequence)
        for name in (layout.COLOR_SHARD, layout.DEPTH_SHARD):
            f = np.intersect1d(f, self.shard_frames(participant, sequence, name))
        return f

    # -- ground truth (optional) -----------------------------------------------------------
    def pressure_frames(self, participant: str, sequence: str) -> np.ndarray:
        """Frames with a pressure map in ``pressure.parquet`` (sorted); empty when there is no such file.

        A frame counts when its ``pressure_map_range`` is set: without it no map can be
        turned into kPa. A damaged ``pressure.parquet`` is a DataError, never "no pressure".
        """
        self._check_pid()
        key = (participant, sequence)
        if key not in self._pressure_frames:
            path = layout.shard_path(self.root, participant, sequence, layout.PRESSURE_SHARD)
            frames = np.zeros(0, np.int64)
            if path.exists():
                sh = self.shard(participant, sequence, layout.PRESSURE_SHARD)
                if "pressure_map_range" not in sh.columns:
                    raise DataError("shard lacks column 'pressure_map_range'", path=sh.path, sequence=sequence)
                t = self._read_columns(sh, [layout.FRAME_COLUMN, "pressure_map_range"])
                fr = np.asarray(t.column(0).to_numpy(zero_copy_only=False), dtype=np.int64)
                valid = np.asarray(t.column(1).is_valid().to_numpy(zero_copy_only=False), dtype=bool)
                frames = np.sort(fr[valid])
            self._pressure_frames[key] = frames
        return self._pressure_frames[key].copy()

    def has_pressure(self, participant: str, sequence: str) -> bool:
        """Whether the sequence has ground truth: a pressure map on at least one annotated frame."""
        return bool(np.isin(self.annotated_frames(participant, sequence),
                            self.pressure_frames(participant, sequence)).any())

    def require_pressure(self, participant: str, sequence: str, purpose: str = "evaluate against") -> None:
        """A one-line DataError naming the sequence unless it :meth:`has_pressure`."""
        if self.has_pressure(participant, sequence):
            return
        path = layout.shard_path(self.root, participant, sequence, layout.PRESSURE_SHARD)
        hint = "; a recording without the pressure pad can be predicted, not scored"
        if not path.exists():
            what = "no pressure.parquet" + hint
        elif len(self.annotated_frames(participant, sequence)) == 0:
            what = "no annotated frame"
        else:
            what = "no pressure map on any annotated frame" + hint
        raise DataError(f"no ground truth to {purpose}: {participant}/{sequence} has {what}", path=path,
                        sequence=sequence)

    # -- calibration ----------------------------------------------------------------------
    def config(self, participant: str, sequence: str) -> dict:
        """The sequence config JSON (DataError if missing or malformed)."""
        self._check_pid()
        key = ("config", participant, sequence)
        if key not in self._calib:
            self._calib[key] = self._load_json(layout.config_path(self.root, participant, sequence), sequence)
        return self._calib[key]

    def _load_json(self, path: Path, sequence: str) -> dict:
        if not path.exists():
            raise DataError("missing calibration file", path=path, sequence=sequence)
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise DataError(f"calibration file is not valid JSON ({exc})", path=path, sequence=sequence) from None

    def intrinsics(self, participant: str, sequence: str) -> ColorIntrinsics:
        """Pinhole intrinsics of the ego colour image (config ``camera_calibrations['0']``)."""
        key = ("intr", participant, sequence)
        if key not in self._calib:
            self._calib[key] = parse_config(self.config(participant, sequence),
                                            layout.config_path(self.root, participant, sequence), sequence)
        return self._calib[key]

    def depth_calibration(self, participant: str, sequence: str) -> DepthCalibration:
        """Depth camera model + depth->colour transform (k4a calibration JSON)."""
        self._check_pid()
        key = ("k4a", participant, sequence)
        if key not in self._calib:
            path = layout.k4a_calibration_path(self.root, participant, sequence)
            self._calib[key] = parse_k4a(self._load_json(path, sequence), path, sequence)
        return self._calib[key]

    def is_synthetic(self, participant: str, sequence: str) -> bool:
        return bool(self.config(participant, sequence).get(SYNTHETIC_MARKER))

    # -- row-group access -------------------------------------------------------------------
    def _read_columns(self, sh: _Shard, columns: list[str]):
        try:
            return sh.file.read(columns=columns)
        except Exception as exc:
            raise DataError(f"cannot read columns {columns} ({type(exc).__name__}: {exc})", path=sh.path,
                            sequence=sh.sequence) from None

    def _group(self, sh: _Shard, g: int, frame: int):
        key = (str(sh.path), g)
        tab = self._groups.get(key)
        if tab is not None:
            self._groups.move_to_end(key)
            return tab
        try:
            tab = sh.file.read_row_group(g)
        except Exception as exc:
            raise DataError(f"cannot read Parquet row group {g} ({type(exc).__name__}: {exc})", path=sh.path,
                            sequence=sh.sequence, frame=frame) from None
        self._groups[key] = tab
        while len(self._groups) > self.cache_row_groups:
            self._groups.popitem(last=False)
        return tab

    def _cell(self, participant: str, sequence: str, shard: str, column: str, frame: int):
        sh = self.shard(participant, sequence, shard)
        if column not in sh.columns:
            raise DataError(f"shard lacks column {column!r}", path=sh.path, sequence=sequence)
        g, off = sh.locate(frame)
        return self._group(sh, g, frame).column(column)[off], sh

    def _array(self, participant: str, sequence: str, shard: str, column: str, frame: int,
               required: bool = True) -> np.ndarray | None:
        scalar, sh = self._cell(participant, sequence, shard, column, frame)
        if not scalar.is_valid:
            if required:
                raise DataError(f"{column} is null", path=sh.path, sequence=sequence, frame=frame)
            return None
        arr = np.asarray(scalar.values.to_numpy(zero_copy_only=False), dtype=np.float32)
        shape = _ARRAY_SHAPES[column]
        if arr.size != int(np.prod(shape)):
            raise DataError(f"{column} has {arr.size} values, expected {int(np.prod(shape))} (shape {shape})",
                            path=sh.path, sequence=sequence, frame=frame)
        if not np.all(np.isfinite(arr)):
            raise DataError(f"{column} contains NaN or inf", path=sh.path, sequence=sequence, frame=frame)
        return arr.reshape(shape)

    def _image(self, participant: str, sequence: str, shard: str, frame: int, reduce: int = 1,
               header_only: bool = False):
        scalar, sh = self._cell(participant, sequence, shard, IMAGE_COLUMNS[shard], frame)
        data = scalar.as_py() if scalar.is_valid else None
        data = data.get("bytes") if isinstance(data, dict) else None
        return decode_image(data, reduce=reduce, header_only=header_only, path=sh.path, sequence=sequence,
                            frame=frame)

    # -- per-frame loaders --------------------------------------------------------------
    def rgb_size(self, participant: str, sequence: str, frame: int) -> tuple[int, int]:
        """(width, height) of a colour frame, from the image header only."""
        return self._image(participant, sequence, layout.COLOR_SHARD, frame, header_only=True)

    def load_rgb(self, participant: str, sequence: str, frame: int, reduce: int = 1):
        """Ego colour image, (H, W, 3) uint8.

        ``reduce`` > 1 (2, 4 or 8) decodes a JPEG at about 1/reduce size and
        returns ``(image, (full_width, full_height))`` so callers can map coordinates.
        """
        img = self._image(participant, sequence, layout.COLOR_SHARD, frame, reduce=max(1, int(reduce)))
        full = None
        if reduce > 1:
            img, full = img
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=2)
        if img.ndim != 3 or img.shape[2] < 3:
            raise DataError(f"colour image has shape {img.shape}, expected (H, W, 3)",
                            path=layout.shard_path(self.root, participant, sequence, layout.COLOR_SHARD),
                            sequence=sequence, frame=frame)
        img = np.ascontiguousarray(img[..., :3]).astype(np.uint8, copy=False)
        return img if full is None else (img, full)

    def load_depth_raw(self, participant: str, sequence: str, frame: int) -> np.ndarray:
        """Raw depth in the depth-sensor frame: (h, w) uint16 millimetres, 0 = no measurement."""
        d = self._image(participant, sequence, layout.DEPTH_SHARD, frame)
        if d.ndim != 2:
            raise DataError(f"depth image has shape {d.shape}, expected a single channel",
                            path=layout.shard_path(self.root, participant, sequence, layout.DEPTH_SHARD),
                            sequence=sequence, frame=frame)
        return d.astype(np.uint16, copy=False)

    def load_depth(self, participant: str, sequence: str, frame: int,
                   size: tuple[int, int] | None = None) -> np.ndarray:
        """Depth registered to the colour camera: (H, W) float32 metres, 0 = hole.

        ``size`` = (width, height) of the output; default the colour image size.
        """
        raw = self.load_depth_raw(participant, sequence, frame)
        return register_depth_to_color(raw, self.depth_calibration(participant, sequence),
                                       self.intrinsics(participant, sequence), size)

    def load_mask(self, participant: str, sequence: str, frame: int) -> np.ndarray:
        """Hand mask, (H, W) uint8 (first channel if the PNG has several)."""
        m = self._image(participant, sequence, layout.MASK_SHARD, frame)
        return m if m.ndim == 2 else m[..., 0]

    def load_annotation(self, participant: str, sequence: str, frame: int) -> FrameAnnotation:
        """One annotation row; MANO fields are None on unannotated frames."""
        A = layout.ANNOTATION_SHARD
        flag, sh = self._cell(participant, sequence, A, "has_annotation", frame)
        side, _ = self._cell(participant, sequence, A, "hand_side", frame)
        side = side.as_py()
        if side not in ("left", "right"):
            raise DataError(f"hand_side is {side!r}, expected 'left' or 'right'", path=sh.path, sequence=sequence,
                            frame=frame)
        has = bool(flag.as_py())
        ann = FrameAnnotation(frame=int(frame), has_annotation=has, hand_side=side,
                              ego_R=self._array(participant, sequence, A, "ego_R", frame),
                              ego_T=self._array(participant, sequence, A, "ego_T", frame))
        if has:
            ann.vertices = self._array(participant, sequence, A, "vertices", frame)
            ann.joints = self._array(participant, sequence, A, "joint_position", frame)
            for key in ("betas", "full_pose", "transl", "normals", "displacement", "visible_vertices"):
                if key in sh.columns:
                    setattr(ann, key, self._array(participant, sequence, A, key, frame, required=False))
        return ann

    def load_pressure(self, participant: str, sequence: str, frame: int, required: bool = True) -> np.ndarray | None:
        """UV-pressure map in kPa, (224, 224) float32 (None on frames without one if not ``required``)."""
        pm = self._array(participant, sequence, layout.PRESSURE_SHARD, "pressure_map", frame, required)
        if pm is None:
            return None
        rng = self._array(participant, sequence, layout.PRESSURE_SHARD, "pressure_map_range", frame, True)
        return layout.uv_map_to_kpa(pm, rng)

    def load_force(self, participant: str, sequence: str, frame: int, required: bool = True) -> np.ndarray | None:
        """Sensel pad grid in kPa, (105, 185) float32."""
        f = self._array(participant, sequence, layout.PRESSURE_SHARD, "force", frame, required)
        return None if f is None else layout.counts_to_kpa(f)

    def load_frame(self, participant: str, sequence: str, frame: int) -> dict:
        """Everything of one frame as a dict (images, registered depth, annotation, pressure).

        ``pressure_kpa`` and ``force_kpa`` are None when the sequence has no ground truth.
        """
        ann = self.load_annotation(participant, sequence, frame)
        labelled = self.has_pressure(participant, sequence)
        return {
            "rgb": self.load_rgb(participant, sequence, frame),
            "depth_raw": self.load_depth_raw(participant, sequence, frame),
            "depth": self.load_depth(participant, sequence, frame),
            "mask": self.load_mask(participant, sequence, frame),
            "annotation": ann,
            "vertices_world": ann.vertices,
            "vertices_cam": ann.vertices_cam,
            "joints_world": ann.joints,
            "joints_cam": ann.joints_cam,
            "pressure_kpa": (self.load_pressure(participant, sequence, frame, required=ann.has_annotation)
                             if labelled else None),
            "force_kpa": self.load_force(participant, sequence, frame, required=False) if labelled else None,
            "hand_side": ann.hand_side,
            "intrinsics": self.intrinsics(participant, sequence),
        }

    # -- per-sequence --------------------------------------------------------------------
    def hand_side(self, participant: str, sequence: str) -> str:
        """The sequence's hand side (from its first annotation row)."""
        self._check_pid()
        key = (participant, sequence)
        if key not in self._side:
            frames = self.frames(participant, sequence)
            if len(frames) == 0:
                raise DataError("sequence has no frames",
                                path=layout.shard_path(self.root, participant, sequence, layout.ANNOTATION_SHARD),
                                sequence=sequence)
            self._side[key] = self.load_annotation(participant, sequence, int(frames[0])).hand_side
        return self._side[key]

    def atlas(self, participant: str, sequence: str):
        """UV atlas of the sequence's hand: our synthetic hand's, or MANO's from the user's UV .obj files."""
        side = self.hand_side(participant, sequence)
        synthetic = self.is_synthetic(participant, sequence)
        key = (synthetic, side)
        if key not in self._atlases:
            if synthetic:
                from egopressdiff.data.hand import synthetic_atlas

                self._atlases[key] = synthetic_atlas(side)
            else:
                from egopressdiff.data.mano_uv import load_mano_atlas

                self._atlases[key] = load_mano_atlas(side)
        return self._atlases[key]

    # -- the estimated-mesh track (optional annotation.parquet columns) ------------------------
    def has_estimated_mesh(self, participant: str, sequence: str) -> bool:
        """Whether the sequence has the estimated-mesh track (``vertices_estimated`` and
        ``joint_position_estimated``; our synthetic data has it, real data does not)."""
        cols = self.shard(participant, sequence, layout.ANNOTATION_SHARD).columns
        return all(c in cols for c in layout.ESTIMATED_SHAPES)

    def load_estimated_mesh(self, participant: str, sequence: str, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """The estimated mesh of one frame: (vertices (778, 3), joints (21, 3)) float32, world frame.

        Where the estimator failed (a null cell) the nearest frame's estimate is used, the
        earlier one on a tie, as a tracker holds its last output. DataError when the sequence
        has no such track, a frame is missing, or the estimator failed on every frame.
        """
        sh = self.shard(participant, sequence, layout.ANNOTATION_SHARD)
        key = (participant, sequence)
        track = self._estimated.get(key)
        if track is None:
            track = self._estimated[key] = self._read_estimated_track(sh, sequence)
            while len(self._estimated) > 8:  # a few sequences at a time
                self._estimated.popitem(last=False)
        frames, verts, joints, valid = track
        i = int(np.searchsorted(frames, frame))
        if i >= len(frames) or frames[i] != frame:
            raise DataError("frame missing from shard", path=sh.path, sequence=sequence, frame=frame)
        i = nearest_valid_row(frames, valid, i)
        return verts[i], joints[i]

    def _read_estimated_track(self, sh: _Shard, sequence: str):
        missing = [c for c in layout.ESTIMATED_SHAPES if c not in sh.columns]
        if missing:
            raise DataError(f"no estimated-mesh track: annotation.parquet has no {missing[0]!r} column (real "
                            "EgoPressure data has only the annotated mesh; use mesh 'annotated')", path=sh.path,
                            sequence=sequence)
        t = self._read_columns(sh, [layout.FRAME_COLUMN, *layout.ESTIMATED_SHAPES])
        frames = np.asarray(t.column(0).to_numpy(zero_copy_only=False), dtype=np.int64)
        order = np.argsort(frames)
        valid = np.ones(len(frames), dtype=bool)
        arrays = []
        for k, (name, shape) in enumerate(layout.ESTIMATED_SHAPES.items()):
            out = np.zeros((len(frames),) + shape, dtype=np.float32)
            for r, cell in enumerate(t.column(1 + k).to_pylist()):
                if cell is None:
                    valid[r] = False
                    continue
                a = np.asarray(cell, dtype=np.float32)
                if a.size != int(np.prod(shape)) or not np.all(np.isfinite(a)):
                    raise DataError(f"{name} has {a.size} values or NaN/inf, expected {int(np.prod(shape))} finite",
                                    path=sh.path, sequence=sequence, frame=int(frames[r]))
                out[r] = a.reshape(shape)
            arrays.append(out[order])
        valid = valid[order]
        if not valid.any():
            raise DataError("the estimated mesh is null on every frame", path=sh.path, sequence=sequence)
        return frames[order], arrays[0], arrays[1], valid

    def validate_sequence(self, participant: str, sequence: str) -> None:
        """Cheap structural check: calibration files parse, the shards open, frame columns are sane.

        ``pressure.parquet`` is checked when present; its absence is a recording without labels.
        """
        self.intrinsics(participant, sequence)
        self.depth_calibration(participant, sequence)
        for name in layout.SHARDS:
            if name == layout.PRESSURE_SHARD and not layout.shard_path(self.root, participant, sequence,
                                                                       name).exists():
                continue
            self.shard(participant, sequence, name)

    def pressure_summary(self, participant: str, sequence: str, full: bool = False) -> dict:
        """Per-sequence counts and pressure statistics (for ``egopressdiff info``).

        Fast path reads only ``frame``/``has_annotation`` and ``pressure_map_range``:
        a frame's peak pressure is range[1] counts (the map is normalised by its
        maximum). ``full`` also reads the maps for the mean contact pressure. A sequence
        without ground truth has ``has_pressure`` False and zero contact.
        """
        ann = self.annotated_frames(participant, sequence)
        if not self.has_pressure(participant, sequence):
            out = {"frames": int(len(self.frames(participant, sequence))), "annotated": int(len(ann)),
                   "has_pressure": False, "contact_frames": 0, "max_kpa": 0.0, "mean_peak_kpa": 0.0}
            if full:
                out["mean_contact_kpa"] = 0.0
            return out
        sh = self.shard(participant, sequence, layout.PRESSURE_SHARD)
        cols = [layout.FRAME_COLUMN, "pressure_map_range"] + (["pressure_map"] if full else [])
        t = self._read_columns(sh, cols)
        fr = np.asarray(t.column(0).to_numpy(zero_copy_only=False), dtype=np.int64)
        keep = np.isin(fr, ann)
        peaks, contact_vals = [], []
        rng_col = t.column(1).to_pylist()
        maps = t.column(2) if full else None
        for i in np.nonzero(keep)[0]:
            rng = rng_col[i]
            if rng is None or len(rng) != 2 or not np.all(np.isfinite(rng)):
                raise DataError("pressure_map_range is null or malformed on an annotated frame", path=sh.path,
                                sequence=sequence, frame=int(fr[i]))
            peaks.append(float(layout.counts_to_kpa(rng[1])))
            if full:
                cell = maps[int(i)]
                if not cell.is_valid:
                    raise DataError("pressure_map is null", path=sh.path, sequence=sequence, frame=int(fr[i]))
                raw = np.asarray(cell.values.to_numpy(zero_copy_only=False), dtype=np.float32)
                if raw.size != layout.UV_SIZE * layout.UV_SIZE:
                    raise DataError(f"pressure_map has {raw.size} values, expected {layout.UV_SIZE ** 2}",
                                    path=sh.path, sequence=sequence, frame=int(fr[i]))
                if not np.all(np.isfinite(raw)):
                    raise DataError("pressure_map contains NaN or inf", path=sh.path, sequence=sequence,
                                    frame=int(fr[i]))
                m = layout.uv_map_to_kpa(raw.reshape(layout.UV_SIZE, layout.UV_SIZE), rng)
                contact_vals.append(m[m > 1.0])
        peaks = np.asarray(peaks, dtype=np.float64)
        contact = peaks > 1.0
        out = {
            "frames": int(len(self.frames(participant, sequence))),
            "annotated": int(len(ann)),
            "has_pressure": True,
            "contact_frames": int(contact.sum()),
            "max_kpa": float(peaks.max()) if len(peaks) else 0.0,
            "mean_peak_kpa": float(peaks[contact].mean()) if contact.any() else 0.0,
        }
        if full:
            vals = np.concatenate(contact_vals) if contact_vals else np.zeros(0)
            out["mean_contact_kpa"] = float(vals.mean()) if len(vals) else 0.0
        return out
