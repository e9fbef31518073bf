"""The prediction file format: one ``.npz`` per sequence.

``<pred_root>/<participant>/<sequence>.npz`` holds

* ``frame``: int64 (T,), the dataset's frame numbers, sorted and unique;
* ``pressure_kpa``: float32 (T, 224, 224), finite, >= 0;
* ``pressure_std_kpa`` (optional): float32 (T, 224, 224), the spread of several samples.

Files are written atomically (zip-compressed: the maps are mostly zeros).
:class:`PredictionWriter` streams frames of a long sequence into a raw temporary
file (positioned writes) and packs it chunk by chunk, so memory does not grow with
sequence length; only a complete file ever appears under the final name.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from egopressdiff.data.layout import UV_SIZE
from egopressdiff.errors import DataError, EgoPressDiffError
from egopressdiff.fsutil import atomic_path, check_safe_name

PRED_KEYS = ("frame", "pressure_kpa")
STD_KEY = "pressure_std_kpa"
MAP_SHAPE = (UV_SIZE, UV_SIZE)


@dataclass
class Prediction:
    """One sequence's prediction as read from disk."""

    participant: str
    sequence: str
    frame: np.ndarray  # (T,) int64
    pressure_kpa: np.ndarray  # (T, 224, 224) float32
    pressure_std_kpa: np.ndarray | None
    path: Path

    def __len__(self) -> int:
        return len(self.frame)


def prediction_path(pred_root, participant: str, sequence: str) -> Path:
    """``<pred_root>/<participant>/<sequence>.npz``; refuses names that could escape ``pred_root``."""
    check_safe_name(participant, "participant name")
    check_safe_name(sequence, "sequence name")
    return Path(pred_root) / participant / f"{sequence}.npz"


def _validate_maps(arr: np.ndarray, frames: np.ndarray, key: str, path, sequence) -> np.ndarray:
    if arr.dtype.kind != "f":
        raise DataError(f"'{key}' must be floating point (float32), got {arr.dtype}", path=path, sequence=sequence)
    if arr.ndim != 3 or arr.shape[1:] != MAP_SHAPE:
        raise DataError(f"'{key}' must have shape (T, {UV_SIZE}, {UV_SIZE}), got {arr.shape}",
                        path=path, sequence=sequence)
    if arr.shape[0] != len(frames):
        raise DataError(f"'{key}' has {arr.shape[0]} maps but 'frame' has {len(frames)} entries",
                        path=path, sequence=sequence)
    flat = arr.reshape(arr.shape[0], -1)
    bad = ~np.isfinite(flat).all(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"'{key}' holds NaN or inf", path=path, sequence=sequence, frame=int(frames[i]))
    neg = (flat < 0).any(axis=1)
    if neg.any():
        i = int(np.argmax(neg))
        raise DataError(f"'{key}' holds negative pressure", path=path, sequence=sequence, frame=int(frames[i]))
    return arr.astype(np.float32, copy=False)


def _validate_frames(frames: np.ndarray, path, sequence) -> np.ndarray:
    if frames.ndim != 1:
        raise DataError(f"'frame' must be 1-D, got shape {frames.shape}", path=path, sequence=sequence)
    if frames.dtype.kind not in "iu":
        raise DataError(f"'frame' must hold integers, got {frames.dtype}", path=path, sequence=sequence)
    frames = frames.astype(np.int64, copy=False)
    if len(frames) > 1:
        steps = np.diff(frames)
        if (steps <= 0).any():
            i = int(np.argmax(steps <= 0)) + 1
            raise DataError("'frame' must be sorted and unique", path=path, sequence=sequence,
                            frame=int(frames[i]))
    return frames


def write_prediction(pred_root, participant: str, sequence: str, frames, pressure_kpa, std=None) -> Path:
    """Write one sequence's prediction atomically; returns the file path.

    The arrays are validated as :func:`read_prediction` would (shape, finite,
    >= 0, sorted unique frames) so an invalid file is never written.
    """
    path = prediction_path(pred_root, participant, sequence)
    frames = _validate_frames(np.asarray(frames), path, sequence)
    arrays = {"frame": frames,
              "pressure_kpa": _validate_maps(np.asarray(pressure_kpa), frames, "pressure_kpa", path, sequence)}
    if std is not None:
        arrays[STD_KEY] = _validate_maps(np.asarray(std), frames, STD_KEY, path, sequence)
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **arrays)
    return path


