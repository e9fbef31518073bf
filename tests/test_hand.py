"""The procedural hand: counts, joint order, dimensions, mirror, UV atlas, articulation."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from egopressdiff.data import layout
from egopressdiff.data.hand import (
    FINGERS,
    PART_PALM,
    HandModel,
    HandPose,
    HandShape,
    build_hand,
    rot_x,
    rot_y,
    rot_z,
    synthetic_atlas,
)


@pytest.fixture(scope="module")
def right():
    return build_hand("right")


@pytest.fixture(scope="module")
def left():
    return build_hand("left")


def test_counts_and_faces(right):
    v, j = right.pose()
    assert v.shape == (layout.NUM_VERTICES, 3) == (778, 3)
    assert j.shape == (layout.NUM_JOINTS, 3) == (21, 3)
    assert right.faces.min() == 0 and right.faces.max() == 777
    assert len(np.unique(right.faces)) == 778  # every vertex is used
    assert np.all(right.faces[:, 0] != right.faces[:, 1]) and np.all(right.faces[:, 1] != right.faces[:, 2])
    w = right.skin_weights
    assert np.all(w >= -1e-12) and np.allclose(w.sum(axis=1), 1.0)


def test_joint_order(right):
    _, j = right.pose()
    assert np.allclose(j[0], 0.0)  # wrist is joint 0 (the local origin)
    for name, idx in layout.FINGER_JOINTS.items():
        d = np.linalg.norm(j[idx] - j[0], axis=1)
        assert np.all(np.diff(d) > 0), f"{name}: joints must go base -> tip"
        tip = idx[-1]
        f = FINGERS.index(name)
        assert np.allclose(j[tip], right.pose()[0][right.tip_vertex[f]]), "tip joint is the fingertip vertex"
        # the tip is the finger's farthest vertex along the finger (base -> tip)
        fv = right.pose()[0][right.vertex_part == 1 + f]
        axis = (j[tip] - j[idx[0]]) / np.linalg.norm(j[tip] - j[idx[0]])
        assert (j[tip] - j[idx[0]]) @ axis >= ((fv - j[idx[0]]) @ axis).max() - 1e-9
    # thumb on +x (right hand), fingers along +y, pinky on -x
    assert j[4, 0] > j[8, 0] > j[20, 0]
    assert j[12, 1] > j[9, 1] > 0


def test_dimensions(right):
    _, j = right.pose()
    palm = np.linalg.norm(j[9] - j[0])  # wrist -> middle MCP
    assert 0.08 <= palm <= 0.10
    for name, idx in layout.FINGER_JOINTS.items():
        if name == "thumb":
            continue
        length = sum(np.linalg.norm(j[idx[k + 1]] - j[idx[k]]) for k in range(3))
        assert 0.06 <= length <= 0.095, (name, length)
    # finger radius around the proximal phalanx axis: 7-11 mm
    f = FINGERS.index("index")
    v = right.rest_vertices
    sel = (right.vertex_part == 1 + f) & (right.vertex_segment == 1)
    a, b = j[5], j[6]
    d = b - a
    t = ((v[sel] - a) @ d) / (d @ d)
    r = np.linalg.norm(v[sel] - (a + t[:, None] * d), axis=1)
    assert 0.006 <= r.mean() <= 0.011
    width = v[:, 0].max() - v[:, 0].min()
    assert 0.08 <= width <= 0.16


def test_left_is_mirror(right, left):
    vr, jr = right.pose()
    vl, jl = left.pose()
    M = np.array([-1.0, 1.0, 1.0])
    assert np.allclose(vl, vr * M) and np.allclose(jl, jr * M)
    assert np.array_equal(left.faces, right.faces[:, ::-1])
    assert np.array_equal(left.atlas.uvs, right.atlas.uvs)
    assert np.array_equal(left.atlas.uv_faces, right.atlas.uv_faces[:, ::-1])
    # articulated: the same parameters give the mirrored pose
    p = HandPose()
    p.flex[:] = np.deg2rad(30)
    p.abduct[:] = np.deg2rad([10, -5, 0, 5, 10])
    p.twist[0] = 0.3
    p.rot = rot_z(0.4)
    p.transl = np.array([0.01, 0.02, -0.03])
    vr, _ = right.pose(p)
    vl, _ = left.pose(p)
    # mirrored local pose, then the same global transform
    loc_r, _ = right.pose(HandPose(p.flex, p.abduct, p.twist))
    assert np.allclose(vl, (loc_r * M) @ p.rot.T + p.transl, atol=1e-12)
    # outward normals on both sides: palmar side of the palm faces +z
    for h in (right, left):
        n = h.vertex_normals(h.rest_vertices)
        pal = (h.vertex_part == PART_PALM) & h.vertex_palmar
        assert (n[pal, 2] > 0).mean() > 0.75 and n[pal, 2].mean() > 0.4  # (rim vertices face sideways)


def _uv_charts(atlas):
    """Connected components of the UV mesh (faces sharing a UV vertex)."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    F = len(atlas.uv_faces)
    m = sp.csr_matrix((np.ones(3 * F), (np.repeat(np.arange(F), 3), atlas.uv_faces.reshape(-1))),
                      shape=(F, len(atlas.uvs)))
    n, lab = connected_components(m @ m.T, directed=False)
    return n, lab


