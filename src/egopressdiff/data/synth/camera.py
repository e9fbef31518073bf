"""The egocentric camera rig: colour camera, separate depth sensor, head motion, tilt events.

An egocentric camera 35-50 cm from the hand looks down and forward at the pad. Head
motion is slow drifts plus per-frame jitter. Camera-tilt events (an imperfection)
bring the head low behind the hand so that the hand hides its own contact region.
The depth sensor has its own intrinsics and a square image, 32 mm and 6 degrees off
the colour camera; the k4a calibration JSON describes it so the reader's registration
maps depth onto the colour image.
"""

from __future__ import annotations

import numpy as np

from egopressdiff.data.hand import rot_x
from egopressdiff.data.raster import PinholeCamera
from egopressdiff.data.synth.imperfections import Imperfections
from egopressdiff.data.synth.profiles import SmoothNoise, smoothstep

DEFAULT_IMAGE_SIZE = (320, 240)
DEPTH_TO_COLOR_R = rot_x(np.deg2rad(-6.0))  # the depth sensor is tilted 6 degrees against the colour camera
DEPTH_TO_COLOR_T = np.array([-0.032, -0.002, 0.004])  # depth-sensor centre in the colour frame (m)
COLOR_HFOV_DEG = 55.0
DEPTH_HFOV_DEG = 75.0


def color_camera(image_size=DEFAULT_IMAGE_SIZE) -> PinholeCamera:
    w, h = int(image_size[0]), int(image_size[1])
    return PinholeCamera.from_fov(w, h, COLOR_HFOV_DEG)


def depth_camera(image_size=DEFAULT_IMAGE_SIZE) -> PinholeCamera:
    """Square depth image (0.8 x the colour width, multiple of 16; 256 for the default 320 x 240)."""
    side = max(64, int(round(0.8 * int(image_size[0]) / 16.0)) * 16)
    return PinholeCamera.from_fov(side, side, DEPTH_HFOV_DEG)


def look_at(eye: np.ndarray, target: np.ndarray, roll: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """World->camera (R, T) of an OpenCV camera at ``eye`` looking at ``target``; image 'down' is the
    projection of world down (+z), then rolled by ``roll`` radians about the optical axis."""
    z = np.asarray(target, dtype=np.float64) - eye
    z /= np.linalg.norm(z)
    down = np.array([0.0, 0.0, 1.0])
    y = down - (down @ z) * z
    ny = np.linalg.norm(y)
    y = y / ny if ny > 1e-9 else np.array([1.0, 0.0, 0.0])
    x = np.cross(y, z)
    if roll:
        c, s = np.cos(roll), np.sin(roll)
        x, y = c * x + s * y, -s * x + c * y
    R = np.stack([x, y, z])
    return R, -R @ eye


class CameraRig:
    """Head-mounted ego camera: a base viewpoint per sequence, slow head drifts, per-frame jitter,
    and (optionally) camera-tilt events that bring the head low behind the hand."""

    def __init__(self, rng: np.random.Generator, frames: int, target: np.ndarray, hand_yaw: float,
                 imperf: Imperfections, n_pre: int, side: str = "right"):
        self.frames = frames
        self.target = np.asarray(target, dtype=np.float64)
        self.dist = rng.uniform(0.38, 0.50)
        self.elev = np.deg2rad(rng.uniform(52.0, 70.0))
        # the head is at the body's midline: to the left of a right hand (+y), right of a left one
        toward_midline = np.deg2rad(rng.uniform(3.0, 18.0)) * (1.0 if side == "right" else -1.0)
        self.azim = hand_yaw + toward_midline
        j = imperf.camera_jitter
        self.drift = SmoothNoise(rng, 6, min_period=15.0, max_period=70.0)
        self.drift_amp = np.array([np.deg2rad(4.0), np.deg2rad(3.0), 0.015, 0.012, 0.012, np.deg2rad(3.0)]) * j
        self.jitter = rng.normal(0.0, 1.0, size=(frames, 6)) * np.array(
            [np.deg2rad(0.25), np.deg2rad(0.25), 0.001, 0.0008, 0.0008, np.deg2rad(0.2)]) * j
        # camera-tilt occlusion events
        self.occ = np.zeros(frames)
        if imperf.self_occlusion > 0 and rng.uniform() < imperf.self_occlusion and frames >= 8:
            n_events = 1 if frames < 40 else int(rng.integers(1, 3))
            for _ in range(n_events):
                length = max(4, int(frames * rng.uniform(0.25, 0.35)))
                start = int(rng.integers(n_pre, max(n_pre + 1, frames - length)))
                ramp = max(2, length // 4)
                t = np.arange(frames)
                up = smoothstep((t - start) / ramp)
                down = 1.0 - smoothstep((t - (start + length - ramp)) / ramp)
                self.occ = np.maximum(self.occ, np.minimum(up, down))
        self.occ_elev = np.deg2rad(rng.uniform(22.0, 30.0))
        self.occ_azim = np.deg2rad(rng.uniform(-10.0, 10.0))

    def pose(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        d = self.drift(float(i)) * self.drift_amp + self.jitter[i]
        occ = self.occ[i]
        elev = self.elev + d[1] - occ * (self.elev - self.occ_elev)
        azim = self.azim + d[0] + occ * self.occ_azim
        dist = self.dist + d[2] - occ * 0.03
        tgt = self.target + np.array([d[3], d[4], 0.0])
        eye = tgt + dist * np.array([np.cos(elev) * np.cos(azim), np.cos(elev) * np.sin(azim), -np.sin(elev)])
        return look_at(eye, tgt, roll=d[5])


def depth_pose(R: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World->depth-sensor pose from the colour camera's (P_c = R_dc P_d + t_dc)."""
    return DEPTH_TO_COLOR_R.T @ R, DEPTH_TO_COLOR_R.T @ (T - DEPTH_TO_COLOR_T)