def read_prediction(path_or_root, participant: str | None = None, sequence: str | None = None) -> Prediction:
    """Read and validate a prediction file.

    Either a file path, or ``pred_root`` with ``participant`` and ``sequence``.
    Any problem (missing file, unreadable, missing key, wrong dtype or shape,
    NaN/inf, negative values, unsorted or duplicate frames) raises
    :class:`~egopressdiff.errors.DataError` naming the file (and frame).
    """
    if participant is not None or sequence is not None:
        if participant is None or sequence is None:
            raise ValueError("give both participant and sequence, or a file path")
        path = prediction_path(path_or_root, participant, sequence)
    else:
        path = Path(path_or_root)
        participant, sequence = path.parent.name, path.stem
    if not path.is_file():
        raise DataError("prediction file not found", path=path, sequence=sequence)
    if not zipfile.is_zipfile(path):  # np.load would otherwise try it as a pickle (refused) or raw .npy
        raise DataError("cannot read prediction file: not an .npz (zip) archive", path=path, sequence=sequence)
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in PRED_KEYS if k not in z.files]
            if missing:
                raise DataError(f"prediction file lacks key(s) {missing}", path=path, sequence=sequence)
            frames = z["frame"]
            pressure = z["pressure_kpa"]
            std = z[STD_KEY] if STD_KEY in z.files else None
    except DataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"cannot read prediction file: {e}", path=path, sequence=sequence) from e
    frames = _validate_frames(frames, path, sequence)
    pressure = _validate_maps(pressure, frames, "pressure_kpa", path, sequence)
    if std is not None:
        std = _validate_maps(std, frames, STD_KEY, path, sequence)
    return Prediction(participant, sequence, frames, pressure, std, path)


def list_predictions(pred_root) -> list[tuple[str, str, Path]]:
    """All ``(participant, sequence, path)`` under ``pred_root``, sorted (temp files skipped)."""
    root = Path(pred_root)
    if not root.is_dir():
        raise DataError("prediction folder not found", path=root)
    out = []
    for pdir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sorted(pdir.glob("*.npz")):
            if not f.name.startswith("."):
                try:
                    check_safe_name(pdir.name, "participant name")
                    check_safe_name(f.stem, "sequence name")
                except EgoPressDiffError as e:
                    raise DataError(str(e), path=f) from None
                out.append((pdir.name, f.stem, f))
    return out


def check_prediction_complete(pred: Prediction, gt_frames) -> np.ndarray:
    """Rows of ``pred`` for each ground-truth frame, in order.

    A ground-truth frame with no prediction is an error (never a skipped frame):
    :class:`~egopressdiff.errors.DataError` names the sequence and the first missing frame.
    Extra predicted frames are ignored.
    """
    gt = np.asarray(list(gt_frames) if not isinstance(gt_frames, np.ndarray) else gt_frames, dtype=np.int64)
    idx = np.searchsorted(pred.frame, gt)
    idx_c = np.minimum(idx, max(len(pred.frame) - 1, 0))
    found = (idx < len(pred.frame)) & (pred.frame[idx_c] == gt) if len(pred.frame) else np.zeros(len(gt), bool)
    if not found.all():
        first = int(gt[np.argmax(~found)])
        raise DataError(f"prediction is missing {int((~found).sum())} ground-truth frame(s)",
                        path=pred.path, sequence=pred.sequence, frame=first)
    return idx


_MAP_BYTES = UV_SIZE * UV_SIZE * 4  # one float32 map
_CHUNK_FRAMES = 32  # maps copied per write when packing the .npz


def _pwrite_rows(fd: int, rows: np.ndarray, maps: np.ndarray) -> None:
    maps = np.ascontiguousarray(maps, dtype=np.float32)
    for r, m in zip(rows, maps):
        os.pwrite(fd, m.tobytes(), int(r) * _MAP_BYTES)


def _zip_array(zf: zipfile.ZipFile, name: str, arr: np.ndarray) -> None:
    with zf.open(name + ".npy", "w", force_zip64=True) as f:
        np.lib.format.write_array(f, np.ascontiguousarray(arr), allow_pickle=False)


