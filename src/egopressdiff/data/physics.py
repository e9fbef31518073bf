"""Soft-tissue contact with the rigid pad, baked to the UV map and to the pad's force grid.

World frame (EgoPressure): the pad is the plane ``z = 0``, ``+z`` points down
through it, the hand is at ``z < 0``. The hand is posed kinematically, so
where it is pressed "into" the pad its vertices have ``z > 0``: that
penetration depth ``d`` stands for the compression of the skin and soft tissue
against the rigid pad. It is the simulation's internal state: what the stored
annotation holds instead is described in :mod:`egopressdiff.data.synth.annotation`.

Model
-----
1. Per vertex, inside the pad's sensing area: ``p = k · s · (exp(d / d0) − 1)``
   kPa (``k`` = :attr:`SoftTissue.stiffness_kpa`, 10 kPa; ``d0`` =
   :attr:`SoftTissue.depth_scale_m`, 1 mm; capped at ``max_kpa``), zero where
   ``d <= 0``. Soft tissue stiffens exponentially as it is compressed (the
   fingertip pulp's force-displacement curve is exponential), so the contact area
   grows quickly at light loads and little beyond a few newtons while the pressure
   keeps rising: a fingertip sinks about 2 mm at 2 N and 3 mm at 8 N. ``s`` is an
   optional per-vertex stiffness factor (thin tissue over bone is stiffer than the
   thick pads; the generator draws a smooth map per participant).
2. The pressure is spread smoothly over the skin by neighbour averaging on the
   mesh graph (``p ← (1-s)·p + s·mean_neighbours(p)``, :attr:`SoftTissue.smoothing_steps`
   steps). Without contact nothing spreads, so hovering hands have exactly zero
   pressure.
3. **UV map**: per-vertex kPa are baked into the 224x224 UV map by barycentric
   interpolation over each texel's face (the atlas' texel map).
4. **Force grid**: each covered texel stands for a known surface patch (its
   3D point and area, :meth:`UVAtlas.texel_area`), so it carries a force
   ``kPa · 1000 · area`` newtons. Those forces are splatted (bilinear) at the
   texel's ``(x, y)`` on the 105x185 Sensel grid and converted to counts
   (``layout.COUNTS_PER_NEWTON``). The UV map and the grid therefore hold the
   same total force by construction (up to float rounding), measured on the mesh
   whose texel areas were used (``area_vertices``).

Force grid geometry: 185 columns x 105 rows of 1.25 mm cells, centred on the
pad; column 0 / row 0 is the ``-x`` / ``-y`` corner, columns grow with ``+x``
and rows with ``+y``: cell ``(row, col)`` has its centre at
``x = (col - 92) · 1.25 mm``, ``y = (row - 52) · 1.25 mm``. Only that sensing
area (±115.6 mm x ±65.6 mm, inside the ±120 x ±68.75 mm pad) produces pressure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from egopressdiff.data import layout
from egopressdiff.data.atlas import UVAtlas

GRID_ROWS, GRID_COLS = layout.FORCE_GRID_SHAPE
CELL = layout.SENSEL_CELL_SIZE_M
SENSE_HALF_X = GRID_COLS * CELL / 2.0  # 0.115625 m
SENSE_HALF_Y = GRID_ROWS * CELL / 2.0  # 0.065625 m
MM = 1e-3


def grid_coords(x, y) -> tuple[np.ndarray, np.ndarray]:
    """World (x, y) metres -> fractional (col, row) of the force grid (cell centres at integers)."""
    return (np.asarray(x) + SENSE_HALF_X) / CELL - 0.5, (np.asarray(y) + SENSE_HALF_Y) / CELL - 0.5


def cell_centres() -> tuple[np.ndarray, np.ndarray]:
    """(x of the 185 columns, y of the 105 rows) of the cell centres, metres."""
    return (np.arange(GRID_COLS) + 0.5) * CELL - SENSE_HALF_X, (np.arange(GRID_ROWS) + 0.5) * CELL - SENSE_HALF_Y


def in_sensing_area(x, y, margin: float = 0.0) -> np.ndarray:
    return (np.abs(x) <= SENSE_HALF_X - margin) & (np.abs(y) <= SENSE_HALF_Y - margin)


@dataclass(frozen=True)
class SoftTissue:
    """Contact model parameters: ``p = stiffness_kpa · (exp(d / depth_scale_m) − 1)``, then smoothing."""

    stiffness_kpa: float = 10.0
    depth_scale_m: float = 0.001
    smoothing: float = 0.5
    smoothing_steps: int = 1
    max_kpa: float = 250.0

    def pressure_of_depth(self, depth_m, factor=1.0) -> np.ndarray:
        """kPa at penetration ``depth_m``; ``factor`` scales the stiffness (per vertex: thin or thick tissue)."""
        d = np.clip(np.asarray(depth_m, dtype=np.float64), 0.0, None)
        return np.minimum(self.stiffness_kpa * np.asarray(factor) * np.expm1(d / self.depth_scale_m), self.max_kpa)


def penetration(vertices: np.ndarray) -> np.ndarray:
    """Penetration depth (m, >= 0) of every vertex into the pad's sensing area."""
    v = np.asarray(vertices)
    d = np.clip(v[:, 2], 0.0, None)
    return np.where(in_sensing_area(v[:, 0], v[:, 1]), d, 0.0)


