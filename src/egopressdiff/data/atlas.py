"""The hand's UV atlas: which surface point every UV-map pixel (texel) shows.

A :class:`UVAtlas` is a triangle mesh's topology (``faces``) plus its texture
layout (``uvs`` and ``uv_faces``). Rasterising the UV triangles once per map
size gives, for every texel, the face it lies in and its barycentric
coordinates. From that follow:

* the **UV mask** (texels covered by the atlas, i.e. the hand region of a UV map),
* baking per-vertex values (e.g. pressure) into a UV map,
* the 3D surface point of every texel for a posed mesh (used for UV-aligned
  conditioning), and
* the **surface area of every texel** in m², so a kPa UV map integrates to a
  total force in newtons.

Both the synthetic hand (:mod:`egopressdiff.data.hand`) and MANO's UV ``.obj``
files (:mod:`egopressdiff.data.mano_uv`) produce a ``UVAtlas``.

Pixel convention (EgoPressure): column = u·(W−1), row = (1−v)·(H−1).
The texel maps come from the package's one numpy rasteriser
(:func:`egopressdiff.data.raster.rasterize_screen`, no GL dependency): the atlas is
~1.5k triangles and is rasterised once per size and cached.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from egopressdiff.data.raster import rasterize_screen


@dataclass(frozen=True)
class TexelMap:
    """Per-texel face index (-1 outside the atlas) and barycentric coordinates."""

    face: np.ndarray  # (R, R) int32
    bary: np.ndarray  # (R, R, 3) float32

    @property
    def size(self) -> int:
        return self.face.shape[0]

    @property
    def mask(self) -> np.ndarray:
        return (self.face >= 0).astype(np.float32)


@dataclass
class UVAtlas:
    faces: np.ndarray  # (F, 3) int, vertex indices
    uvs: np.ndarray  # (T, 2) float, UV coordinates in [0, 1]
    uv_faces: np.ndarray  # (F, 3) int, indices into uvs
    num_vertices: int
    name: str = "atlas"
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        self.faces = np.asarray(self.faces, dtype=np.int64)
        self.uvs = np.asarray(self.uvs, dtype=np.float64)
        self.uv_faces = np.asarray(self.uv_faces, dtype=np.int64)
        if self.faces.ndim != 2 or self.faces.shape[1] != 3 or self.uv_faces.shape != self.faces.shape:
            raise ValueError("faces and uv_faces must both be (F, 3)")
        if self.faces.min() < 0 or self.faces.max() >= self.num_vertices:
            raise ValueError("face vertex index out of range")
        if self.uv_faces.min() < 0 or self.uv_faces.max() >= len(self.uvs):
            raise ValueError("face uv index out of range")

    # -- rasterisation ------------------------------------------------------
    def texels(self, size: int = 224) -> TexelMap:
        if size not in self._cache:
            self._cache[size] = _rasterise(self.uvs, self.uv_faces, size)
        return self._cache[size]

    def mask(self, size: int = 224) -> np.ndarray:
        """UV mask: 1 on texels covered by the atlas (the hand), 0 elsewhere; float32 (R, R)."""
        return self.texels(size).mask

    # -- per-texel geometry ---------------------------------------------------
    def interpolate(self, vertex_values: np.ndarray, size: int = 224) -> np.ndarray:
        """Bake per-vertex values (..., V[, C]) into UV maps (..., R, R[, C]); 0 outside the mask."""
        tm = self.texels(size)
        vals = np.asarray(vertex_values)
        squeeze = False
        if vals.shape[-1] == self.num_vertices:  # (..., V) -> (..., V, 1)
            vals = vals[..., None]
            squeeze = True
        inside = tm.face >= 0
        fidx = tm.face[inside]
        tri = self.faces[fidx]  # (K, 3)
        w = tm.bary[inside]  # (K, 3)
        lead = vals.shape[:-2]
        out = np.zeros(lead + (size, size, vals.shape[-1]), dtype=np.result_type(vals.dtype, np.float32))
        gathered = vals[..., tri, :]  # (..., K, 3, C)
        out[..., inside, :] = np.einsum("...kjc,kj->...kc", gathered, w)
        return out[..., 0] if squeeze else out

    def texel_points(self, vertices: np.ndarray, size: int = 224) -> np.ndarray:
        """3D surface point of every texel for posed ``vertices`` (..., V, 3) -> (..., R, R, 3)."""
        return self.interpolate(vertices, size)

    def face_areas(self, vertices: np.ndarray) -> np.ndarray:
        """3D area (m²) of every face for ``vertices`` (..., V, 3) -> (..., F)."""
        v = np.asarray(vertices, dtype=np.float64)
        a, b, c = (v[..., self.faces[:, k], :] for k in range(3))
        return 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=-1)

    def uv_face_areas(self) -> np.ndarray:
        t = self.uvs[self.uv_faces]  # (F, 3, 2)
        e1, e2 = t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]
        return 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])

    def texel_area(self, vertices: np.ndarray, size: int = 224) -> np.ndarray:
        """Surface area (m²) each texel stands for on the posed mesh, (..., R, R); 0 outside.

        A texel covers (1/(R-1))² of UV space; its share of its face's 3D area is
        that over the face's UV area. Sum(kPa * 1000 * area) over texels = force in N.
        """
        tm = self.texels(size)
        ratio = self.face_areas(vertices) / np.maximum(self.uv_face_areas(), 1e-12)  # (..., F)
        texel_uv_area = 1.0 / float(size - 1) ** 2
        out = np.zeros(ratio.shape[:-1] + (size, size), dtype=np.float64)
        inside = tm.face >= 0
        out[..., inside] = ratio[..., tm.face[inside]] * texel_uv_area
        return out

    def total_force_newtons(self, kpa_map: np.ndarray, vertices: np.ndarray) -> np.ndarray:
        """Total normal force (N) of a kPa UV map (..., R, R) on the mesh posed as ``vertices``."""
        kpa_map = np.asarray(kpa_map, dtype=np.float64)
        area = self.texel_area(vertices, kpa_map.shape[-1])
        return (kpa_map * 1000.0 * area).sum(axis=(-1, -2))


def _rasterise(uvs: np.ndarray, uv_faces: np.ndarray, size: int) -> TexelMap:
    """Rasterise UV triangles at texel centres (col = u*(R-1), row = (1-v)*(R-1)).

    Through the package's one rasteriser, orthographic and at equal depth, so where
    triangles overlap (they should not in a valid atlas) the later face wins.
    """
    col = uvs[:, 0] * (size - 1)
    row = (1.0 - uvs[:, 1]) * (size - 1)
    fr = rasterize_screen(col, row, np.zeros(len(uvs)), uv_faces, size, size, edge_tolerance=1e-9)
    return TexelMap(face=fr.face, bary=fr.bary)
