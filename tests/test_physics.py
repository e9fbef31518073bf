"""Soft-tissue contact: penetration -> kPa, UV baking, the force grid, and their agreement."""

import numpy as np
import pytest

from egopressdiff.data import layout
from egopressdiff.data.hand import HandPose, build_hand
from egopressdiff.data.physics import (
    CELL,
    GRID_COLS,
    GRID_ROWS,
    PressureBaker,
    SoftTissue,
    cell_centres,
    contact_pressure,
    depth_for_force,
    grid_coords,
    group_force_curve,
    penetration,
    splat_to_grid,
    vertex_pressure,
)
from egopressdiff.data.synth import R_LOCAL_TO_WORLD


@pytest.fixture(scope="module")
def hand():
    return build_hand("right")


@pytest.fixture(scope="module")
def baker(hand):
    return PressureBaker(hand.atlas)


def _palm_down(hand, depth_m, x=0.03, y=0.0):
    """Flat right hand, palm down, its lowest point ``depth_m`` into the pad (negative: above)."""
    p = HandPose()
    p.flex[1:, 0] = np.deg2rad(-12)  # fingers slightly lifted
    p.rot = R_LOCAL_TO_WORLD
    v, _ = hand.pose(p)
    shift = np.array([x - v[:, 0].mean(), y - v[:, 1].mean(), depth_m - v[:, 2].max()])
    return v + shift


def test_tissue_law():
    t = SoftTissue()
    d = np.array([-0.001, 0.0, 0.0005, 0.001, 0.002, 0.003, 0.008])
    p = t.pressure_of_depth(d)
    assert p[0] == 0 and p[1] == 0
    assert np.all(np.diff(p[1:6]) > 0)
    assert 5 <= p[3] <= 40 and 100 <= p[5] <= t.max_kpa  # a few mm -> tens to hundreds of kPa
    assert p[4] / p[3] > p[3] / p[2] > 1  # stiffening: each millimetre costs more than the last
    assert p[6] == t.max_kpa
    np.testing.assert_allclose(t.pressure_of_depth(d[:5], 2.0), 2.0 * p[:5])  # a stiffer spot


def test_no_contact_is_zero_everywhere(hand, baker):
    v = _palm_down(hand, -0.003)
    assert penetration(v).max() == 0.0
    p = vertex_pressure(hand, v)
    assert np.all(p == 0)
    b = baker.bake(v, p)
    assert b.kpa_map.max() == 0 and b.force_counts.max() == 0 and b.total_force_uv == 0


def test_contact_is_smooth_and_local(hand):
    v = _palm_down(hand, 0.002)
    raw = SoftTissue(smoothing_steps=0)
    p0 = vertex_pressure(hand, v, raw)
    p = vertex_pressure(hand, v)
    assert (p > 0).sum() > (p0 > 0).sum()  # spread to neighbours ...
    assert p.max() < p0.max()  # ... which lowers the peak
    assert np.all(p[v[:, 2] < -0.03] == 0)  # nothing far above the pad
    # outside the sensing area nothing is measured
    far = _palm_down(hand, 0.002, x=0.5)
    assert vertex_pressure(hand, far).max() == 0


def test_grid_geometry():
    xs, ys = cell_centres()
    assert len(xs) == GRID_COLS == 185 and len(ys) == GRID_ROWS == 105
    assert xs[0] < 0 < xs[-1] and ys[0] < 0 < ys[-1]  # col 0 / row 0 at -x / -y
    assert np.allclose(np.diff(xs), CELL) and abs(xs.mean()) < 1e-12 and abs(ys.mean()) < 1e-12
    c, r = grid_coords(xs[10], ys[20])
    assert c == pytest.approx(10) and r == pytest.approx(20)
    g = splat_to_grid(np.array([xs[10], xs[100] + CELL / 2, 1.0]), np.array([ys[20], ys[50], 0.0]),
                      np.array([1.0, 2.0, 0.5]))
    assert g.shape == layout.FORCE_GRID_SHAPE
    assert g[20, 10] == pytest.approx(layout.COUNTS_PER_NEWTON)  # a cell centre lands in its cell
    assert g[50, 100] == pytest.approx(layout.COUNTS_PER_NEWTON) and g[50, 101] == pytest.approx(layout.COUNTS_PER_NEWTON)
    assert g[:, -1].sum() == pytest.approx(0.5 * layout.COUNTS_PER_NEWTON)  # off-grid: clamped, conserved
    assert g.sum() / layout.COUNTS_PER_NEWTON == pytest.approx(3.5)


def test_bake_agrees_with_atlas_and_grid(hand, baker):
    for depth in (0.001, 0.003):
        v = _palm_down(hand, depth)
        p = vertex_pressure(hand, v)
        b = baker.bake(v, p)
        # the UV map is the atlas' barycentric interpolation of the vertex pressure
        assert np.allclose(b.kpa_map, hand.atlas.interpolate(p), atol=1e-4)
        uv_n = float(hand.atlas.total_force_newtons(b.kpa_map, v))
        grid_n = float(b.force_counts.sum() / layout.COUNTS_PER_NEWTON)
        assert grid_n > 1.0
        assert abs(uv_n - grid_n) / grid_n < 0.01  # well within the 10% requirement
        # stored form round trip (normalised map + range, counts)
        norm, rng = layout.kpa_to_uv_map(b.kpa_map)
        back = layout.uv_map_to_kpa(norm, rng)
        assert np.allclose(back, b.kpa_map, rtol=1e-5, atol=1e-5)
        # plausible magnitudes
        assert 2.0 < b.kpa_map.max() < 200.0
        assert 1.0 < grid_n < 150.0
        # the grid's force sits under the hand
        rows, cols = np.nonzero(b.force_counts > 0)
        xs, ys = cell_centres()
        assert xs[cols].min() > v[:, 0].min() - 0.01 and xs[cols].max() < v[:, 0].max() + 0.01
    deeper = contact_pressure(hand, _palm_down(hand, 0.004), baker)
    assert deeper.total_force_grid > b.total_force_grid


def test_force_controller_inverse():
    rng = np.random.default_rng(0)
    heights = np.abs(rng.normal(0, 0.003, 60))
    heights -= heights.min()
    areas = np.full(60, 5e-5)
    for f in (0.5, 3.0, 12.0):
        d = depth_for_force(heights, areas, f)
        assert group_force_curve(heights, areas, [d])[0] == pytest.approx(f, rel=0.05)
    assert depth_for_force(heights, areas, 0.0) == 0.0
