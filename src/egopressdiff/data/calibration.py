"""Camera calibration of the egocentric camera: build/parse, projection, depth registration.

Facts (EgoPressure toolkit docs/DATA.md):

* The sequence config JSON holds ``camera_calibrations["0"]`` for the ego camera:
  pinhole ``fx, fy, cx, cy`` of the colour image (which ships undistorted),
  the original lens's ``k1..k6, p1, p2`` (informational), ``DepthToColor``,
  ``ImageSizeX/Y`` and ``SerialNo``.
* The k4a factory calibration (``cam-d.k4a_calibration.json``) lists cameras
  under ``CalibrationInformation.Cameras``. The depth camera (``Location``
  ending in ``D0``) has Brown–Conrady ``ModelParameters`` normalised by the
  image size: ``[cx, cy, fx, fy, k1, k2, k3, k4, k5, k6, codx, cody, p2, p1, ...]``.
  Each camera's ``Rt`` (``Rotation`` 9 row-major, ``Translation`` 3 in metres)
  maps points from the depth frame into that camera's frame, so the colour
  (``...PV0``) entry is the depth→colour transform.
* Depth maps are in the distorted depth-sensor frame; to align them with the
  colour image, unproject every valid depth pixel (inverting the distortion),
  move it into the colour frame and project it with the colour pinhole
  intrinsics, keeping the nearest sample per pixel (z-buffer).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from egopressdiff.data import layout
from egopressdiff.errors import DataError

DIST_KEYS = ("k1", "k2", "k3", "k4", "k5", "k6", "p1", "p2")
_DEPTH_LOCATION = "CALIBRATION_CameraLocationD0"
_COLOR_LOCATION = "CALIBRATION_CameraLocationPV0"
_MODEL_TYPE = "CALIBRATION_LensDistortionModelBrownConrady"


# --------------------------------------------------------------------------- builders
def build_config_json(color_intrinsics: dict, participant: dict, extra: dict | None = None,
                      depth_to_color: np.ndarray | None = None) -> dict:
    """Sequence config JSON in the EgoPressure form (ego camera keyed ``"0"``).

    ``color_intrinsics``: ``fx, fy, cx, cy, width, height`` (+ optional ``k1..k6,
    p1, p2``, default 0). ``participant``: the metadata block (``id``, ``hand_side``,
    ...). ``extra`` is merged at the top level (e.g. the synthetic marker).
    ``depth_to_color``: optional 4x4 (metres) stored as ``DepthToColor``.
    """
    ci = color_intrinsics
    entry = {k: float(ci[k]) for k in ("fx", "fy", "cx", "cy")}
    entry.update({k: float(ci.get(k, 0.0)) for k in DIST_KEYS})
    entry["ImageSizeX"] = int(ci["width"])
    entry["ImageSizeY"] = int(ci["height"])
    d2c = np.eye(4) if depth_to_color is None else np.asarray(depth_to_color, dtype=np.float64).reshape(4, 4)
    entry["DepthToColor"] = d2c.tolist()
    entry["SerialNo"] = str(ci.get("serial", "000000000000"))
    cfg = {"participant": dict(participant), "camera_calibrations": {layout.EGO_CAMERA_CALIB_KEY: entry}}
    cfg.update(extra or {})
    return cfg


def _k4a_camera(location: str, purpose: str, intr: dict, R, t, dist: dict) -> dict:
    w, h = float(intr["width"]), float(intr["height"])
    params = [intr["cx"] / w, intr["cy"] / h, intr["fx"] / w, intr["fy"] / h,
              *(float(dist.get(k, 0.0)) for k in ("k1", "k2", "k3", "k4", "k5", "k6")),
              0.0, 0.0,  # codx, cody (unused by Brown–Conrady here)
              float(dist.get("p2", 0.0)), float(dist.get("p1", 0.0)),
              0.0]  # metric radius slot, unused
    return {
        "Intrinsics": {"ModelParameterCount": 14, "ModelParameters": [float(p) for p in params],
                       "ModelType": _MODEL_TYPE},
        "Location": location,
        "Purpose": purpose,
        "Rt": {"Rotation": [float(x) for x in np.asarray(R, dtype=np.float64).reshape(9)],
               "Translation": [float(x) for x in np.asarray(t, dtype=np.float64).reshape(3)]},
        "SensorWidth": int(intr["width"]),
        "SensorHeight": int(intr["height"]),
    }


def build_k4a_calibration(depth_intrinsics: dict, depth_to_color_R, depth_to_color_t,
                          color_intrinsics: dict) -> dict:
    """k4a factory-calibration JSON for a depth + colour camera pair.

    ``depth_intrinsics``: ``fx, fy, cx, cy, width, height`` in pixels of the
    stored depth image (+ optional ``k1..k6, p1, p2``). ``depth_to_color_R`` (3x3)
    and ``depth_to_color_t`` (3, metres) map depth-frame points into the colour frame.
    """
    depth = _k4a_camera(_DEPTH_LOCATION, "CALIBRATION_CameraPurposeDepth", depth_intrinsics,
                        np.eye(3), np.zeros(3), depth_intrinsics)
    color = _k4a_camera(_COLOR_LOCATION, "CALIBRATION_CameraPurposePhotoVideo", color_intrinsics,
                        depth_to_color_R, depth_to_color_t, color_intrinsics)
    return {"CalibrationInformation": {"Cameras": [depth, color]}}


# --------------------------------------------------------------------------- parsed forms
@dataclass(frozen=True)
class ColorIntrinsics:
    """Pinhole intrinsics of the (undistorted) ego colour image."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1]], dtype=np.float64)

    def scaled(self, width: int, height: int) -> ColorIntrinsics:
        """Intrinsics of the same camera resampled to ``width x height`` (pixel centres at integers)."""
        sx, sy = width / self.width, height / self.height
        return ColorIntrinsics(self.fx * sx, self.fy * sy, (self.cx + 0.5) * sx - 0.5, (self.cy + 0.5) * sy - 0.5,
                               int(width), int(height))

    def as_dict(self) -> dict:
        return {"fx": self.fx, "fy": self.fy, "cx": self.cx, "cy": self.cy, "width": self.width,
                "height": self.height}