def vertex_pressure(hand, vertices: np.ndarray, tissue: SoftTissue = SoftTissue(), factor=1.0) -> np.ndarray:
    """Per-vertex contact pressure in kPa (778,), smoothed over the skin; zero without contact.

    ``factor``: per-vertex stiffness factors (778,) or a scalar."""
    p = tissue.pressure_of_depth(penetration(vertices), factor)
    if not np.any(p > 0):
        return np.zeros(len(p))
    N = hand.neighbour_mean
    for _ in range(tissue.smoothing_steps):
        p = (1.0 - tissue.smoothing) * p + tissue.smoothing * (N @ p)
    return p


def group_force_curve(heights: np.ndarray, areas: np.ndarray, depths: np.ndarray,
                      tissue: SoftTissue = SoftTissue(), factor=1.0) -> np.ndarray:
    """Force (N) of a vertex group pushed so its lowest point is ``depth`` into the pad.

    ``heights``: each vertex' height above the group's lowest vertex (m, >= 0); ``areas``:
    vertex areas (m²); ``depths``: candidate depths (m). Smoothing is ignored (it roughly
    preserves the total), so this is the controller's estimate, not the baked force.
    """
    d = np.asarray(depths, dtype=np.float64)[:, None] - np.asarray(heights)[None, :]
    return (tissue.pressure_of_depth(d, factor) * 1000.0 * np.asarray(areas)[None, :]).sum(axis=1)


def depth_for_force(heights: np.ndarray, areas: np.ndarray, force_n: float,
                    tissue: SoftTissue = SoftTissue(), max_depth: float = 0.009, factor=1.0) -> float:
    """Penetration depth (m) at which a group carries ``force_n`` newtons (monotone search)."""
    if force_n <= 0:
        return 0.0
    lo, hi = 0.0, max_depth
    for _ in range(2):  # coarse bracket, then a fine one inside it
        grid = np.linspace(lo, hi, 33)
        f = group_force_curve(heights, areas, grid, tissue, factor)
        if f[-1] <= force_n:
            return float(hi)
        i = max(int(np.searchsorted(f, force_n)), 1)
        lo, hi = grid[i - 1], grid[i]
    f0, f1 = group_force_curve(heights, areas, [lo, hi], tissue, factor)
    t = 0.0 if f1 <= f0 else (force_n - f0) / (f1 - f0)
    return float(lo + t * (hi - lo))


def splat_to_grid(x: np.ndarray, y: np.ndarray, newtons: np.ndarray) -> np.ndarray:
    """Bilinear splat of point forces (N) at world (x, y) onto the force grid, in counts (105, 185).

    Positions are clamped to the grid, so the total force is always conserved.
    """
    col, row = grid_coords(x, y)
    col = np.clip(col, 0.0, GRID_COLS - 1.0)
    row = np.clip(row, 0.0, GRID_ROWS - 1.0)
    c0 = np.minimum(np.floor(col).astype(np.int64), GRID_COLS - 2)
    r0 = np.minimum(np.floor(row).astype(np.int64), GRID_ROWS - 2)
    fc = col - c0
    fr = row - r0
    w = np.asarray(newtons, dtype=np.float64) * layout.COUNTS_PER_NEWTON
    base = r0 * GRID_COLS + c0
    idx = np.concatenate([base, base + 1, base + GRID_COLS, base + GRID_COLS + 1])
    val = np.concatenate([w * (1 - fc) * (1 - fr), w * fc * (1 - fr), w * (1 - fc) * fr, w * fc * fr])
    grid = np.bincount(idx, weights=val, minlength=GRID_ROWS * GRID_COLS)
    return grid.reshape(GRID_ROWS, GRID_COLS)


