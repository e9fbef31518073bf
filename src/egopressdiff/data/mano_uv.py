"""MANO UV atlas from the user's own ``MANO_UV_right.obj`` / ``MANO_UV_left.obj``.

The MANO files are licensed and never shipped. The folder holding them is
found via ``EGOPRESSDIFF_MANO_DIR``, else ``EGOPRESSURE_MANO_PATH`` (the
official toolkit's variable). Only ``v``, ``vt`` and ``f`` records are read;
faces must give ``vertex/uv`` indices (1-based, as in the OBJ format; negative
indices count from the end). A tiny parser of our own: OBJ parsing libraries
(trimesh, ...) would split vertices at UV seams and lose MANO's 778-vertex order.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from egopressdiff.data import layout
from egopressdiff.data.atlas import UVAtlas
from egopressdiff.errors import DataError, MissingAssetError

ENV_VARS = ("EGOPRESSDIFF_MANO_DIR", "EGOPRESSURE_MANO_PATH")
_HELP = (
    "MANO UV files are needed for real EgoPressure data. Register (free) at https://mano.is.tue.mpg.de/, "
    "download MANO_LEFT.pkl and MANO_RIGHT.pkl (Models & Code) and MANO_UV_left.obj and MANO_UV_right.obj "
    "(UV files), put all four in one folder and set EGOPRESSDIFF_MANO_DIR=/path/to/that/folder "
    "(EGOPRESSURE_MANO_PATH is also accepted)."
)


def mano_dir() -> Path:
    """The folder with the user's MANO files (MissingAssetError if no env var points to one)."""
    for var in ENV_VARS:
        value = os.environ.get(var)
        if value:
            path = Path(value).expanduser()
            if not path.is_dir():
                raise MissingAssetError(f"{var}={value} is not a directory. {_HELP}")
            return path
    raise MissingAssetError(f"no MANO folder configured (EGOPRESSDIFF_MANO_DIR is not set). {_HELP}")


def mano_file(side: str, pattern: str) -> Path:
    """``pattern`` formatted with the side (e.g. ``MANO_UV_{side}.obj``) in the MANO folder
    (MissingAssetError saying what to download if absent)."""
    if side not in ("left", "right"):
        raise ValueError(f"hand side must be 'left' or 'right', got {side!r}")
    path = mano_dir() / pattern.format(side=side, SIDE=side.upper())
    if not path.is_file():
        raise MissingAssetError(f"{path} not found. {_HELP}")
    return path


def uv_obj_path(side: str) -> Path:
    """Path of ``MANO_UV_<side>.obj`` in the MANO folder (MissingAssetError if absent)."""
    return mano_file(side, "MANO_UV_{side}.obj")


def parse_uv_obj(path, num_vertices: int | None = layout.NUM_VERTICES, name: str | None = None) -> UVAtlas:
    """Parse an OBJ with ``v``/``vt``/``f v/vt`` records into a :class:`UVAtlas`.

    Polygons with more than three corners are fanned into triangles. A
    malformed record raises DataError naming the file and line.
    """
    path = Path(path)
    verts, uvs, faces, uv_faces = [], [], [], []
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read OBJ file ({exc})", path=path) from None

    def bad(lineno: int, why: str):
        return DataError(f"malformed OBJ line {lineno}: {why}", path=path)

    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split("#", 1)[0].split()
        if not parts:
            continue
        tag, rest = parts[0], parts[1:]
        try:
            if tag == "v":
                if len(rest) < 3:
                    raise bad(lineno, "a vertex needs 3 coordinates")
                verts.append([float(x) for x in rest[:3]])
            elif tag == "vt":
                if len(rest) < 2:
                    raise bad(lineno, "a UV coordinate needs 2 values")
                uvs.append([float(x) for x in rest[:2]])
            elif tag == "f":
                if len(rest) < 3:
                    raise bad(lineno, "a face needs at least 3 corners")
                vi, ti = [], []
                for corner in rest:
                    idx = corner.split("/")
                    if len(idx) < 2 or not idx[1]:
                        raise bad(lineno, f"face corner {corner!r} has no UV index (expected v/vt)")
                    vi.append(_resolve(int(idx[0]), len(verts)))
                    ti.append(_resolve(int(idx[1]), len(uvs)))
                for k in range(1, len(vi) - 1):
                    faces.append([vi[0], vi[k], vi[k + 1]])
                    uv_faces.append([ti[0], ti[k], ti[k + 1]])
        except ValueError as exc:
            raise bad(lineno, str(exc)) from None
    if not faces:
        raise DataError("OBJ file has no faces", path=path)
    v = np.asarray(verts, dtype=np.float64)
    t = np.asarray(uvs, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    tf = np.asarray(uv_faces, dtype=np.int64)
    if num_vertices is not None and len(v) != num_vertices:
        raise DataError(f"OBJ has {len(v)} vertices, expected {num_vertices} (MANO)", path=path)
    for arr, n, what in ((f, len(v), "vertex"), (tf, len(t), "UV")):
        if arr.min() < 0 or arr.max() >= n:
            raise DataError(f"face {what} index out of range", path=path)
    if not np.all(np.isfinite(t)):
        raise DataError("UV coordinates contain NaN or inf", path=path)
    return UVAtlas(faces=f, uvs=t, uv_faces=tf, num_vertices=len(v), name=name or path.stem)


def _resolve(index: int, count: int) -> int:
    """OBJ index (1-based, negative = from the end) -> 0-based."""
    if index == 0:
        raise ValueError("OBJ indices start at 1, found 0")
    return index - 1 if index > 0 else count + index


_CACHE: dict = {}


def load_mano_atlas(side: str) -> UVAtlas:
    """UV atlas of MANO's ``side`` hand from the user's files (cached per path)."""
    path = uv_obj_path(side)
    key = (str(path), path.stat().st_mtime_ns)
    if key not in _CACHE:
        _CACHE[key] = parse_uv_obj(path, name=f"mano_{side}")
    return _CACHE[key]
