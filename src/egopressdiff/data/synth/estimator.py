"""The estimated-mesh track: the hand mesh a monocular hand-mesh estimator would give per frame.

Stored beside the annotation as ``vertices_estimated`` (778*3) and
``joint_position_estimated`` (21*3) in annotation.parquet, world frame like ``vertices``;
null on frames where the estimator fails. It is what a user without the annotation rig
has (a HaMeR-style estimator run on the ego video), so models can be trained and
compared on it as well as on the paper's annotated mesh.

Error model, after published monocular estimators: Procrustes-aligned joint errors of
about 5.5-7.7 mm on FreiHAND / HO-3D (HaMeR, MaskHand), but camera-space errors of tens
of millimetres, because the depth of a hand along the camera ray is poorly determined
from one image (e.g. 35.8 mm camera-space MPJPE on FreiHAND for a method that estimates
metric scale explicitly); per-frame outputs jitter and drift, and hands hidden by
themselves or leaving the view give much larger errors or no detection. Per sequence
(own RNG), relative to the physical hand:

* **articulation**: flexion errors of :data:`FLEX_DEG` per joint, abduction
  :data:`ABDUCT_DEG`, global rotation :data:`ROT_DEG` per axis about the wrist, and a
  hand-shape error (scale :data:`SHAPE_SCALE`, other shape factors
  :data:`SHAPE_OTHER`, constant over the sequence): a root-relative per-joint error of
  several mm (:data:`DOCUMENTED_ROOT_RELATIVE_MPJPE_MM`, 9.5 mm; about 20 mm in the camera
  frame with the translation error);
* **translation**: along the ray from the camera to the wrist :data:`RAY_MM`,
  perpendicular to it :data:`LATERAL_MM` per axis (ratio :data:`DOCUMENTED_RAY_LATERAL_RATIO`);
* **time**: every error is an AR(1) process with lag-1 correlation :data:`RHO` (slow
  drift), plus white per-frame jitter (:data:`JITTER_RAY_MM`, :data:`JITTER_LATERAL_MM`);
  the lag-1 autocorrelation of the along-ray wrist error is about
  :data:`DOCUMENTED_RAY_AUTOCORRELATION`;
* **occlusion**: with ``occlusion`` in [0, 1] (the share of the hand the ego camera
  does not see beyond its usual self-occlusion, or a camera-tilt event) every error
  grows by ``1 + OCCLUSION_GAIN · occlusion``, and the estimator fails (null) with
  probability ``FAIL_OCCLUDED · occlusion`` (plus :data:`FAIL_BASE` on any frame).

The statistics are tested (tests/test_estimated_track.py).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from egopressdiff.data.hand import HandModel, HandPose, HandShape, build_hand
from egopressdiff.data.synth.annotation import ARProcess

RHO = 0.9
FLEX_DEG = 5.0
ABDUCT_DEG = 3.0
ROT_DEG = 3.0
SHAPE_SCALE = 0.03
SHAPE_OTHER = 0.02
RAY_MM = 20.0
LATERAL_MM = 3.0
JITTER_RAY_MM = 4.0
JITTER_LATERAL_MM = 1.0
OCCLUSION_GAIN = 2.0
FAIL_OCCLUDED = 0.5
FAIL_BASE = 0.005
# what these give on unoccluded frames (the tests measure them)
DOCUMENTED_ROOT_RELATIVE_MPJPE_MM = 9.5  # mean over the 20 non-wrist joints, wrist-aligned
DOCUMENTED_RAY_LATERAL_RATIO = float(np.hypot(RAY_MM, JITTER_RAY_MM) / np.hypot(LATERAL_MM, JITTER_LATERAL_MM))  # 6.4
DOCUMENTED_RAY_AUTOCORRELATION = RHO * RAY_MM**2 / (RAY_MM**2 + JITTER_RAY_MM**2)  # 0.87


class MeshEstimator:
    """One sequence's monocular mesh estimates, produced frame by frame in order (module doc)."""

    def __init__(self, hand: HandModel, rng: np.random.Generator):
        self.rng = rng
        s = hand.shape
        g = rng.normal(size=4)
        shape = HandShape(scale=s.scale * (1 + SHAPE_SCALE * g[0]), palm_width=s.palm_width * (1 + SHAPE_OTHER * g[1]),
                          finger_length=s.finger_length * (1 + SHAPE_OTHER * g[2]),
                          thickness=s.thickness * (1 + SHAPE_OTHER * g[3]))
        self.hand = build_hand(hand.side, shape)
        self.flex = ARProcess(rng, np.full((5, 3), np.deg2rad(FLEX_DEG)), RHO)
        self.abduct = ARProcess(rng, np.full(5, np.deg2rad(ABDUCT_DEG)), RHO)
        self.rot = ARProcess(rng, np.full(3, np.deg2rad(ROT_DEG)), RHO)
        self.transl = ARProcess(rng, np.array([RAY_MM, LATERAL_MM, LATERAL_MM]) * 1e-3, RHO)
        self.jitter = np.array([JITTER_RAY_MM, JITTER_LATERAL_MM, JITTER_LATERAL_MM]) * 1e-3

    def estimate(self, pose: HandPose, camera_centre: np.ndarray, occlusion: float = 0.0):
        """(vertices (778, 3), joints (21, 3)) world, or None when the estimator fails on this frame.

        ``pose``: the physical hand's pose (world); ``camera_centre``: the ego camera's centre
        (world); ``occlusion`` in [0, 1]. Advances the error processes by one frame.
        """
        occ = float(np.clip(occlusion, 0.0, 1.0))
        gain = 1.0 + OCCLUSION_GAIN * occ
        est = pose.copy()
        est.flex = est.flex + gain * self.flex.step()
        est.abduct = est.abduct + gain * self.abduct.step()
        est.rot = Rotation.from_rotvec(gain * self.rot.step()).as_matrix() @ est.rot
        local = gain * (self.transl.step() + self.jitter * self.rng.normal(size=3))  # (ray, lateral 1, lateral 2)
        fail = self.rng.uniform() < FAIL_BASE + FAIL_OCCLUDED * occ
        ray = np.asarray(pose.transl, np.float64) - np.asarray(camera_centre, np.float64)
        ray /= max(np.linalg.norm(ray), 1e-9)
        lat1 = np.cross(ray, [0.0, 0.0, 1.0])
        if np.linalg.norm(lat1) < 1e-6:
            lat1 = np.cross(ray, [1.0, 0.0, 0.0])
        lat1 /= np.linalg.norm(lat1)
        lat2 = np.cross(ray, lat1)
        est.transl = np.asarray(est.transl, np.float64) + local[0] * ray + local[1] * lat1 + local[2] * lat2
        if fail:
            return None
        return self.hand.pose(est)
