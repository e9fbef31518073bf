"""What a gesture asks of the hand over time: approach, touch, force ramp, hold, release, lift.

Each sequence repeats its gesture (up to the name's ``x5`` / ``3x``) with smooth
(smoothstep) profiles: the hand approaches from a few centimetres, comes to rest on
the pad under its own light load (0.2-0.8 N, for 4-10 % of each cycle), the force
ramps up, holds (with a small tremor), ramps down, the hand rests again, and lifts;
drags move in contact. Touching and pressing look alike in the geometry: the ramp
and its context over time tell them apart. The first and last few frames (pre/post contact, ~6 %) are not annotated,
as in the real data. :class:`GestureTimeline` turns this into per-frame targets
(:class:`FrameTarget`): the articulation, the hand's orientation and anchor on the
pad, and for every contact group either a gap above the pad or a force in newtons.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from egopressdiff.data.hand import HandModel, HandPose, rot_z
from egopressdiff.data.physics import SENSE_HALF_X, SENSE_HALF_Y, SoftTissue
from egopressdiff.data.synth.gestures import _POSTURES, _spec
from egopressdiff.data.synth.solver import ContactSolver


def smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


class SmoothNoise:
    """Deterministic smooth random signal in [-1, 1]^dims over time (sum of sinusoids)."""

    def __init__(self, rng: np.random.Generator, dims: int, n_waves: int = 3, min_period: float = 12.0,
                 max_period: float = 60.0):
        self.freq = 2 * np.pi / rng.uniform(min_period, max_period, size=(n_waves, dims))
        self.phase = rng.uniform(0, 2 * np.pi, size=(n_waves, dims))
        amp = rng.uniform(0.5, 1.0, size=(n_waves, dims))
        self.amp = amp / amp.sum(axis=0, keepdims=True)

    def __call__(self, t: float) -> np.ndarray:
        return (self.amp * np.sin(self.freq * t + self.phase)).sum(axis=0)


@dataclass
class FrameTarget:
    """What the gesture asks of the hand at one frame."""

    pose: HandPose  # articulation (rot/transl set by the solver)
    yaw: float  # world yaw of the hand (rad)
    pitch: float
    roll: float
    anchor_xy: np.ndarray  # where the primary group's centroid should be (world x, y)
    level: dict  # group -> target: ("gap", metres above the pad) or ("force", newtons)
    annotated: bool
    phase: str


class GestureTimeline:
    """Per-frame targets of one sequence (deterministic from its RNG)."""

    def __init__(self, gesture: str, side: str, frames: int, rng: np.random.Generator,
                 hand: HandModel | None = None):
        self.gesture = gesture
        self.side = side
        self.frames = frames
        self.spec = _spec(gesture)
        sp = self.spec
        post = _POSTURES[sp.posture]
        self.posture = post
        self.rng = rng
        self.n_pre = max(1, int(round(0.06 * frames))) if frames >= 6 else 0
        self.n_post = self.n_pre
        self.n_ann = frames - self.n_pre - self.n_post
        if sp.motion == "onebyone":
            self.cycles = 1
            self.presses = int(np.clip(self.n_ann // 6, 1, 4 * sp.reps))
        else:
            self.cycles = int(np.clip(self.n_ann // 12, 1, sp.reps))
            self.presses = self.cycles
        self.peak_force = float(rng.uniform(*sp.force))
        self.cycle_scale = rng.uniform(0.85, 1.15, size=max(self.presses, 1))
        self.lift = float(rng.uniform(0.035, 0.060))
        self.hover_gap = float(rng.uniform(0.003, 0.008))
        # touching before and after pressing: resting on the pad, no force, for this share of each cycle
        self.touch_dwell = float(rng.uniform(0.04, 0.10))
        self.touch_force = float(rng.uniform(0.2, 0.8))
        self.rest_force = float(rng.uniform(0.3, 0.6))  # one-by-one: resting fingertips
        # posture variation
        self.flex0 = np.deg2rad(np.asarray(post["flex"], dtype=np.float64) + rng.normal(0, 3.0, (5, 3)))
        self.abduct0 = np.deg2rad(np.asarray(post["abduct"], dtype=np.float64) + rng.normal(0, 2.0, 5))
        self.twist0 = np.deg2rad(np.asarray(post["twist"], dtype=np.float64))
        self.pitch0 = np.deg2rad(post["pitch"] + rng.normal(0, 3.0))
        self.roll0 = np.deg2rad(post["roll"] + rng.normal(0, 3.0))
        self.yaw0 = np.deg2rad(rng.normal(0, 10.0))
        self.noise_pose = SmoothNoise(rng, 5 * 3 + 3)
        self.noise_xy = SmoothNoise(rng, 2)
        self.tremor = SmoothNoise(rng, 1, min_period=3.0, max_period=7.0)
        self.anchor0 = self._anchor(rng)
        self.drag = self._drag_path(rng)
        if hand is not None:
            self.place(hand)

    # -- placement ------------------------------------------------------------------
    def _anchor(self, rng) -> np.ndarray:
        sp = self.spec
        if sp.primary == "palm":  # palm centroid; the fingers reach ~14 cm towards -x
            base = np.array([0.042, -0.012 if self.side == "right" else 0.012])
            return base + rng.uniform([-0.008, -0.010], [0.008, 0.010])
        elif sp.posture in ("index",):
            base = np.array([-0.030, 0.0])
        elif sp.posture in ("pinch", "zoom"):
            base = np.array([-0.010, 0.0])
        else:  # fingertips of several fingers; primary = middle tip
            base = np.array([-0.020, 0.0])
        return base + rng.uniform([-0.015, -0.015], [0.015, 0.015])

    def place(self, hand: HandModel, margin: float = 0.006) -> None:
        """Clamp the anchor so every contact group (in the base posture, over the whole drag)
        stays inside the pad's sensing area with ``margin``."""
        sp = self.spec
        solver = ContactSolver(hand, SoftTissue())
        t = self.target(self.n_pre)
        pose = t.pose.copy()
        pose.rot = solver.world_rotation(t.yaw, t.pitch, t.roll)
        v, _ = hand.pose(pose)
        c = v[solver.groups[sp.primary], :2].mean(axis=0)
        pts = np.concatenate([v[solver.groups[g], :2] for g in sp.groups]) - c
        clouds = [pts]
        if self.drag is not None:
            kind = self.drag[0]
            if kind == "line":
                clouds.append(pts + self.drag[1])
            elif kind == "rotate":
                for a in np.linspace(0.0, self.drag[1], 5)[1:]:
                    clouds.append(pts @ rot_z(a)[:2, :2].T)
            elif kind == "draw":
                amp, ph0 = self.drag[1], self.drag[2]
                for prog in np.linspace(0.0, 1.0, 9)[1:]:
                    s = 2.0 * np.pi * prog
                    clouds.append(pts + amp * np.array([0.5 * (np.sin(1.5 * s + ph0) - np.sin(ph0)),
                                                        -2.0 * prog + 0.4 * np.sin(2.0 * s)]))
            elif kind == "zoom":
                clouds.append(pts * 1.25)
        allp = np.concatenate(clouds)
        lo, hi = allp.min(axis=0), allp.max(axis=0)
        half = np.array([SENSE_HALF_X - margin, SENSE_HALF_Y - margin])
        amin, amax = -half - lo, half - hi
        self.anchor0 = np.where(amin <= amax, np.clip(self.anchor0, amin, amax), 0.5 * (amin + amax))

    def _drag_path(self, rng):
        m = self.spec.motion
        if m in ("pull", "push"):
            length = rng.uniform(0.025, 0.040) * (1.0 if m == "pull" else -1.0)
            return ("line", np.array([length, rng.normal(0, 0.004)]))
        if m in ("rotate-left", "rotate-right"):
            ang = np.deg2rad(rng.uniform(20, 35)) * (1.0 if m == "rotate-left" else -1.0)
            return ("rotate", ang)
        if m == "draw":
            return ("draw", rng.uniform(0.010, 0.018), rng.uniform(0, 2 * np.pi))
        if m == "zoom":
            return ("zoom", np.deg2rad(rng.uniform(12, 20)))
        return None

    # -- timeline ----------------------------------------------------------------------------
    def _cycle_profile(self, phi: float) -> tuple[float, float, float]:
        """(gap fraction 1..0, force envelope 0..1, drag progress 0..1) within one press cycle.

        Approach, touch (resting on the pad without pressing, for ``touch_dwell`` of the
        cycle), ramp, hold, release, touch again, lift.
        """
        a0, r1 = 0.20, 0.80  # approach ends, lift starts
        dw, ramp = self.touch_dwell, 0.12
        t0, a1 = a0 + dw, a0 + dw + ramp  # ramp starts, ramp ends
        r0, t1 = r1 - dw - ramp, r1 - dw  # release starts, release ends
        gap = 1.0 - smoothstep(phi / a0) if phi < a0 else (smoothstep((phi - r1) / (1 - r1)) if phi > r1 else 0.0)
        if phi < t0 or phi > t1:
            env = 0.0
        elif phi < a1:
            env = smoothstep((phi - t0) / ramp)
        elif phi > r0:
            env = 1.0 - smoothstep((phi - r0) / ramp)
        else:
            env = 1.0
        # drag: moves during the hold, returns while in the air (lift), continuous across cycles
        if phi <= a1:
            prog = 0.0
        elif phi <= r0:
            prog = float(smoothstep((phi - a1) / (r0 - a1)))
        elif phi <= r1:
            prog = 1.0
        else:
            prog = 1.0 - float(smoothstep((phi - r1) / (1 - r1)))
        return gap, env, prog

    def target(self, i: int) -> FrameTarget:
        """Targets for frame index ``i`` (0-based)."""
        sp = self.spec
        t = float(i)
        pose = HandPose(flex=self.flex0.copy(), abduct=self.abduct0.copy(), twist=self.twist0.copy())
        nz = self.noise_pose(t)
        pose.flex += np.deg2rad(2.5) * nz[:15].reshape(5, 3)
        pitch = self.pitch0 + np.deg2rad(2.0) * nz[15]
        roll = self.roll0 + np.deg2rad(2.0) * nz[16]
        yaw = self.yaw0 + np.deg2rad(2.0) * nz[17]
        anchor = self.anchor0 + 0.002 * self.noise_xy(t)
        annotated = self.n_pre <= i < self.frames - self.n_post
        level: dict = {}
        gap_frac, env, prog = 1.0, 0.0, 0.0
        press_idx = 0
        if i < self.n_pre:
            phase = "pre"
            gap = self.lift + 0.02 * (1.0 - (i + 1) / max(self.n_pre, 1))
        elif i >= self.frames - self.n_post:
            phase = "post"
            gap = self.lift + 0.02 * ((i - (self.frames - self.n_post) + 1) / max(self.n_post, 1))
        else:
            k = i - self.n_pre
            if sp.motion == "onebyone":
                u = (k + 0.5) / self.n_ann
                edge = 0.12
                gap_frac = 1.0 - smoothstep(u / edge) if u < edge else (smoothstep((u - 1 + edge) / edge)
                                                                         if u > 1 - edge else 0.0)
                gap = self.lift * gap_frac
                phase = "contact" if gap_frac == 0.0 else ("approach" if u < 0.5 else "lift")
                q = (u - edge) / (1 - 2 * edge) * self.presses
                press_idx = int(np.clip(np.floor(q), 0, self.presses - 1))
                ph = q - np.floor(q) if 0 <= q < self.presses else 0.0
                env = float(np.sin(np.pi * np.clip(ph, 0, 1)) ** 2) if 0 <= q < self.presses else 0.0
            else:
                q = (k + 0.5) / self.n_ann * self.cycles
                press_idx = int(min(np.floor(q), self.cycles - 1))
                phi = q - press_idx
                gap_frac, env, prog = self._cycle_profile(phi)
                gap = self.lift * gap_frac
                phase = "contact" if env > 0 else ("touch" if gap == 0 else "approach" if phi < 0.5 else "lift")
        tremor = 1.0 + 0.04 * float(self.tremor(t)[0])
        scale = float(self.cycle_scale[min(press_idx, len(self.cycle_scale) - 1)])
        # -- gesture-specific articulation over time
        if sp.motion == "pinch":
            pose.flex[1] += np.deg2rad([10.0, 14.0, 8.0]) * (1.0 - gap_frac) + np.deg2rad([6, 8, 4]) * env
        if sp.motion == "zoom" and self.drag is not None:
            spread = self.drag[1] * prog
            pose.abduct[1] -= spread * 0.6
            pose.abduct[0] += spread * 0.6
        if self.drag is not None and sp.motion not in ("zoom",):
            kind = self.drag[0]
            if kind == "line":
                anchor = anchor + self.drag[1] * prog
            elif kind == "rotate":
                yaw = yaw + self.drag[1] * prog
            elif kind == "draw":  # a word-like path written towards the participant's right (-y)
                amp, ph0 = self.drag[1], self.drag[2]
                s = 2.0 * np.pi * prog
                anchor = anchor + amp * np.array([0.5 * (np.sin(1.5 * s + ph0) - np.sin(ph0)),
                                                  -2.0 * prog + 0.4 * np.sin(2.0 * s)])
        # -- levels per group
        if phase in ("pre", "post"):
            for g in sp.groups:
                level[g] = ("gap", gap)
        elif sp.hover:
            hg = self.hover_gap * (1.0 + 0.08 * float(self.tremor(t + 13.0)[0]))
            for g in sp.groups:
                level[g] = ("gap", max(gap, hg) if gap > 0 else hg)
        elif sp.motion == "onebyone":
            if gap > 0:
                for g in sp.groups:
                    level[g] = ("gap", gap)
            else:
                for j, g in enumerate(sp.groups):
                    f = self.rest_force * tremor
                    if j == press_idx % len(sp.groups):
                        f += self.peak_force * scale * env
                    level[g] = ("force", f)
        else:
            for g, share in zip(sp.groups, sp.shares):
                if gap > 0:
                    level[g] = ("gap", gap)
                elif env > 0:
                    level[g] = ("force", self.peak_force * share * scale * env * tremor)
                else:  # resting on the pad, not pressing: the hand's own light load
                    level[g] = ("force", self.touch_force * share * tremor)
        return FrameTarget(pose, yaw, pitch, roll, anchor, level, annotated, phase)


