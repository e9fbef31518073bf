"""The one rasteriser (data/raster.py): coverage, depth order, ties, perspective, and its three users."""

import numpy as np
import pytest

from egopressdiff.data.hand import build_hand, synthetic_atlas
from egopressdiff.data.raster import PinholeCamera, rasterize, rasterize_screen


def _inside(px, py, tri, tol=1e-6):
    """Brute-force point-in-triangle of pixel centres (barycentric sign test)."""
    (ax, ay), (bx, by), (cx, cy) = tri
    den = (bx - ax) * (cy - ay) - (cx - ax) * (by - ay)
    w1 = ((px - ax) * (cy - ay) - (cx - ax) * (py - ay)) / den
    w2 = ((bx - ax) * (py - ay) - (px - ax) * (by - ay)) / den
    w0 = 1 - w1 - w2
    return np.minimum(np.minimum(w0, w1), w2)


def test_coverage_matches_point_in_triangle():
    rng = np.random.default_rng(0)
    H, W = 40, 50
    rows, cols = np.mgrid[0:H, 0:W].astype(np.float64)
    for _ in range(30):
        tri = rng.uniform([-5, -5], [W + 5, H + 5], size=(3, 2))
        fr = rasterize_screen(tri[:, 0], tri[:, 1], np.ones(3), np.array([[0, 1, 2]]), W, H)
        m = _inside(cols, rows, tri)
        # clearly inside -> covered, clearly outside -> not (the edge band is the tolerance)
        assert fr.mask[m > 1e-6].all()
        assert not fr.mask[m < -1e-3].any()


def test_barycentrics_reconstruct_the_pixel_centre():
    uv = np.array([[2.3, 1.7], [30.2, 4.1], [12.5, 25.9]])
    fr = rasterize_screen(uv[:, 0], uv[:, 1], np.zeros(3), np.array([[0, 1, 2]]), 32, 32)
    rows, cols = np.divmod(fr.pix, 32)
    np.testing.assert_allclose(fr.pix_bary @ uv, np.stack([cols, rows], axis=1), atol=1e-9)
    np.testing.assert_allclose(fr.pix_bary.sum(axis=1), 1.0, atol=1e-12)


def test_depth_order_and_ties():
    sq = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], float)
    xy = np.concatenate([sq, sq + 5])
    faces = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
    near_first = rasterize_screen(xy[:, 0], xy[:, 1], np.array([1.0] * 4 + [2.0] * 4), faces, 16, 16)
    near_second = rasterize_screen(xy[:, 0], xy[:, 1], np.array([2.0] * 4 + [1.0] * 4), faces, 16, 16)
    tie = rasterize_screen(xy[:, 0], xy[:, 1], np.zeros(8), faces, 16, 16)
    assert near_first.face[7, 7] in (0, 1) and near_second.face[7, 7] in (2, 3)
    assert tie.face[7, 7] in (2, 3)  # equal depth: the face listed last wins
    assert near_first.face[2, 2] in (0, 1) and near_first.face[15, 0] == -1
    np.testing.assert_allclose(near_second.depth[7, 7], 1.0)


def test_perspective_barycentrics_interpolate_the_3d_point():
    cam = PinholeCamera.from_fov(64, 48, 60.0)
    pts = np.array([[-0.05, -0.03, 0.30], [0.06, -0.02, 0.45], [0.00, 0.05, 0.60]])
    fr = rasterize(pts, np.array([[0, 1, 2]]), cam)
    assert len(fr.pix) > 50
    p = fr.pix_bary.astype(np.float64) @ pts  # the surface point each pixel sees
    rows, cols = np.divmod(fr.pix, cam.width)
    np.testing.assert_allclose(cam.fx * p[:, 0] / p[:, 2] + cam.cx, cols, atol=2e-3)
    np.testing.assert_allclose(cam.fy * p[:, 1] / p[:, 2] + cam.cy, rows, atol=2e-3)
    np.testing.assert_allclose(fr.depth.reshape(-1)[fr.pix], p[:, 2], rtol=1e-5)


def test_back_faces_culled_and_near_plane():
    cam = PinholeCamera.from_fov(32, 32, 60.0)
    pts = np.array([[-0.1, -0.1, 0.5], [0.1, -0.1, 0.5], [0.0, 0.1, 0.5]])
    f = np.array([[0, 1, 2]])
    both = [rasterize(pts, f, cam, cull_back=True).mask.any(), rasterize(pts, f[:, ::-1], cam, cull_back=True).mask.any()]
    assert sorted(both) == [False, True]  # exactly one winding faces the camera
    assert not rasterize(pts * [1, 1, 0.01], f, cam).mask.any()  # closer than the near plane


@pytest.mark.parametrize("side", ["right", "left"])
def test_atlas_texels_through_the_shared_rasteriser(side):
    atlas = synthetic_atlas(side)
    size = 96
    tm = atlas.texels(size)
    inside = tm.face >= 0
    rows, cols = np.nonzero(inside)
    uv = np.einsum("kj,kjc->kc", tm.bary[inside].astype(np.float64), atlas.uvs[atlas.uv_faces[tm.face[inside]]])
    np.testing.assert_allclose(uv[:, 0] * (size - 1), cols, atol=1e-4)
    np.testing.assert_allclose((1 - uv[:, 1]) * (size - 1), rows, atol=1e-4)
    # charts do not overlap, so the covered area is the atlas' UV area
    assert inside.sum() == pytest.approx(atlas.uv_face_areas().sum() * (size - 1) ** 2, rel=0.05)


def test_render_rasterise_mesh_is_the_shared_rasteriser():
    from egopressdiff.evaluation import render

    hand = build_hand("right")
    v = hand.rest_vertices
    xy = (v[:, :2] - v[:, :2].min(axis=0)) * 600 + 5
    face, bary = render.rasterise_mesh(xy, -v[:, 2], hand.faces, (120, 160))
    fr = rasterize_screen(xy[:, 0], xy[:, 1], -v[:, 2], hand.faces, 120, 160)
    np.testing.assert_array_equal(face, fr.face)
    np.testing.assert_array_equal(bary, fr.bary)
    # the nearest surface wins: the palmar side (+z, nearer to a viewer at +z) covers the palm centre
    c = face[int(xy[hand.vertex_palmar, 1].mean()), int(xy[hand.vertex_palmar, 0].mean())]
    assert c >= 0 and hand.vertex_palmar[hand.faces[c]].all()