@dataclass
class Baked:
    """One frame's pressure: UV map (kPa), force grid (counts) and both totals (N)."""

    kpa_map: np.ndarray  # (224, 224) float32 kPa
    force_counts: np.ndarray  # (105, 185) float32 counts
    total_force_uv: float
    total_force_grid: float

    @property
    def in_contact(self) -> bool:
        return self.total_force_grid > 0


class PressureBaker:
    """Bakes per-vertex kPa into the UV map and the force grid for one atlas (precomputed texel plan)."""

    def __init__(self, atlas: UVAtlas, size: int = layout.UV_SIZE):
        self.atlas = atlas
        self.size = size
        tm = atlas.texels(size)
        flat = tm.face.reshape(-1)
        self.texel_index = np.nonzero(flat >= 0)[0]
        self.texel_face = flat[self.texel_index].astype(np.int64)
        self.texel_bary = tm.bary.reshape(-1, 3)[self.texel_index].astype(np.float64)
        self.texel_tri = atlas.faces[self.texel_face]  # (K, 3) vertex ids
        self.uv_area = np.maximum(atlas.uv_face_areas(), 1e-12)
        self.texel_uv_area = 1.0 / float(size - 1) ** 2
        # texels grouped by face, to select the texels of the faces in contact quickly
        order = np.argsort(self.texel_face, kind="stable")
        self._order = order
        self._face_start = np.searchsorted(self.texel_face[order], np.arange(len(atlas.faces) + 1))

    def _texels_of_faces(self, faces: np.ndarray) -> np.ndarray:
        s, e = self._face_start[faces], self._face_start[faces + 1]
        n = e - s
        if n.sum() == 0:
            return np.zeros(0, dtype=np.int64)
        rep = np.repeat(s, n)
        off = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        return self._order[rep + off]

    def bake(self, vertices: np.ndarray, vertex_kpa: np.ndarray, area_vertices: np.ndarray | None = None) -> Baked:
        """``vertices`` place each texel's force on the grid; ``area_vertices`` (default the same)
        give the texel areas, so the UV map's force on that mesh equals the grid's."""
        R = self.size
        kmap = np.zeros(R * R, dtype=np.float64)
        p = np.asarray(vertex_kpa, dtype=np.float64)
        if not np.any(p > 0):
            return Baked(kmap.reshape(R, R).astype(np.float32), np.zeros((GRID_ROWS, GRID_COLS), np.float32),
                         0.0, 0.0)
        faces = self.atlas.faces
        active_faces = np.nonzero(p[faces].max(axis=1) > 0)[0]
        t = self._texels_of_faces(active_faces)
        tri = self.texel_tri[t]
        b = self.texel_bary[t]
        kpa = (p[tri] * b).sum(axis=1)
        v = np.asarray(vertices, dtype=np.float64)
        pts = np.einsum("kj,kjc->kc", b, v[tri])
        va = v if area_vertices is None else np.asarray(area_vertices, dtype=np.float64)
        fa = _face_areas(va, faces[active_faces])
        face_area = np.zeros(len(faces))
        face_area[active_faces] = fa
        area = face_area[self.texel_face[t]] / self.uv_area[self.texel_face[t]] * self.texel_uv_area
        newtons = kpa * 1000.0 * area
        kmap[self.texel_index[t]] = kpa
        grid = splat_to_grid(pts[:, 0], pts[:, 1], newtons)
        kmap32 = kmap.reshape(R, R).astype(np.float32)
        grid32 = grid.astype(np.float32)
        return Baked(kmap32, grid32, float(newtons.sum()), float(grid32.sum(dtype=np.float64) / layout.COUNTS_PER_NEWTON))


def _face_areas(v: np.ndarray, faces: np.ndarray) -> np.ndarray:
    a, b, c = v[faces[:, 0]], v[faces[:, 1]], v[faces[:, 2]]
    return 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)


def contact_pressure(hand, vertices: np.ndarray, baker: PressureBaker | None = None,
                     tissue: SoftTissue = SoftTissue()) -> Baked:
    """Convenience: vertex pressure + bake for a posed hand (world vertices)."""
    baker = baker or PressureBaker(hand.atlas)
    return baker.bake(vertices, vertex_pressure(hand, vertices, tissue))
