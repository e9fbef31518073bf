"""The contact solver: poses the hand so every contact group meets its target.

The hand is posed kinematically and driven by a force controller: for each contact
group (palm, fingers, fingertips) the controller finds the penetration depth into the
rigid pad (plane z = 0) that carries the group's target force under the soft-tissue
law (:class:`egopressdiff.data.physics.SoftTissue`) and reaches it by translating the
hand and flexing the fingers (a few Newton steps of inverse kinematics). Groups with a
gap target (approach, lift, hovers) have their lowest point that far above the pad.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from egopressdiff.data.hand import PART_PALM, HandModel, rot_x, rot_y, rot_z
from egopressdiff.data.physics import SoftTissue, depth_for_force

if TYPE_CHECKING:
    from egopressdiff.data.synth.profiles import FrameTarget

# local (fingers +y, palm normal +z, thumb +x) -> world (fingers -x, palm towards the pad +z):
# the participant sits on the +x side of the pad, so the camera looks towards -x.
R_LOCAL_TO_WORLD = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])


class ContactSolver:
    """Poses the hand so each contact group meets its target (gap above the pad or force)."""

    patterns = (np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.6]))  # knuckle flexion, PIP/DIP curl
    flex_limits = (np.deg2rad(-30.0), np.deg2rad(110.0))

    def __init__(self, hand: HandModel, tissue: SoftTissue, stiffness: np.ndarray | float = 1.0):
        self.hand = hand
        self.tissue = tissue
        self.stiffness = np.broadcast_to(np.asarray(stiffness, dtype=np.float64), (hand.num_vertices,))
        self._corr = np.zeros((5, 3))
        part, seg, tip, palmar = hand.vertex_part, hand.vertex_segment, hand.vertex_tip, hand.vertex_palmar
        # the palm group includes the thumb's thenar segment (its metacarpal, palmar side)
        thenar = (part == 1) & (seg <= 1) & palmar
        self.groups = {"palm": np.nonzero(((part == PART_PALM) & palmar) | thenar)[0]}
        for f in range(5):
            self.groups[f"tip{f}"] = np.nonzero((part == 1 + f) & tip)[0]
            self.groups[f"finger{f}"] = np.nonzero((part == 1 + f) & (seg >= 1) & palmar)[0]
        self.min_clearance = 0.002  # hover: no vertex closer to the pad than this

    def world_rotation(self, yaw: float, pitch: float, roll: float) -> np.ndarray:
        # roll > 0 lowers the thumb side (the left hand's thumb is on local -x)
        r = -roll if self.hand.side == "right" else roll
        return rot_z(yaw) @ R_LOCAL_TO_WORLD @ rot_x(pitch) @ rot_y(r)

    def solve(self, tgt: FrameTarget, primary: str, hover: bool, iterations: int = 5):
        """-> (vertices (778, 3) world, joints (21, 3) world, pose) meeting the targets.

        Unknowns: the hand's height and, for every finger with a contact group, two flexion
        patterns (knuckle flexion, PIP/DIP curl). Damped Gauss-Newton (Levenberg-Marquardt)
        steps bring every group's lowest point to its level (a gap above the pad, or the
        depth that carries its target force). Flexion corrections are warm-started from the
        previous call (sequences are solved in frame order), so one or two iterations
        usually suffice. The primary group's centroid is then placed at the anchor (x, y).
        """
        hand = self.hand
        pose = tgt.pose.copy()
        pose.rot = self.world_rotation(tgt.yaw, tgt.pitch, tgt.roll)
        pose.transl = np.zeros(3)
        groups = list(tgt.level)
        gfinger = [int(g[-1]) if g[:-1] in ("tip", "finger") else -1 for g in groups]
        fingers = sorted({f for f in gfinger if f >= 0})
        col = {f: 1 + 2 * i for i, f in enumerate(fingers)}
        n = 1 + 2 * len(fingers)
        base_flex = pose.flex.copy()
        corr = self._corr.copy()
        pose.flex = np.clip(base_flex + corr, *self.flex_limits)
        v, j = hand.pose(pose)
        areas = hand.vertex_areas(v)
        eps = 0.03
        damp = np.full(n, 2e-4)
        damp[0] = 0.0
        for it in range(iterations + 1):
            b = np.array([self._level(v, areas, g, tgt.level[g]) - float(v[self.groups[g], 2].max())
                          for g in groups])
            tz = float(b.mean())
            if not fingers or it == iterations or np.abs(b - tz).max() < 2e-4:
                break
            A = np.zeros((len(groups), n))
            A[:, 0] = 1.0
            zlow = np.array([float(v[self.groups[g], 2].max()) for g in groups])
            for k, pattern in enumerate(self.patterns):
                p2 = pose.copy()
                for f in fingers:
                    p2.flex[f] += eps * pattern
                v2, _ = hand.pose(p2)
                for gi, g in enumerate(groups):
                    if gfinger[gi] >= 0:
                        A[gi, col[gfinger[gi]] + k] = (float(v2[self.groups[g], 2].max()) - zlow[gi]) / eps
            x = np.linalg.solve(A.T @ A + np.diag(damp) + 1e-12 * np.eye(n), A.T @ b)
            for f in fingers:
                step = np.clip(x[col[f]:col[f] + 2], -0.4, 0.4)
                corr[f] += step[0] * self.patterns[0] + step[1] * self.patterns[1]
            corr = np.clip(base_flex + corr, *self.flex_limits) - base_flex
            pose.flex = base_flex + corr
            v, j = hand.pose(pose)
        self._corr = corr
        # horizontal placement: the primary group's centroid at the anchor
        cxy = v[self.groups[primary], :2].mean(axis=0)
        shift = np.array([tgt.anchor_xy[0] - cxy[0], tgt.anchor_xy[1] - cxy[1], tz])
        v = v + shift
        j = j + shift
        if hover:  # never touch: keep every vertex above the pad
            zmax = float(v[:, 2].max())
            if zmax > -self.min_clearance:
                up = np.array([0.0, 0.0, zmax + self.min_clearance])
                v, j, shift = v - up, j - up, shift - up
        pose.transl = pose.transl + shift
        return v, j, pose

    def _level(self, v, areas, g, target) -> float:
        kind, val = target
        if kind == "gap":
            return -float(val)
        idx = self.groups[g]
        z = v[idx, 2]
        heights = z.max() - z
        return depth_for_force(heights, areas[idx], float(val), self.tissue, factor=self.stiffness[idx])