def test_atlas_charts(right):
    at = right.atlas
    assert at is synthetic_atlas("right")
    assert at.uvs.min() >= 0.0 and at.uvs.max() <= 1.0
    n, lab = _uv_charts(at)
    assert n >= 8  # palm palmar, back, web, wrist cap, 5 fingers
    # charts do not overlap: their UV boxes are disjoint (charts are convex-ish strips/rects)
    boxes = []
    for c in range(n):
        uv = at.uvs[at.uv_faces[lab == c].reshape(-1)]
        boxes.append((uv[:, 0].min(), uv[:, 1].min(), uv[:, 0].max(), uv[:, 1].max()))
    for a in range(n):
        for b in range(a + 1, n):
            A, B = boxes[a], boxes[b]
            overlap = min(A[2], B[2]) - max(A[0], B[0]) > 0 and min(A[3], B[3]) - max(A[1], B[1]) > 0
            assert not overlap, (a, b)
    # no folds inside a chart: all UV triangles have the same orientation as their 3D side ...
    t = at.uvs[at.uv_faces]
    e1, e2 = t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]
    signed = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    assert np.all(np.abs(signed) > 0)
    for c in range(n):
        s = np.sign(signed[lab == c])
        assert np.all(s == s[0]), f"chart {c} folds"
    # ... so the UV area sum equals the rasterised mask area (no texel covered twice)
    mask = at.mask(224)
    assert 0.6 < mask.mean() < 0.95
    assert abs(mask.mean() - at.uv_face_areas().sum()) < 0.03


def test_atlas_texel_areas_and_pads(right):
    at = right.atlas
    v = right.rest_vertices
    total = at.texel_area(v, 224).sum()
    assert abs(total - at.face_areas(v).sum()) / total < 0.03
    # contact skin (palmar) gets more UV area per m^2 than the back
    ratio = at.uv_face_areas() / at.face_areas(v)
    pal = right.vertex_palmar[at.faces].all(axis=1)
    fingers = (right.vertex_part[at.faces] > 0).all(axis=1)
    assert np.median(ratio[pal & fingers]) > 1.3 * np.median(ratio[~pal & fingers])


