"""The user's own hand meshes: a folder of per-sequence ``.npz`` files in place of the annotation's mesh.

A recording of one's own has no annotation pipeline behind it; its hand mesh comes from a
monocular estimator (HaMeR, a MANO fitter, ...). ``predict --mesh DIR`` (``mesh=DIR`` in
:class:`~egopressdiff.data.clips.ClipDataset`) reads it from ``DIR/<participant>/<sequence>.npz``
(the same naming as the prediction files) holding

* ``frame``: (F,) int, the frame numbers of ``annotation.parquet`` (from 1);
* ``vertices``: (F, 778, 3) float, metres, MANO vertex order;
* ``joint_position``: (F, 21, 3) float, metres, the EgoPressure joint order;
* optionally ``coordinates``: ``"world"`` (default: the annotation's frame, the pad plane at
  z = 0) or ``"camera"`` (the ego colour camera's frame, as estimators give it; turned into
  the world frame with each frame's ``ego_R`` / ``ego_T`` from ``annotation.parquet``).

A frame whose vertices are NaN is an estimator failure: the nearest valid frame's mesh stands
in for it (the earlier one on a tie), as a tracker holds its last output, exactly as on the
synthetic estimated-mesh track. A predicted frame missing from the file, a wrong shape or a
file without a valid frame is a one-line :class:`~egopressdiff.errors.DataError` naming the
file (and the frame).

The rest of ``annotation.parquet`` (which frames to predict, the hand side, the camera pose)
is still read from the recording; its ``vertices`` are not used.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np

from egopressdiff.data import layout
from egopressdiff.data.calibration import camera_to_world
from egopressdiff.data.reader import nearest_valid_row
from egopressdiff.errors import DataError

COORDINATES = ("world", "camera")


def mesh_file(root, participant: str, sequence: str) -> Path:
    return Path(root) / participant / f"{sequence}.npz"


class MeshFolder:
    """Reads a folder of per-sequence mesh files (module doc); a few sequences are kept in memory."""

    def __init__(self, root):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError("mesh folder not found (expected 'annotated', 'estimated' or a folder of "
                            "<participant>/<sequence>.npz files)", path=self.root)
        self._tracks: OrderedDict = OrderedDict()

    def __repr__(self) -> str:  # what predict_info.json records as the mesh source
        return str(self.root)

    def track(self, participant: str, sequence: str):
        key = (participant, sequence)
        t = self._tracks.get(key)
        if t is None:
            t = self._tracks[key] = self._read(mesh_file(self.root, participant, sequence), sequence)
            while len(self._tracks) > 8:
                self._tracks.popitem(last=False)
        return t

    def check_covers(self, participant: str, sequence: str, frames) -> None:
        """DataError naming the first of ``frames`` the sequence's file lacks (or the file, when it has none)."""
        have = self.track(participant, sequence)[0]
        missing = np.setdiff1d(np.asarray(frames, dtype=np.int64), have)
        if len(missing):
            raise DataError(f"frame missing from the mesh file ({len(missing)} of {len(frames)} frames to predict "
                            "are)", path=mesh_file(self.root, participant, sequence), sequence=sequence,
                            frame=int(missing[0]))

    def mesh(self, participant: str, sequence: str, frame: int, ego_R=None, ego_T=None):
        """(vertices (778, 3), joints (21, 3)) float32 of ``frame`` in the world frame."""
        path = mesh_file(self.root, participant, sequence)
        frames, verts, joints, valid, coords = self.track(participant, sequence)
        i = int(np.searchsorted(frames, frame))
        if i >= len(frames) or frames[i] != frame:
            raise DataError("frame missing from the mesh file", path=path, sequence=sequence, frame=int(frame))
        i = nearest_valid_row(frames, valid, i)
        v, j = verts[i], joints[i]
        if coords == "camera":
            if ego_R is None or ego_T is None:
                raise DataError("camera-frame meshes need the frame's ego_R / ego_T", path=path, sequence=sequence,
                                frame=int(frame))
            R, T = np.asarray(ego_R, np.float64), np.asarray(ego_T, np.float64)
            v = camera_to_world(v.astype(np.float64), R, T).astype(np.float32)
            j = camera_to_world(j.astype(np.float64), R, T).astype(np.float32)
        return v, j

    @staticmethod
    def _read(path: Path, sequence: str):
        if not path.is_file():
            raise DataError("no mesh file for this sequence", path=path, sequence=sequence)
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except Exception as e:  # a truncated or foreign file: one line, not a traceback
            raise DataError(f"cannot read mesh file ({type(e).__name__}: {e})", path=path, sequence=sequence) from None
        for key in ("frame", "vertices", "joint_position"):
            if key not in arrays:
                raise DataError(f"mesh file has no {key!r} array (needs frame, vertices, joint_position)", path=path,
                                sequence=sequence)
        frames = np.asarray(arrays["frame"]).reshape(-1)
        if not np.issubdtype(frames.dtype, np.integer):
            raise DataError(f"'frame' must be integers, got {frames.dtype}", path=path, sequence=sequence)
        n = len(frames)
        shapes = {"vertices": (n, layout.NUM_VERTICES, 3), "joint_position": (n, layout.NUM_JOINTS, 3)}
        out = {}
        for key, shape in shapes.items():
            a = np.asarray(arrays[key])
            if a.shape != shape or not np.issubdtype(a.dtype, np.floating):
                raise DataError(f"{key!r} has shape {a.shape} ({a.dtype}), expected float {shape} for {n} frames",
                                path=path, sequence=sequence)
            out[key] = a.astype(np.float32)
        if len(np.unique(frames)) != n:
            raise DataError("'frame' has repeated frame numbers", path=path, sequence=sequence)
        coords = str(arrays["coordinates"]) if "coordinates" in arrays else "world"
        if coords not in COORDINATES:
            raise DataError(f"'coordinates' must be one of {COORDINATES}, got {coords!r}", path=path,
                            sequence=sequence)
        valid = np.isfinite(out["vertices"]).all(axis=(1, 2)) & np.isfinite(out["joint_position"]).all(axis=(1, 2))
        if not valid.any():
            raise DataError("the mesh is NaN on every frame", path=path, sequence=sequence)
        order = np.argsort(frames)
        return (frames[order].astype(np.int64), out["vertices"][order], out["joint_position"][order], valid[order],
                coords)


def write_mesh_file(root, participant: str, sequence: str, frames, vertices, joints, coordinates: str = "world"):
    """Write one sequence's meshes in the format above (a helper for users and tests); returns the path."""
    if coordinates not in COORDINATES:
        raise ValueError(f"coordinates must be one of {COORDINATES}")
    path = mesh_file(root, participant, sequence)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, frame=np.asarray(frames, dtype=np.int64), vertices=np.asarray(vertices, dtype=np.float32),
             joint_position=np.asarray(joints, dtype=np.float32), coordinates=np.array(coordinates))
    tmp.replace(path)  # never a half-written file under the real name
    return path
