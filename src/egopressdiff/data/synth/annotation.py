"""The stored annotation: what an annotator's fit of the hand holds, not the simulation's state.

The generator's physics poses a rigid, kinematic hand that sinks into the pad; that
penetration is the soft-tissue state that makes the pressure, and it stays internal.
What is stored is what the real data's annotation pipeline would produce for the same
hand: a MANO-style fit, ``vertices = LBS(betas, full_pose) + transl + displacement ·
normals``, optimised against the images and the measured pressure. The model, per frame:

1. **The fitted pose.** The annotator recovers the physical pose up to a small,
   smooth residual that has nothing to do with force: a translation offset
   (:data:`RESIDUAL_TRANSL_MM` per axis), per-joint flexion and abduction errors
   (:data:`RESIDUAL_FLEX_DEG`, :data:`RESIDUAL_ABDUCT_DEG`) and a global rotation error
   (:data:`RESIDUAL_ROT_DEG` per axis about the wrist), each an AR(1) process over the
   frames (correlation :data:`RESIDUAL_RHO` from one frame to the next), clipped at
   2.5 sigma. ``full_pose``, ``transl`` and ``joint_position`` are this fit's.
2. **The contact patches rest on the pad.** Every vertex under measured pressure
   (above :data:`MEASURED_KPA`, on skin within :data:`PULL_RANGE_M` of the pad) is
   pulled onto the pad plane: its ``displacement``
   along the fit's ``normals`` cancels the physical penetration (or, at the rim of
   a patch, the small gap), so the flattening of the skin is carried in
   ``displacement``, as in the real data, and the patch lies on ``z = 0`` up to the
   fit's residual. Penetration no longer grows with force.
3. **The refinement's own residual.** ``displacement`` also holds a smooth field
   along the normals on every vertex: a few random smooth modes of the mesh,
   :data:`RESIDUAL_NORMAL_MM` RMS, AR(1) over frames, plus the fitted shape's
   mismatch with the person's (:data:`RESIDUAL_SHAPE_MM` RMS, the same on every frame).

Together the stored surface is off the true (flattened) one by about 1.3 mm RMS (0.9 mm
in height; more at the fingertips, where joint errors add up) and a few mm at most, on
and off the contact patches alike, uncorrelated with force (tests/test_annotation.py).
``Imperfections.annotation_residual`` scales every residual (0: an exact fit, the
contact patches exactly on the pad). ``normals`` are the fit's LBS normals (before the
displacement), so the format's identity holds for the stored columns.

This is also the surface the cameras see (:func:`flattened_surface`, without the fit's
residual): the skin flattened against the pad rather than passing through it.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from egopressdiff.data.hand import HandModel, HandPose

MEASURED_KPA = 0.5  # pressure the pad measures (above its noise floor): those vertices are pulled onto the plane
RESIDUAL_RHO = 0.9  # AR(1) correlation of every residual from one frame to the next
RESIDUAL_TRANSL_MM = 0.5
RESIDUAL_FLEX_DEG = 0.6
RESIDUAL_ABDUCT_DEG = 0.5
RESIDUAL_ROT_DEG = 0.2
RESIDUAL_NORMAL_MM = 0.4
RESIDUAL_SHAPE_MM = 0.6
RESIDUAL_MODES = 6  # smooth modes of the normal residual
MAX_DISPLACEMENT_M = 0.008  # |displacement| of the real data reaches about 8 mm
PULL_RANGE_M = 0.002  # ... and lie within this of the pad
MIN_NORMAL_Z = 0.1  # flattening along a normal this oblique or worse is capped (side of a finger)
RENDER_LIFT_M = 0.0002  # the flattened skin is drawn this far above the pad (no z-fighting with it)


class ARProcess:
    """Stationary AR(1) noise of given per-component sigma, clipped at ``clip`` sigma."""

    def __init__(self, rng: np.random.Generator, sigma, rho: float = RESIDUAL_RHO, clip: float = 2.5):
        self.rng = rng
        self.sigma = np.asarray(sigma, dtype=np.float64)
        self.rho = float(rho)
        self.clip = float(clip)
        self.state = rng.normal(size=self.sigma.shape)

    def step(self) -> np.ndarray:
        self.state = self.rho * self.state + np.sqrt(1.0 - self.rho**2) * self.rng.normal(size=self.sigma.shape)
        return self.sigma * np.clip(self.state, -self.clip, self.clip)


def smooth_modes(hand: HandModel, rng: np.random.Generator, count: int, iterations: int = 40) -> np.ndarray:
    """(count, V) smooth random fields over the mesh (neighbour averaging of white noise), unit RMS."""
    f = rng.normal(size=(hand.num_vertices, count))
    for _ in range(iterations):
        f = hand.neighbour_mean @ f
    f -= f.mean(axis=0)
    return (f / np.sqrt((f**2).mean(axis=0))).T


def flattened_surface(vertices: np.ndarray, lift: float = 0.0) -> np.ndarray:
    """The physical skin surface: the kinematic hand with what passes through the pad flattened onto it."""
    v = np.array(vertices, dtype=np.float64, copy=True)
    v[:, 2] = np.minimum(v[:, 2], -lift)
    return v


class AnnotatorFit:
    """One sequence's annotation residuals (own RNG), applied frame by frame in order (module doc)."""

    def __init__(self, hand: HandModel, rng: np.random.Generator, scale: float = 1.0):
        self.hand = hand
        self.scale = float(scale)
        s = self.scale
        self.transl = ARProcess(rng, np.full(3, RESIDUAL_TRANSL_MM * 1e-3 * s))
        self.flex = ARProcess(rng, np.full((5, 3), np.deg2rad(RESIDUAL_FLEX_DEG) * s))
        self.abduct = ARProcess(rng, np.full(5, np.deg2rad(RESIDUAL_ABDUCT_DEG) * s))
        self.rot = ARProcess(rng, np.full(3, np.deg2rad(RESIDUAL_ROT_DEG) * s))
        self.modes = smooth_modes(hand, rng, RESIDUAL_MODES)
        self.normal = ARProcess(rng, np.full(RESIDUAL_MODES, RESIDUAL_NORMAL_MM * 1e-3 * s / np.sqrt(RESIDUAL_MODES)))
        # the fitted hand's shape is not the person's: a smooth surface offset, the same on every frame
        shape_modes = smooth_modes(hand, rng, RESIDUAL_MODES, iterations=20)
        self.shape = (RESIDUAL_SHAPE_MM * 1e-3 * s / np.sqrt(RESIDUAL_MODES)) * (rng.normal(size=RESIDUAL_MODES) @ shape_modes)

    def fitted_pose(self, pose: HandPose) -> HandPose:
        """The annotator's pose of the physical ``pose`` (advances the residuals by one frame)."""
        fit = pose.copy()
        fit.flex = fit.flex + self.flex.step()
        fit.abduct = fit.abduct + self.abduct.step()
        fit.rot = Rotation.from_rotvec(self.rot.step()).as_matrix() @ fit.rot  # about the wrist
        fit.transl = fit.transl + self.transl.step()
        return fit

    def fit(self, pose: HandPose, vertices_phys: np.ndarray, vertex_kpa: np.ndarray) -> dict:
        """Annotation arrays of one frame (float32) from the physical pose, its vertices and pressure."""
        hand = self.hand
        fit = self.fitted_pose(pose)
        v_fit, j_fit = hand.pose(fit)
        normals = hand.vertex_normals(v_fit)
        disp = self.normal.step() @ self.modes + self.shape
        # under measured pressure: pressure above the pad's floor on skin at the pad (not skin the
        # tissue model's smoothing reached higher up)
        measured = (np.asarray(vertex_kpa) > MEASURED_KPA) & (vertices_phys[:, 2] > -PULL_RANGE_M)
        if measured.any():
            # pull the patch onto the plane: cancel the physical penetration (or rim gap) along the normal
            nz = np.maximum(normals[measured, 2], MIN_NORMAL_Z)
            disp[measured] += -vertices_phys[measured, 2] / nz
        disp = np.clip(disp, -MAX_DISPLACEMENT_M, MAX_DISPLACEMENT_M)
        verts = v_fit + disp[:, None] * normals
        return {
            "vertices": verts.astype(np.float32),
            "joint_position": j_fit.astype(np.float32),
            "full_pose": fit.full_pose(),
            "transl": j_fit[0].astype(np.float32),
            "normals": normals.astype(np.float32),
            "displacement": disp.astype(np.float32),
        }
