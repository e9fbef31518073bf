"""Calibration JSON build/parse, projection, Brown–Conrady distortion, depth registration on a plane."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from egopressdiff.data.calibration import (
    ColorIntrinsics,
    build_config_json,
    build_k4a_calibration,
    depth_rays,
    distort,
    parse_config,
    parse_k4a,
    project,
    register_depth_to_color,
    undistort,
)
from egopressdiff.errors import DataError

# a k4a-like wide-angle depth lens (rational model coefficients of the magnitude Azure Kinects ship)
DIST = dict(k1=0.45, k2=-0.05, k3=-0.003, k4=0.78, k5=0.02, k6=-0.015, p1=2e-5, p2=-6e-5)
DEPTH = dict(fx=251.0, fy=251.3, cx=255.2, cy=257.9, width=512, height=512, **DIST)
COLOR = dict(fx=455.0, fy=455.0, cx=319.5, cy=179.5, width=640, height=360)


def test_config_json_round_trip():
    cfg = build_config_json(COLOR, {"id": "p_007", "hand_side": "left"}, {"egopressdiff_synthetic": True})
    assert cfg["egopressdiff_synthetic"] is True and cfg["participant"]["id"] == "p_007"
    e = cfg["camera_calibrations"]["0"]
    assert {"fx", "fy", "cx", "cy", "k1", "k6", "p1", "p2", "DepthToColor", "ImageSizeX"} <= set(e)
    ci = parse_config(cfg)
    assert ci == ColorIntrinsics(455.0, 455.0, 319.5, 179.5, 640, 360)
    with pytest.raises(DataError, match="ego camera calibration"):
        parse_config({"camera_calibrations": {"1": e}}, path="x.json", sequence="s")


def test_k4a_round_trip_and_parameter_order():
    R = Rotation.from_euler("xyz", [0.1, -0.2, 0.05], degrees=True).as_matrix()
    k4a = build_k4a_calibration(DEPTH, R, [-0.032, 0.002, 0.004], COLOR)
    cams = k4a["CalibrationInformation"]["Cameras"]
    depth = next(c for c in cams if c["Location"].endswith("D0"))
    color = next(c for c in cams if c["Location"].endswith("PV0"))
    p = depth["Intrinsics"]["ModelParameters"]
    assert p[0] == pytest.approx(255.2 / 512) and p[2] == pytest.approx(251.0 / 512)
    assert p[12] == DIST["p2"] and p[13] == DIST["p1"]  # k4a stores p2 before p1
    assert color["Rt"]["Translation"] == [-0.032, 0.002, 0.004]
    cal = parse_k4a(k4a)
    np.testing.assert_allclose(cal.pixel_intrinsics(512, 512), (251.0, 251.3, 255.2, 257.9))
    assert cal.dist == tuple(DIST[k] for k in ("k1", "k2", "k3", "k4", "k5", "k6", "p1", "p2"))
    np.testing.assert_allclose(cal.R, R)
    with pytest.raises(DataError, match="k4a calibration is malformed"):
        parse_k4a({"CalibrationInformation": {"Cameras": [depth]}})


def test_distortion_inverse():
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1.0, 1.0, 2000), rng.uniform(-1.0, 1.0, 2000)
    dist = tuple(DIST[k] for k in ("k1", "k2", "k3", "k4", "k5", "k6", "p1", "p2"))
    xd, yd = distort(x, y, dist)
    assert np.abs(xd - x).max() > 0.01  # the lens really distorts
    xu, yu = undistort(xd, yd, dist)
    assert np.abs(xu - x).max() < 1e-6 and np.abs(yu - y).max() < 1e-6


def test_projection():
    ci = ColorIntrinsics(100.0, 120.0, 50.0, 40.0, 100, 80)
    uv = project(np.array([[0.0, 0.0, 2.0], [0.2, -0.1, 1.0], [0.0, 0.0, -1.0]]), ci)
    np.testing.assert_allclose(uv[:2], [[50, 40], [70, 28]])
    assert np.isnan(uv[2]).all()
    s = ci.scaled(50, 40)  # half size, pixel centres at integers
    assert (s.fx, s.cx, s.cy) == (50.0, 24.75, 19.75)


def _plane_depth_map(n, dist_d, k4a):
    """Depth (mm) of the plane n.P = dist_d seen by the distorted depth camera (ray casting)."""
    rays = depth_rays(parse_k4a(k4a), 512, 512)  # undistorted (x/z, y/z, 1) per depth pixel
    z = dist_d / (rays @ n)
    return np.where(z > 0, np.rint(z * 1000), 0).astype(np.uint16)


@pytest.mark.parametrize("splat,size", [(0, (320, 180)), (1, (640, 360))])
def test_registration_on_a_plane(splat, size):
    R = Rotation.from_euler("xyz", [1.5, -2.0, 0.7], degrees=True).as_matrix()
    t = np.array([-0.032, 0.002, 0.004])
    k4a = build_k4a_calibration(DEPTH, R, t, COLOR)
    n = np.array([0.15, -0.25, 1.0])
    n /= np.linalg.norm(n)
    d = 0.6  # plane n.P = 0.6 m in the depth frame
    depth = _plane_depth_map(n, d, k4a)
    depth[200:210, 200:210] = 0  # a hole
    reg = register_depth_to_color(depth, k4a, COLOR, size, splat=splat)
    W, H = size
    assert reg.shape == (H, W) and reg.dtype == np.float32
    ci = ColorIntrinsics(**COLOR).scaled(W, H)
    # the plane in the colour frame: P_c = R P_d + t  ->  (R n).P_c = d + (R n).t
    nc = R @ n
    dc = d + nc @ t
    v, u = np.mgrid[0:H, 0:W]
    rays = np.stack([(u - ci.cx) / ci.fx, (v - ci.cy) / ci.fy, np.ones(u.shape)], -1)
    analytic = dc / (rays @ nc)
    valid = reg > 0
    inner = np.zeros_like(valid)
    inner[H // 9:-H // 9, W // 10:-W // 10] = True
    assert valid[inner].mean() > (0.9 if splat == 0 else 0.99)
    err = np.abs(reg - analytic)[valid & inner]
    # 0.5 mm quantisation + the depth change across half a colour pixel (+ the splat neighbour)
    assert np.median(err) < 0.002 and err.max() < 0.01
    # without the depth->colour transform the same data lands measurably wrong
    k4a_wrong = build_k4a_calibration(DEPTH, np.eye(3), np.zeros(3), COLOR)
    reg_w = register_depth_to_color(depth, k4a_wrong, COLOR, size, splat=splat)
    both = valid & (reg_w > 0) & inner
    assert np.median(np.abs(reg_w - analytic)[both]) > 3 * np.median(err)


def test_registration_z_buffer_keeps_nearest():
    k4a = build_k4a_calibration(dict(fx=50, fy=50, cx=19.5, cy=19.5, width=40, height=40), np.eye(3),
                                [0.05, 0, 0], dict(fx=50, fy=50, cx=19.5, cy=19.5, width=40, height=40))
    depth = np.full((40, 40), 1000, np.uint16)
    depth[15:25, 15:25] = 300  # a near box in front of a far wall
    reg = register_depth_to_color(depth, k4a, dict(fx=50, fy=50, cx=19.5, cy=19.5, width=40, height=40), splat=1)
    # the box shifts by fx * t / z = 50 * 0.05 / 0.3 ~ 8 px in the colour view and still occludes the wall
    assert reg[20, 20 + 8] == pytest.approx(0.3) and reg[20, 5] == pytest.approx(1.0)
    assert (np.abs(reg[10:30, 10:40] - 0.3) < 1e-6).sum() >= 100  # the whole 10x10 box (plus splat)