def test_articulation_is_smooth_and_local(right):
    base = HandPose()
    base.flex[:] = np.deg2rad(20)
    v0, j0 = right.pose(base)
    p = base.copy()
    p.flex[1, 1] += 0.01  # index PIP
    v1, j1 = right.pose(p)
    d = np.linalg.norm(v1 - v0, axis=1)
    assert d.max() < 0.002  # 0.01 rad moves nothing by more than 2 mm
    moved = d > 1e-9
    assert set(np.unique(right.vertex_part[moved])) == {2}  # only the index finger
    # a large flexion curls the tip towards the palm (+z local) and keeps the mesh continuous
    p = HandPose()
    p.flex[2] = np.deg2rad([70, 90, 60])
    v2, j2 = right.pose(p)
    assert j2[12, 2] > right.rest_joints[12, 2] + 0.03
    e = right.edges
    before = np.linalg.norm(v0[e[:, 0]] - v0[e[:, 1]], axis=1)
    after = np.linalg.norm(v2[e[:, 0]] - v2[e[:, 1]], axis=1)
    assert after.max() < 1.6 * before.max()  # no tearing
    # sweeping the flexion changes vertices continuously
    prev = v0
    for a in np.linspace(0.0, 1.2, 25):
        p = base.copy()
        p.flex[2] += a
        va, _ = right.pose(p)
        assert np.abs(va - prev).max() < 0.01
        prev = va


def test_global_pose_and_full_pose(right):
    p = HandPose()
    p.flex[3] = [0.3, 0.5, 0.2]
    p.abduct[3] = 0.1
    p.rot = Rotation.from_rotvec([0.1, -0.2, 0.3]).as_matrix()
    p.transl = np.array([0.1, 0.0, -0.05])
    v, j = right.pose(p)
    loc, jl = right.pose(HandPose(p.flex, p.abduct, p.twist))
    assert np.allclose(v, loc @ p.rot.T + p.transl) and np.allclose(j[0], p.transl)
    fp = p.full_pose()
    assert fp.shape == (48,) and np.allclose(fp[:3], [0.1, -0.2, 0.3], atol=1e-6)
    assert np.allclose(fp[3 + 9 * 3: 3 + 9 * 3 + 3],
                       Rotation.from_matrix(p.joint_rotations()[3, 0]).as_rotvec(), atol=1e-6)
    assert np.allclose(HandPose().full_pose(), 0.0)


def test_joint_rotations_compose_abduction_flexion_twist():
    rng = np.random.default_rng(3)
    p = HandPose(flex=rng.uniform(-0.5, 1.5, (5, 3)), abduct=rng.uniform(-0.3, 0.3, 5),
                 twist=rng.uniform(-0.4, 0.4, 5))
    jr = p.joint_rotations()
    for f in range(5):
        # the base joint abducts, then flexes, then twists about the bone
        np.testing.assert_allclose(jr[f, 0], rot_z(p.abduct[f]) @ rot_x(p.flex[f, 0]) @ rot_y(p.twist[f]),
                                   atol=1e-12)
        for k in (1, 2):
            np.testing.assert_allclose(jr[f, k], rot_x(p.flex[f, k]), atol=1e-12)
    # the elementary rotations turn the axes the right way (right-handed, radians)
    np.testing.assert_allclose(rot_z(np.pi / 2) @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(rot_x(np.pi / 2) @ [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(rot_y(np.pi / 2) @ [0.0, 0.0, 1.0], [1.0, 0.0, 0.0], atol=1e-12)


def test_deterministic_and_shapes():
    a = HandModel("right")
    b = HandModel("right")
    assert np.array_equal(a.rest_vertices, b.rest_vertices) and np.array_equal(a.faces, b.faces)
    big = build_hand("right", HandShape(scale=1.08, finger_length=1.05))
    assert np.array_equal(big.faces, a.faces) and big.atlas is a.atlas
    assert np.linalg.norm(big.rest_joints[12]) > np.linalg.norm(a.rest_joints[12]) * 1.08
    assert HandShape(scale=1.1).betas()[0] == pytest.approx(0.1)
    with pytest.raises(ValueError):
        HandModel("middle")