@dataclass(frozen=True)
class DepthCalibration:
    """Depth camera model (normalised Brown–Conrady) and the depth→colour transform (metres)."""

    norm: tuple  # (cx, cy, fx, fy) normalised by the image size
    dist: tuple  # (k1, k2, k3, k4, k5, k6, p1, p2)
    R: np.ndarray = field(compare=False)  # (3, 3) depth -> colour
    t: np.ndarray = field(compare=False)  # (3,) metres

    def pixel_intrinsics(self, width: int, height: int) -> tuple[float, float, float, float]:
        """(fx, fy, cx, cy) in pixels of a ``width x height`` depth image."""
        cx, cy, fx, fy = self.norm
        return fx * width, fy * height, cx * width, cy * height


def _as_color(ci) -> ColorIntrinsics:
    if isinstance(ci, ColorIntrinsics):
        return ci
    return ColorIntrinsics(float(ci["fx"]), float(ci["fy"]), float(ci["cx"]), float(ci["cy"]),
                           int(ci["width"]), int(ci["height"]))


def parse_config(config: dict, path=None, sequence: str | None = None) -> ColorIntrinsics:
    """Ego colour intrinsics from a sequence config JSON dict (DataError if malformed)."""
    try:
        e = config["camera_calibrations"][layout.EGO_CAMERA_CALIB_KEY]
        ci = ColorIntrinsics(float(e["fx"]), float(e["fy"]), float(e["cx"]), float(e["cy"]),
                             int(e["ImageSizeX"]), int(e["ImageSizeY"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"config lacks a valid ego camera calibration (camera_calibrations"
                        f"['{layout.EGO_CAMERA_CALIB_KEY}']: {exc!r})", path=path, sequence=sequence) from None
    vals = np.array([ci.fx, ci.fy, ci.cx, ci.cy])
    if not np.all(np.isfinite(vals)) or ci.fx <= 0 or ci.fy <= 0 or ci.width <= 0 or ci.height <= 0:
        raise DataError(f"config has invalid ego intrinsics {ci}", path=path, sequence=sequence)
    return ci


def parse_k4a(k4a: dict, path=None, sequence: str | None = None) -> DepthCalibration:
    """Depth camera model + depth→colour transform from a k4a calibration JSON dict."""
    try:
        cams = k4a["CalibrationInformation"]["Cameras"]
        depth = next(c for c in cams if str(c["Location"]).endswith("D0"))
        color = next(c for c in cams if str(c["Location"]).endswith("PV0"))
        p = [float(x) for x in depth["Intrinsics"]["ModelParameters"]]
        norm = (p[0], p[1], p[2], p[3])
        dist = (p[4], p[5], p[6], p[7], p[8], p[9], p[13], p[12])  # stored ... p2 (12), p1 (13)
        R = np.asarray(color["Rt"]["Rotation"], dtype=np.float64).reshape(3, 3)
        t = np.asarray(color["Rt"]["Translation"], dtype=np.float64).reshape(3)
    except (KeyError, TypeError, ValueError, IndexError, StopIteration) as exc:
        raise DataError(f"k4a calibration is malformed ({exc!r}); expected CalibrationInformation.Cameras "
                        "with ...D0 and ...PV0 entries", path=path, sequence=sequence) from None
    if not (np.all(np.isfinite(norm)) and np.all(np.isfinite(dist)) and np.all(np.isfinite(R))
            and np.all(np.isfinite(t))) or norm[2] <= 0 or norm[3] <= 0:
        raise DataError("k4a calibration has non-finite or invalid values", path=path, sequence=sequence)
    return DepthCalibration(norm=norm, dist=dist, R=R, t=t)


# --------------------------------------------------------------------------- geometry
def project(points_cam: np.ndarray, intr) -> np.ndarray:
    """Pinhole projection of camera-frame points (..., 3) -> pixels (..., 2); NaN behind the camera."""
    ci = _as_color(intr)
    p = np.asarray(points_cam, dtype=np.float64)
    z = p[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = ci.fx * p[..., 0] / z + ci.cx
        v = ci.fy * p[..., 1] / z + ci.cy
    uv = np.stack([u, v], axis=-1)
    uv[z <= 1e-9] = np.nan
    return uv


def world_to_camera(points_world: np.ndarray, R: np.ndarray, T: np.ndarray) -> np.ndarray:
    """``P_cam = R · P_world + T`` for (..., 3) points (ego pose, metres)."""
    return np.asarray(points_world) @ np.asarray(R).T + np.asarray(T)


def camera_to_world(points_cam: np.ndarray, R: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Inverse of :func:`world_to_camera` (R orthonormal)."""
    return (np.asarray(points_cam) - np.asarray(T)) @ np.asarray(R)


def distort(x: np.ndarray, y: np.ndarray, dist) -> tuple[np.ndarray, np.ndarray]:
    """Brown–Conrady (rational radial + tangential, OpenCV order) on normalised coordinates."""
    k1, k2, k3, k4, k5, k6, p1, p2 = dist
    r2 = x * x + y * y
    radial = (1 + r2 * (k1 + r2 * (k2 + r2 * k3))) / (1 + r2 * (k4 + r2 * (k5 + r2 * k6)))
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return xd, yd


def undistort(xd: np.ndarray, yd: np.ndarray, dist, iterations: int = 10, newton_steps: int = 3
              ) -> tuple[np.ndarray, np.ndarray]:
    """Invert :func:`distort` (no closed form): fixed-point iterations for a start, then Newton steps
    with a finite-difference Jacobian, which converge where the fixed point crawls (image corners)."""
    k1, k2, k3, k4, k5, k6, p1, p2 = dist
    xd, yd = np.asarray(xd, dtype=np.float64), np.asarray(yd, dtype=np.float64)
    x, y = xd.copy(), yd.copy()
    for _ in range(iterations):
        r2 = x * x + y * y
        radial = (1 + r2 * (k1 + r2 * (k2 + r2 * k3))) / (1 + r2 * (k4 + r2 * (k5 + r2 * k6)))
        dx = 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        dy = p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
        x = (xd - dx) / radial
        y = (yd - dy) / radial
    h = 1e-7
    for _ in range(newton_steps):
        fx, fy = distort(x, y, dist)
        ex, ey = fx - xd, fy - yd
        ax, ay = distort(x + h, y, dist)
        bx, by = distort(x, y + h, dist)
        j11, j21, j12, j22 = (ax - fx) / h, (ay - fy) / h, (bx - fx) / h, (by - fy) / h
        det = j11 * j22 - j12 * j21
        det = np.where(np.abs(det) < 1e-12, 1e-12, det)
        x = x - (j22 * ex - j12 * ey) / det
        y = y - (-j21 * ex + j11 * ey) / det
    return x, y


_RAY_CACHE: dict = {}


def depth_rays(calib: DepthCalibration, width: int, height: int) -> np.ndarray:
    """Per-pixel undistorted rays (x/z, y/z, 1) of the depth image, (H, W, 3); cached per model."""
    key = (calib.norm, calib.dist, width, height)
    rays = _RAY_CACHE.get(key)
    if rays is None:
        fx, fy, cx, cy = calib.pixel_intrinsics(width, height)
        v, u = np.mgrid[0:height, 0:width].astype(np.float64)
        with np.errstate(all="ignore"):  # far outside the lens's valid radius the inversion may diverge
            x, y = undistort((u - cx) / fx, (v - cy) / fy, calib.dist)
            back_x, back_y = distort(x, y, calib.dist)
            ok = (np.abs(back_x * fx + cx - u) < 0.01) & (np.abs(back_y * fy + cy - v) < 0.01)
        # pixels whose ray could not be recovered get NaN and are treated as holes
        rays = np.stack([np.where(ok, x, np.nan), np.where(ok, y, np.nan), np.ones_like(x)], axis=-1)
        if len(_RAY_CACHE) > 8:
            _RAY_CACHE.clear()
        _RAY_CACHE[key] = rays
    return rays


_COLOUR_RAY_CACHE: dict = {}


def _colour_frame_rays(calib: DepthCalibration, width: int, height: int):
    """The depth pixels' rays turned into the colour frame (R @ ray), flat x, y, z; cached per model.

    A depth pixel's colour-frame point is then ``ray_c * z + t``: per frame only a multiply-add per
    measured pixel instead of a (n, 3) matmul (registration runs once per frame and model input).
    """
    key = (calib.norm, calib.dist, calib.R.tobytes(), np.asarray(calib.t).tobytes(), width, height)
    rays = _COLOUR_RAY_CACHE.get(key)
    if rays is None:
        rc = depth_rays(calib, width, height).reshape(-1, 3) @ np.asarray(calib.R, np.float64).T
        rays = tuple(np.ascontiguousarray(rc[:, k]) for k in range(3))
        if len(_COLOUR_RAY_CACHE) > 8:
            _COLOUR_RAY_CACHE.clear()
        _COLOUR_RAY_CACHE[key] = rays
    return rays


def register_depth_to_color(depth_mm: np.ndarray, k4a, color_intrinsics, color_size: tuple[int, int] | None = None,
                            splat: int = 1) -> np.ndarray:
    """Register a raw sensor-frame depth map to the colour camera.

    ``depth_mm``: (h, w) uint16 millimetres, 0 = no measurement. ``k4a``: a
    :class:`DepthCalibration` or the k4a JSON dict. ``color_intrinsics``: a
    :class:`ColorIntrinsics` or dict of the full-size colour image;
    ``color_size`` = (width, height) of the output (default: the colour image size),
    the intrinsics are rescaled to it. Each valid depth pixel becomes a 3D point,
    is moved into the colour frame and written to the pixel it projects to and its
    ``splat`` neighbours (fills the gaps between samples when the output is denser
    than the depth map), keeping the nearest point per pixel.

    Returns float32 (height, width) depth in **metres** along the colour camera's
    optical axis (pinhole frame); 0 = hole.
    """
    calib = k4a if isinstance(k4a, DepthCalibration) else parse_k4a(k4a)
    ci = _as_color(color_intrinsics)
    W, H = (ci.width, ci.height) if color_size is None else (int(color_size[0]), int(color_size[1]))
    if (W, H) != (ci.width, ci.height):
        ci = ci.scaled(W, H)
    depth = np.asarray(depth_mm)
    h, w = depth.shape
    ax, ay, az = _colour_frame_rays(calib, w, h)
    flat = depth.reshape(-1)
    idx = np.flatnonzero(flat)  # measured pixels; unrecoverable rays are NaN and fail every test below
    z_d = flat[idx] * 1e-3  # metres along the depth camera's axis
    t = calib.t
    z = az[idx] * z_d + t[2]  # colour-camera frame
    front = z > 1e-4
    idx, z_d, z = idx[front], z_d[front], z[front]
    u = np.rint(ci.fx * (ax[idx] * z_d + t[0]) / z + ci.cx).astype(np.int64)
    v = np.rint(ci.fy * (ay[idx] * z_d + t[1]) / z + ci.cy).astype(np.int64)
    # z-buffer (nearest sample wins) on the output grid grown by the splat radius, then the
    # splat as a (2 splat + 1)^2 minimum filter: the same minimum as writing every sample to all
    # its neighbours, with one scatter instead of (2 splat + 1)^2
    s = int(splat)
    Wp, Hp = W + 2 * s, H + 2 * s
    uu, vv = u + s, v + s
    ok = (uu >= 0) & (uu < Wp) & (vv >= 0) & (vv < Hp)
    near = np.full(Hp * Wp, np.inf, dtype=np.float64)
    np.minimum.at(near, vv[ok] * Wp + uu[ok], z[ok])
    near = near.reshape(Hp, Wp)
    out = np.full((H, W), np.inf, dtype=np.float64)
    for dv in range(2 * s + 1):
        for du in range(2 * s + 1):
            np.minimum(out, near[dv:dv + H, du:du + W], out=out)
    out[~np.isfinite(out)] = 0.0
    return out.astype(np.float32)