def _zip_raw_maps(zf: zipfile.ZipFile, name: str, fd: int, num_frames: int) -> None:
    """Write a (T, 224, 224) float32 ``.npy`` member from a raw file, a chunk at a time (as np.save would)."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
              "shape": (num_frames, *MAP_SHAPE)}
    with zf.open(name + ".npy", "w", force_zip64=True) as f:
        np.lib.format.write_array_header_1_0(f, header)
        for start in range(0, num_frames, _CHUNK_FRAMES):
            n = min(_CHUNK_FRAMES, num_frames - start)
            f.write(os.pread(fd, n * _MAP_BYTES, start * _MAP_BYTES))


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().float().cpu().numpy()
    return np.asarray(x)


def _rows_of(maps, k: int) -> np.ndarray:
    """Maps as (k, 224, 224): accepts (224, 224) for one row, or any shape holding k maps, e.g. (1, k, 224, 224)."""
    a = _to_numpy(maps)
    if a.size == k * UV_SIZE * UV_SIZE:
        a = a.reshape(k, *MAP_SHAPE)
    return a


class PredictionWriter:
    """Stream a long sequence's prediction to disk one frame (or chunk) at a time.

    ``frames`` is either the number of frames to come (frame numbers then arrive with
    :meth:`add` / :meth:`add_many`, increasing) or the sequence's frame numbers up front
    (maps then arrive by row index with :meth:`put`, in any order, e.g. from
    overlapping windows). Maps are written straight to a raw temporary file beside the
    output (positioned writes, no memory map whose dirty pages would count as resident
    memory), so memory does not grow with the sequence length; :meth:`close` checks that
    every frame arrived and packs them into the ``.npz`` atomically, a chunk at a time. Used as a context
    manager, an exception discards everything and leaves no file under the final name.
    """

    def __init__(self, pred_root, participant: str, sequence: str, frames, with_std: bool = False):
        self.path = prediction_path(pred_root, participant, sequence)
        self.participant, self.sequence = participant, sequence
        if np.ndim(frames) == 0:
            self.num_frames = int(frames)
            self._frames = np.zeros(self.num_frames, dtype=np.int64)
            self._known_frames = False
        else:
            self._frames = _validate_frames(np.asarray(frames), self.path, sequence).copy()
            self.num_frames = len(self._frames)
            self._known_frames = True
        if self.num_frames <= 0:
            raise ValueError("a prediction needs at least one frame")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._filled = np.zeros(self.num_frames, dtype=bool)
        self._n = 0  # frames appended with add()/add_many()
        self._tmpfiles: list[Path] = []
        self._closed = False
        self._pressure = self._rawfile("pressure")
        self._std = self._rawfile("std") if with_std else None

    def _rawfile(self, tag: str) -> int:
        fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.{tag}.", suffix=".tmp", dir=self.path.parent)
        self._tmpfiles.append(Path(name))
        os.ftruncate(fd, self.num_frames * _MAP_BYTES)
        return fd

    def __len__(self) -> int:
        return int(self._filled.sum())

    def _store(self, rows: np.ndarray, pressure_kpa, std) -> None:
        if self._closed:
            raise RuntimeError("PredictionWriter is closed")
        frames = self._frames[rows]
        _pwrite_rows(self._pressure, rows, _validate_maps(_rows_of(pressure_kpa, len(rows)), frames,
                                                          "pressure_kpa", self.path, self.sequence))
        if self._std is not None:
            if std is None:
                raise ValueError("this writer was opened with_std=True: give std")
            _pwrite_rows(self._std, rows, _validate_maps(_rows_of(std, len(rows)), frames, STD_KEY, self.path,
                                                         self.sequence))
        self._filled[rows] = True

    def put(self, index, pressure_kpa, std=None) -> None:
        """Store the map(s) of row ``index`` (int or array of ints) of the frames given up front."""
        if not self._known_frames:
            raise RuntimeError("put() needs the frame numbers up front; use add() with a frame count")
        rows = np.atleast_1d(np.asarray(index, dtype=np.int64))
        if rows.min() < 0 or rows.max() >= self.num_frames:
            raise IndexError(f"row index out of range 0..{self.num_frames - 1} for {self.sequence}")
        self._store(rows, pressure_kpa, std)

    def add(self, frame: int, pressure_kpa, std=None) -> None:
        """Append one frame (frame numbers must increase)."""
        self.add_many(np.asarray([frame]), _to_numpy(pressure_kpa)[None],
                      None if std is None else _to_numpy(std)[None])

    def add_many(self, frames, pressure_kpa, std=None) -> None:
        """Append a chunk of frames ``(K,)`` with maps ``(K, 224, 224)``."""
        if self._known_frames:
            raise RuntimeError("frame numbers were given up front; use put()")
        frames = _validate_frames(np.asarray(frames).reshape(-1), self.path, self.sequence)
        k = len(frames)
        if self._n + k > self.num_frames:
            raise ValueError(f"more frames than announced ({self.num_frames}) for {self.sequence}")
        if self._n and k and frames[0] <= self._frames[self._n - 1]:
            raise DataError("'frame' must be sorted and unique", path=self.path, sequence=self.sequence,
                            frame=int(frames[0]))
        rows = np.arange(self._n, self._n + k)
        self._frames[rows] = frames
        self._store(rows, pressure_kpa, std)
        self._n += k

    def close(self) -> Path:
        """Check every frame arrived, then write the ``.npz`` atomically."""
        if self._closed:
            return self.path
        if not self._filled.all():
            first = int(np.argmin(self._filled))
            n = int(self._filled.sum())
            self.abort()
            raise DataError(f"prediction stream ended with {n} of {self.num_frames} frames written",
                            path=self.path, sequence=self.sequence,
                            frame=int(self._frames[first]) if self._known_frames else None)
        try:
            with atomic_path(self.path) as tmp:
                with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
                    _zip_array(zf, "frame", self._frames)
                    _zip_raw_maps(zf, "pressure_kpa", self._pressure, self.num_frames)
                    if self._std is not None:
                        _zip_raw_maps(zf, STD_KEY, self._std, self.num_frames)
        finally:
            self._cleanup()
        return self.path

    def abort(self) -> None:
        """Discard everything written so far."""
        self._cleanup()

    def _cleanup(self) -> None:
        self._closed = True
        for fd in (self._pressure, self._std):
            if fd is not None:
                os.close(fd)
        self._pressure = self._std = None
        for f in self._tmpfiles:
            f.unlink(missing_ok=True)
        self._tmpfiles = []

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()
