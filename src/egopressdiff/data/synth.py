"""The built-in synthetic EgoPressure dataset: gestures, physics, renders, imperfections.

``generate_dataset(OUT, participants, sequences, frames, seed)`` writes exactly
the EgoPressure on-disk layout (DESIGN.md §2.1): per sequence a config JSON
and a k4a calibration JSON, and five Parquet shards (colour JPEG, depth PNG,
mask PNG, pressure, annotation) with the real column names, units and frame
numbering. The same reader serves it and the real data; the config JSON carries
an ``"egopressdiff_synthetic"`` marker so the reader uses the procedural hand's
UV atlas (:func:`egopressdiff.data.hand.synthetic_atlas`) instead of MANO's.

**Hand.** A procedural, articulated 778-vertex hand with the 21 EgoPressure
joints, left or right (mirror), with a UV atlas (:mod:`egopressdiff.data.hand`).
Each participant has a hand shape (scale, palm width, finger length, thickness;
stored as ``betas[:4]``) and a skin tone.

**Gestures.** Sequences use the real gesture names, every family of the real
data (``layout.GESTURE_FAMILIES``): palm presses (palm only / palm and fingers),
finger presses (all fingertips), one-by-one presses (flat or cupped hand, each
finger in turn while the others rest lightly), index presses, index drags (pull
towards the body, push away, rotate left/right about the fingertip, drawing a
word-like path), pinches (thumb pressing down while the index pinches; pinch-zoom
with thumb and index sliding apart on the pad) and **no-contact hovers** of the
palm / fingers / index / pinch poses 2-8 mm above the pad (never touching: zero
pressure on every frame). ``high`` / ``low`` in the name set the peak force
(e.g. index press 6-10 N vs 1.5-3 N; palm press 25-40 N vs 6-12 N). Each
sequence repeats its gesture (up to the name's ``x5`` / ``3x``): approach,
force ramp, hold (with a small tremor), release, lift, with smooth (smoothstep)
profiles; drags move in contact. The first and last few frames (pre/post
contact, ~6 %) have ``has_annotation = False`` and null MANO/pressure fields, as
in the real data. Gestures are assigned round-robin over an order that cycles
through the families (hover second), continuing across participants, so every
family appears once a dataset has 7 sequences; the hand side alternates
(two thirds right).

**Physics.** The hand is posed kinematically and driven by a force controller:
for each contact group (palm, fingers, fingertips) the controller finds the
penetration depth into the rigid pad (plane z = 0) that carries the group's
target force under the soft-tissue law ``p = 9 kPa · (d / 1 mm)^1.5`` and
reaches it by translating the hand and flexing the fingers (a few Newton steps
of inverse kinematics). Pressure per vertex is then smoothed over the skin and
baked (:mod:`egopressdiff.data.physics`) to the 224x224 UV map (kPa, stored
normalised + ``pressure_map_range`` in counts) and to the 105x185 force grid
(counts): both hold the same total force.

**Renders.** An egocentric camera 35-50 cm from the hand (head motion: slow
drifts plus per-frame jitter) looks down and forward at the pad; a numpy
z-buffer rasteriser (:mod:`egopressdiff.data.raster`, no GL) renders RGB (shaded
skin with the participant's tone, nails, a forearm with or without a sleeve,
the dark textured pad with its border on a table, a soft hand shadow, lighting
per sequence with exposure drift and flicker), the hand mask, and depth (uint16
mm, 0 = hole) from a separate depth sensor (own intrinsics, square image, 32 mm
and 6 degrees off the colour camera) described by the k4a calibration JSON so
the reader's registration maps it onto the colour image (zero distortion
coefficients; the reader runs its usual undistortion code on them).

**Imperfections** (:class:`Imperfections`, realistic defaults on; switch off
with ``Imperfections.none()`` / ``--no-imperfections``): depth noise growing
with distance, depth holes (random dropouts, and at silhouettes where
ToF sensors lose depth), motion blur along the image motion, lighting and
skin-tone variation, and camera-tilt events that bring the head low behind the
hand so the hand hides its own contact region from the ego view (recorded per
sequence as ``occluded_contact_frames``): cases where one frame is not enough.

Determinism: every sequence has its own RNG seeded by (seed, participant,
sequence), so any sequence is reproducible alone and the same seed gives
byte-identical shards.

Stored annotation (synthetic meaning): ``vertices``, ``joint_position``,
``normals`` in world metres; ``betas`` = shape factors - 1 (4 used, 6 zeros);
``full_pose`` = global rotation (axis-angle) + 15 joint rotations (axis-angle
in each finger's rest frame, thumb..pinky, base to tip; see
:meth:`egopressdiff.data.hand.HandPose.full_pose`); ``transl`` = the wrist
joint's world position; ``displacement`` zeros; ``visible_vertices`` row 0 =
visibility of each vertex from the ego camera (1 visible, 0 hidden by the hand
or the forearm or outside the image), rows 1-6 zeros (no static cameras).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from egopressdiff.data import layout
from egopressdiff.data.hand import (
    PART_PALM,
    HandModel,
    HandPose,
    HandShape,
    build_hand,
    rot_x,
    rot_y,
    rot_z,
)
from egopressdiff.data.physics import (
    SENSE_HALF_X,
    SENSE_HALF_Y,
    PressureBaker,
    SoftTissue,
    depth_for_force,
    vertex_pressure,
)
from egopressdiff.data.raster import PinholeCamera, box_blur_1d, rasterize

GENERATOR_VERSION = 1
HAND_MODEL = "procedural-v1"
SYNTH_MARKER = "egopressdiff_synthetic"
DEFAULT_IMAGE_SIZE = (320, 240)
PAD_THICKNESS = 0.0065  # the table lies this far below the pad surface (+z)

# local (fingers +y, palm normal +z, thumb +x) -> world (fingers -x, palm towards the pad +z):
# the participant sits on the +x side of the pad, so the camera looks towards -x.
R_LOCAL_TO_WORLD = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])


# =============================================================================== options
@dataclass(frozen=True)
class Imperfections:
    """Real-data imperfections; the defaults are on and realistic. ``Imperfections.none()``
    gives clean data (every value 0 / False)."""

    depth_noise_mm: float = 1.2  # Gaussian depth noise sigma at 0.5 m (grows with distance^2)
    depth_hole_fraction: float = 0.015  # random dropout blobs (fraction of pixels)
    silhouette_holes: float = 0.6  # probability of losing a pixel on a depth discontinuity
    motion_blur: float = 1.0  # blur length scale (image motion during a ~half-frame exposure)
    lighting_variation: float = 1.0  # strength of per-sequence light / exposure / flicker changes
    skin_tone_variation: bool = True  # participant skin tones (else one medium tone)
    self_occlusion: float = 0.5  # probability that a sequence has camera-tilt occlusion events
    camera_jitter: float = 1.0  # head-motion jitter scale
    image_noise: float = 1.0  # sensor noise scale on RGB

    @staticmethod
    def none() -> Imperfections:
        return Imperfections(0.0, 0.0, 0.0, 0.0, 0.0, False, 0.0, 0.0, 0.0)


# =============================================================================== gestures
@dataclass(frozen=True)
class GestureSpec:
    """How a gesture is staged (built by ``_spec`` from the real gesture name)."""

    family: str
    posture: str  # a key of _POSTURES: flat | palm_lift | flat_tips | fingers | cupped | index | pinch | zoom
    groups: tuple  # contact groups: palm | finger<f> | tip<f>
    primary: str  # the group that sets the hand height
    shares: tuple  # force share of each group
    force: tuple  # (lo, hi) newtons at peak (sum over groups)
    hover: bool = False
    motion: str = "press"  # press | onebyone | pull | push | rotate-left | rotate-right | draw | zoom | pinch
    reps: int = 5


def _intensity(gesture: str) -> str:
    if "no-contact" in gesture:
        return "none"
    if "_high" in gesture:
        return "high"
    if "_low" in gesture:
        return "low"
    return "medium"


def _reps(gesture: str) -> int:
    import re

    m = re.search(r"(?:_x(\d+)|_(\d+)x)$", gesture)
    return int(m.group(1) or m.group(2)) if m else 5


_TIPS5 = ("tip0", "tip1", "tip2", "tip3", "tip4")
_TIPS4 = ("tip1", "tip2", "tip3", "tip4")


def _spec(gesture: str) -> GestureSpec:
    fam = layout.family_of_gesture(gesture)
    inten = _intensity(gesture)
    hi = inten == "high"
    reps = _reps(gesture)
    if fam == "palm_press" or (fam == "hover" and gesture.startswith("press_palm")):
        if "palm-and-fingers" in gesture:
            groups = ("palm", "finger1", "finger2", "finger3", "finger4")
            return GestureSpec(fam, "flat", groups, "palm", (0.64, 0.1, 0.1, 0.09, 0.07),
                               (30.0, 45.0) if hi else (8.0, 15.0), fam == "hover", "press", reps)
        return GestureSpec(fam, "palm_lift", ("palm",), "palm", (1.0,), (25.0, 40.0) if hi else (6.0, 12.0),
                           fam == "hover", "press", reps)
    if fam == "finger_press" or (fam == "hover" and gesture.startswith("press_fingers")):
        return GestureSpec(fam, "fingers", _TIPS5, "tip2", (0.2, 0.22, 0.22, 0.19, 0.17),
                           (18.0, 32.0) if hi else (5.0, 10.0), fam == "hover", "press", reps)
    if fam == "one_by_one":
        posture = "cupped" if "cupped" in gesture else "flat_tips"
        return GestureSpec(fam, posture, _TIPS4, "tip2", (0.25, 0.25, 0.25, 0.25),
                           (5.0, 9.0) if hi else (1.5, 3.0), False, "onebyone", reps)
    if fam == "index_press" or (fam == "hover" and gesture.startswith("index_press")):
        return GestureSpec(fam, "index", ("tip1",), "tip1", (1.0,), (6.0, 10.0) if hi else (1.5, 3.0),
                           fam == "hover", "press", reps)
    if fam == "index_drag":
        motion = {"index_press_pull_x5": "pull", "index_press_push_x5": "push",
                  "index_press_rotate-left_x5": "rotate-left", "index_press_rotate-right_x5": "rotate-right",
                  }.get(gesture, "draw")
        return GestureSpec(fam, "index", ("tip1",), "tip1", (1.0,), (2.0, 5.0), False, motion, reps)
    if fam == "pinch" or (fam == "hover" and gesture.startswith("pinch")):
        if "zoom" in gesture:
            return GestureSpec(fam, "zoom", ("tip1", "tip0"), "tip1", (0.5, 0.5), (3.0, 7.0), False, "zoom", reps)
        return GestureSpec(fam, "pinch", ("tip0",), "tip0", (1.0,), (5.0, 9.0) if hi else (1.5, 3.0),
                           fam == "hover", "pinch", reps)
    raise ValueError(f"synthetic generator has no staging for gesture {gesture!r} (family {fam!r})")


# Postures: flexion (deg, thumb..pinky x MCP/PIP/DIP; thumb CMC/MCP/IP), abduction (deg), twist (deg),
# hand pitch (deg, fingers down), roll (deg, thumb side down).
_POSTURES = {
    "flat": dict(flex=[[0, 5, 5], [4, 4, 2], [4, 4, 2], [4, 4, 2], [4, 4, 2]], abduct=[12, -4, 0, 3, 8],
                 twist=[0, 0, 0, 0, 0], pitch=3.0, roll=0.0),
    "palm_lift": dict(flex=[[0, 0, 0], [-14, 2, 2], [-14, 2, 2], [-14, 2, 2], [-14, 2, 2]],
                      abduct=[14, -4, 0, 3, 8], twist=[0, 0, 0, 0, 0], pitch=3.0, roll=0.0),
    "flat_tips": dict(flex=[[10, 10, 5], [18, 12, 6], [18, 12, 6], [18, 12, 6], [18, 12, 6]],
                      abduct=[0, -4, 0, 3, 8], twist=[0, 0, 0, 0, 0], pitch=9.0, roll=0.0),
    "fingers": dict(flex=[[12, 20, 15], [30, 40, 18], [30, 40, 18], [30, 40, 18], [30, 38, 16]],
                    abduct=[-10, -5, 0, 4, 9], twist=[0, 0, 0, 0, 0], pitch=24.0, roll=0.0),
    "cupped": dict(flex=[[15, 25, 20], [35, 55, 30], [35, 55, 30], [35, 55, 30], [35, 50, 28]],
                   abduct=[-8, -4, 0, 3, 7], twist=[0, 0, 0, 0, 0], pitch=20.0, roll=0.0),
    "index": dict(flex=[[20, 25, 25], [22, 35, 18], [75, 95, 60], [78, 95, 60], [80, 95, 55]],
                  abduct=[6, 0, 0, 0, 0], twist=[0, 0, 0, 0, 0], pitch=34.0, roll=5.0),
    "pinch": dict(flex=[[0, 10, 10], [40, 50, 28], [70, 90, 55], [75, 90, 55], [80, 90, 50]],
                  abduct=[0, 0, 0, 0, 0], twist=[0, 0, 0, 0, 0], pitch=15.0, roll=65.0),
    "zoom": dict(flex=[[20, 15, 10], [22, 35, 18], [75, 95, 60], [78, 95, 60], [80, 95, 55]],
                 abduct=[-10, 0, 0, 0, 0], twist=[0, 0, 0, 0, 0], pitch=34.0, roll=10.0),
}


def gesture_order() -> list[str]:
    """All real gesture names in the round-robin order: families interleaved, hover second."""
    fams = ["palm_press", "hover", "finger_press", "index_drag", "one_by_one", "pinch", "index_press"]
    lists = {f: list(layout.GESTURE_FAMILIES[f]) for f in fams}
    order = []
    while any(lists.values()):
        for f in fams:
            if lists[f]:
                order.append(lists[f].pop(0))
    return order


@dataclass(frozen=True)
class SequencePlan:
    participant: str
    participant_index: int
    sequence_index: int
    gesture: str
    side: str

    @property
    def name(self) -> str:
        return layout.sequence_name(self.participant, self.gesture, self.side)

    @property
    def family(self) -> str:
        return layout.family_of_gesture(self.gesture)


def plan_dataset(participants: int, sequences: int) -> list[SequencePlan]:
    """Deterministic (participant, gesture, side) plan: round-robin over :func:`gesture_order`
    continuing across participants; two thirds right hands."""
    order = gesture_order()
    if sequences > 2 * len(order):
        raise ValueError(f"at most {2 * len(order)} sequences per participant (distinct gesture/side names)")
    plans = []
    for p in range(participants):
        pname = layout.participant_name(p)
        used = set()
        for s in range(sequences):
            k = p * sequences + s
            gesture = order[k % len(order)]
            side = "left" if k % 3 == 2 else "right"
            name = layout.sequence_name(pname, gesture, side)
            if name in used:
                side = "left" if side == "right" else "right"
            if layout.sequence_name(pname, gesture, side) in used:
                for g2 in order:  # next unused gesture
                    if layout.sequence_name(pname, g2, side) not in used:
                        gesture = g2
                        break
            used.add(layout.sequence_name(pname, gesture, side))
            plans.append(SequencePlan(pname, p, s, gesture, side))
    return plans


# =============================================================================== time profiles
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
        """(gap fraction 1..0, force envelope 0..1, drag progress 0..1) within one press cycle."""
        a0, a1 = 0.22, 0.34  # approach ends, ramp ends
        r0, r1 = 0.66, 0.78  # release starts, lift starts
        gap = 1.0 - smoothstep(phi / a0) if phi < a0 else (smoothstep((phi - r1) / (1 - r1)) if phi > r1 else 0.0)
        if phi < a0 or phi > r1:
            env = 0.0
        elif phi < a1:
            env = smoothstep((phi - a0) / (a1 - a0))
        elif phi > r0:
            env = 1.0 - smoothstep((phi - r0) / (r1 - r0))
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
                phase = "contact" if env > 0 else ("approach" if phi < 0.5 else "lift")
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
                else:
                    level[g] = ("force", self.peak_force * share * scale * env * tremor)
        return FrameTarget(pose, yaw, pitch, roll, anchor, level, annotated, phase)


# =============================================================================== contact solver
class ContactSolver:
    """Poses the hand so each contact group meets its target (gap above the pad or force)."""

    patterns = (np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.6]))  # knuckle flexion, PIP/DIP curl
    flex_limits = (np.deg2rad(-30.0), np.deg2rad(110.0))

    def __init__(self, hand: HandModel, tissue: SoftTissue):
        self.hand = hand
        self.tissue = tissue
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
        return depth_for_force(heights, areas[idx], float(val), self.tissue)


# =============================================================================== cameras
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


# =============================================================================== appearance
SKIN_TONES = np.array([
    [0.96, 0.80, 0.69], [0.90, 0.72, 0.60], [0.80, 0.60, 0.47],
    [0.66, 0.47, 0.34], [0.50, 0.34, 0.24], [0.35, 0.24, 0.17],
])
TABLE_COLOURS = np.array([
    [0.66, 0.53, 0.38], [0.74, 0.74, 0.72], [0.50, 0.50, 0.52], [0.40, 0.29, 0.20], [0.56, 0.62, 0.66],
])
SLEEVE_COLOURS = np.array([
    [0.15, 0.18, 0.30], [0.55, 0.10, 0.12], [0.85, 0.85, 0.85], [0.20, 0.20, 0.20], [0.30, 0.45, 0.30],
    [0.75, 0.60, 0.35],
])
PAD_COLOUR = np.array([0.10, 0.10, 0.11])
PAD_BORDER_COLOUR = np.array([0.24, 0.24, 0.25])
WORLD_HALF = 0.30  # the background texture covers x, y in +-0.30 m
WORLD_RES = 0.002  # at 2 mm per texel (the shadow map at 4 mm)
_FOREARM_S = (0.05, 0.14, 0.26, 0.40)  # forearm ring distances from the wrist (m)
_FOREARM_GROWTH = (1.0, 1.12, 1.22, 1.28)
# wrist ring (palm ring 0) vertices: 0 radial edge, 11 ulnar edge, 5/6 palmar middle, 14/15 dorsal middle
_RING_ULNAR, _RING_PALMAR, _RING_DORSAL = 11, 6, 15


@dataclass(frozen=True)
class Participant:
    name: str
    index: int
    shape: HandShape
    skin: tuple  # RGB albedo in [0, 1]


def make_participant(index: int, seed: int, imperf: Imperfections) -> Participant:
    rng = np.random.default_rng([int(seed), int(index), 7_919, GENERATOR_VERSION])
    shape = HandShape.random(rng)
    if imperf.skin_tone_variation:
        tone = SKIN_TONES[int(rng.integers(len(SKIN_TONES)))] * rng.uniform(0.95, 1.05, 3)
    else:
        tone = SKIN_TONES[2]
    return Participant(layout.participant_name(index), index, shape, tuple(float(x) for x in np.clip(tone, 0, 1)))


def _noise_texture(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    t = gaussian_filter(rng.normal(size=(size, size)), sigma, mode="wrap")
    return (t / (t.std() + 1e-9)).astype(np.float32)


class SequenceRenderer:
    """Per-sequence constants (appearance, textures, noise fields) and the per-frame renders."""

    def __init__(self, hand: HandModel, participant: Participant, color_cam: PinholeCamera,
                 depth_cam: PinholeCamera, rng: np.random.Generator, imperf: Imperfections):
        self.hand = hand
        self.cc = color_cam
        self.dc = depth_cam
        self.imperf = imperf
        self.rng = rng
        lv = imperf.lighting_variation
        # -- lighting
        el = np.deg2rad(rng.uniform(45.0, 80.0)) if lv > 0 else np.deg2rad(60.0)
        az = rng.uniform(0, 2 * np.pi) if lv > 0 else np.deg2rad(30.0)
        self.light = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), -np.sin(el)])
        self.diffuse = float(0.75 + lv * rng.uniform(-0.12, 0.15))
        self.ambient = float(0.36 + lv * rng.uniform(-0.07, 0.08))
        tint = 1.0 + lv * rng.normal(0.0, 0.04, 3)
        self.tint = (tint / tint.mean()).astype(np.float32)
        self.exposure = SmoothNoise(rng, 1, min_period=20.0, max_period=80.0)
        self.flicker = rng.normal(0.0, 1.0, 4096)
        # -- skin albedo per vertex (palms lighter, nails pinker, slow blotches)
        skin = np.asarray(participant.skin, dtype=np.float64) * (1.0 + 0.03 * rng.normal(size=3) * lv)
        alb = np.tile(skin, (hand.num_vertices, 1))
        pal = hand.vertex_palmar
        alb[pal] = 0.68 * alb[pal] + 0.32 * np.array([0.93, 0.75, 0.67])
        nail = hand.vertex_tip & ~pal & (hand.vertex_part > 0)
        alb[nail] = 0.5 * alb[nail] + 0.5 * np.array([0.94, 0.80, 0.78])
        blot = rng.normal(size=hand.num_vertices)
        for _ in range(3):
            blot = hand.neighbour_mean @ blot
        alb *= (1.0 + 0.05 * blot / (blot.std() + 1e-9))[:, None]
        # -- forearm (sleeve or bare)
        n_ring = 18
        self.n_ring = n_ring
        sleeve = rng.uniform() < 0.5
        sleeve_col = SLEEVE_COLOURS[int(rng.integers(len(SLEEVE_COLOURS)))] * rng.uniform(0.85, 1.1)
        fa = np.tile(skin, (len(_FOREARM_S) * n_ring, 1))
        if sleeve:
            start = int(rng.integers(0, 2))
            fa[start * n_ring:] = sleeve_col
        self.albedo = np.clip(np.concatenate([alb, fa]), 0.0, 1.0).astype(np.float32)
        self.forearm_elev = np.deg2rad(rng.uniform(6.0, 16.0))
        out = np.deg2rad(rng.uniform(15.0, 35.0))  # the elbow is on the hand's side of the body
        self.forearm_out = -out if hand.side == "right" else out
        self.n_ring = n_ring
        wrist_ring = np.arange(n_ring)  # the hand's palm ring 0 is the wrist ring
        faces = []
        rings = [wrist_ring] + [hand.num_vertices + k * n_ring + np.arange(n_ring) for k in range(len(_FOREARM_S))]
        for a, b in zip(rings[:-1], rings[1:]):
            for k in range(n_ring):
                k2 = (k + 1) % n_ring
                faces += [(a[k], a[k2], b[k2]), (a[k], b[k2], b[k])]
        faces = np.asarray(faces, dtype=np.int64)
        self.faces = np.concatenate([hand.faces, faces])
        self.n_hand_faces = len(hand.faces)
        # outward winding for the forearm (back-face culling): check on the rest hand
        sv = self.scene_vertices(hand.rest_vertices, hand.rest_joints)
        a, b_, c = sv[faces[:, 0]], sv[faces[:, 1]], sv[faces[:, 2]]
        nrm = np.cross(b_ - a, c - a)
        centre = sv[hand.num_vertices:].mean(axis=0)
        axis_pt = sv[:n_ring].mean(axis=0)
        d = centre - axis_pt
        cen = (a + b_ + c) / 3.0
        foot = axis_pt + np.clip(((cen - axis_pt) @ d) / (d @ d), 0, None)[:, None] * d
        if np.mean(np.einsum("ij,ij->i", nrm, cen - foot) > 0) < 0.5:
            self.faces[self.n_hand_faces:] = faces[:, [0, 2, 1]]
        import scipy.sparse as sp

        nv = hand.num_vertices + len(_FOREARM_S) * n_ring
        F = len(self.faces)
        self._vf = sp.csr_matrix((np.ones(3 * F), (self.faces.reshape(-1), np.repeat(np.arange(F), 3))),
                                 shape=(nv, F))
        # -- textures and noise fields (sampled with per-frame offsets)
        self.table_colour = TABLE_COLOURS[int(rng.integers(len(TABLE_COLOURS)))] * rng.uniform(0.9, 1.1)
        # world albedo of the pad + table (WORLD_RES per texel over +-WORLD_HALF), sampled per pixel
        n = int(round(2 * WORLD_HALF / WORLD_RES))
        c = (np.arange(n) + 0.5) * WORLD_RES - WORLD_HALF
        wx, wy = np.meshgrid(c, c)  # [row = y, col = x]
        tex_t = _noise_texture(rng, n, 6.0)
        grain = _noise_texture(rng, n, 1.0)
        tex_p = _noise_texture(rng, n, 0.7)
        on_pad = (np.abs(wx) <= layout.PAD_HALF_X) & (np.abs(wy) <= layout.PAD_HALF_Y)
        border = on_pad & ((np.abs(wx) > layout.PAD_HALF_X - 0.008) | (np.abs(wy) > layout.PAD_HALF_Y - 0.008))
        table = self.table_colour * (1.0 + 0.05 * tex_t + 0.02 * grain)[..., None]
        pad = np.where(border[..., None], PAD_BORDER_COLOUR, PAD_COLOUR) * (1.0 + 0.06 * tex_p)[..., None]
        # beyond the +-WORLD_HALF window the table continues as a periodic texture (appended rows)
        m = 128
        far = self.table_colour * (1.0 + 0.05 * _noise_texture(rng, m, 6.0) + 0.02 * _noise_texture(rng, m, 1.0))[..., None]
        self.world_albedo = np.concatenate([np.where(on_pad[..., None], pad, table).reshape(-1, 3),
                                            far.reshape(-1, 3)]).astype(np.float32)
        self.world_n = n
        self.far_n = m
        H, W = color_cam.height, color_cam.width
        self.rgb_noise = rng.normal(0.0, 1.0, size=(H + 16, W + 16, 3)).astype(np.float32)
        h, w = depth_cam.height, depth_cam.width
        self.depth_noise = rng.normal(0.0, 1.0, size=(h + 16, w + 16)).astype(np.float32)
        self.hole_field = _noise_texture(rng, max(h, w) + 32, 2.5)
        self.edge_field = rng.uniform(size=(h + 16, w + 16)).astype(np.float32)
        frac = float(np.clip(imperf.depth_hole_fraction, 0.0, 0.5))
        self.hole_thresh = float(np.quantile(self.hole_field, 1.0 - frac)) if frac > 0 else np.inf
        self.shadow_res = 3 * WORLD_RES  # 6 mm
        self.shadow_n = n // 3

    # -- geometry ------------------------------------------------------------------------
    def scene_vertices(self, v: np.ndarray, joints: np.ndarray) -> np.ndarray:
        """Hand vertices + forearm rings (world).

        The forearm leaves the wrist backwards and outwards (towards the elbow on the
        hand's side of the body) and rises at ``forearm_elev``. Each forearm ring is the
        wrist ring's own cross-section (in its radial/palmar frame) carried onto the plane
        perpendicular to the forearm axis, so the forearm follows the hand's roll without
        twisting or collapsing.
        """
        n = self.n_ring
        ring = v[:n]
        centre = ring.mean(axis=0)
        back = joints[0] - joints[9]  # middle MCP -> wrist
        back[2] = 0.0
        nb = np.linalg.norm(back)
        back = back / nb if nb > 1e-9 else np.array([1.0, 0.0, 0.0])
        back = rot_z(self.forearm_out)[:2, :2] @ back[:2]
        axis = np.array([np.cos(self.forearm_elev) * back[0], np.cos(self.forearm_elev) * back[1],
                         -np.sin(self.forearm_elev)])
        off = ring - centre
        e1 = ring[0] - ring[_RING_ULNAR]  # across the wrist (radial edge - ulnar edge)
        e2 = ring[_RING_PALMAR] - ring[_RING_DORSAL]  # palmar - dorsal
        e1 /= max(np.linalg.norm(e1), 1e-12)
        e2 -= (e2 @ e1) * e1
        e2 /= max(np.linalg.norm(e2), 1e-12)
        x, z = off @ e1, off @ e2  # the wrist cross-section in its own frame
        f1 = e1 - (e1 @ axis) * axis
        if np.linalg.norm(f1) < 1e-3:  # degenerate: fall back to a horizontal frame
            f1 = np.cross(axis, [0.0, 0.0, 1.0])
        f1 /= np.linalg.norm(f1)
        f2 = np.cross(axis, f1)
        if f2 @ e2 < 0:
            f2 = -f2
        section = x[:, None] * f1 + z[:, None] * f2
        extra = [centre + s * axis + g * section for s, g in zip(_FOREARM_S, _FOREARM_GROWTH)]
        return np.concatenate([v] + extra)

    def normals(self, sv: np.ndarray) -> np.ndarray:
        a, b, c = sv[self.faces[:, 0]], sv[self.faces[:, 1]], sv[self.faces[:, 2]]
        n = self._vf @ np.cross(b - a, c - a)
        return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-15)

    # -- renders -----------------------------------------------------------------------------
    @staticmethod
    def _rays_world(cam: PinholeCamera, R, T):
        """Camera centre C (3,) and world ray directions (dx, dy, dz), each (H, W) float32.

        Pixel rays are (x(col), y(row), 1) in the camera frame, so R^T r separates into
        outer sums of a column term and a row term (no per-pixel matrix product)."""
        Rf = np.asarray(R, dtype=np.float32)
        C = -(Rf.T @ np.asarray(T, dtype=np.float32))
        xs = ((np.arange(cam.width, dtype=np.float32) - np.float32(cam.cx)) / np.float32(cam.fx))[None, :]
        ys = ((np.arange(cam.height, dtype=np.float32) - np.float32(cam.cy)) / np.float32(cam.fy))[:, None]
        d = [(xs * Rf[0, c] + Rf[2, c]) + ys * Rf[1, c] for c in range(3)]
        return C, d

    def _background(self, cam: PinholeCamera, R, T) -> np.ndarray:
        """Depth (H, W) of the pad (z = 0) and, around it, the table (z = PAD_THICKNESS); inf = none."""
        C, (dx, dy, dz) = self._rays_world(cam, R, T)
        down = dz > 1e-6
        inv = np.where(down, 1.0 / np.where(down, dz, 1.0), 0.0).astype(np.float32)
        t0 = -C[2] * inv
        x0 = C[0] + dx * t0
        y0 = C[1] + dy * t0
        on_pad = (np.abs(x0) <= layout.PAD_HALF_X) & (np.abs(y0) <= layout.PAD_HALF_Y)
        t = np.where(on_pad, t0, t0 + np.float32(PAD_THICKNESS) * inv)
        return np.where(down & (t > 0), t, np.inf).astype(np.float32)

    def _shadow(self, sv: np.ndarray) -> np.ndarray:
        """Soft hand shadow on the pad plane from the directional light, (N, N) in [0, 1]."""
        from scipy.ndimage import gaussian_filter

        lt = self.light
        tpar = sv[:, 2] / lt[2]
        q = sv - tpar[:, None] * lt
        n = self.shadow_n
        res = self.shadow_res
        pts = np.stack([q[:, 0], q[:, 1], np.ones(len(q))], axis=1)
        cam = PinholeCamera(1.0 / res, 1.0 / res, (n - 1) / 2.0, (n - 1) / 2.0, n, n)
        fr = rasterize(pts, self.faces, cam)
        height = float(np.clip(-sv[:self.hand.num_vertices, 2].mean(), 0.0, 0.2))
        return gaussian_filter(fr.mask.astype(np.float32), 0.6 + height / 0.02, truncate=2.0)

    def _vertex_colours(self, pc: np.ndarray, nc: np.ndarray, R: np.ndarray) -> np.ndarray:
        """Shaded colour of every scene vertex (two-sided Lambert + Blinn-Phong, camera frame)."""
        view = -pc / np.linalg.norm(pc, axis=1, keepdims=True)
        ndv = np.einsum("ij,ij->i", nc, view)
        nc = nc * np.where(ndv < 0, -1.0, 1.0)[:, None]
        lc = R @ self.light
        lam = np.maximum(nc @ lc, 0.0)
        hv = view + lc
        hv /= np.maximum(np.linalg.norm(hv, axis=1, keepdims=True), 1e-9)
        spec = np.maximum(np.einsum("ij,ij->i", nc, hv), 0.0) ** 24
        col = self.albedo * (self.ambient + self.diffuse * lam)[:, None] + (0.12 * self.diffuse * spec)[:, None]
        return col.astype(np.float32)

    def render(self, i: int, v: np.ndarray, joints: np.ndarray, R: np.ndarray, T: np.ndarray,
               blur_px: tuple[float, float] = (0.0, 0.0)):
        """-> rgb uint8 (H, W, 3), depth uint16 (h, w) mm, mask uint8 (H, W) 0/255,
        visible (778,) bool (ego camera), contact_visible_fraction-able helpers."""
        imp = self.imperf
        sv = self.scene_vertices(v, joints)
        n_world = self.normals(sv)
        # ---------------- colour camera
        cam = self.cc
        H, W = cam.height, cam.width
        pc = sv @ R.T + T
        fr = rasterize(pc, self.faces, cam, cull_back=True)
        # background: the pad plane z = 0 (the table's 6.5 mm step is invisible at this scale)
        C, (dx, dy, dz) = self._rays_world(cam, R, T)
        down = dz > 1e-6
        tb = np.where(down, -C[2] / np.where(down, dz, 1.0), np.inf).astype(np.float32)
        tt = np.where(down, tb, 0.0)
        n = self.world_n
        sc = np.float32(1.0 / WORLD_RES)
        ix = np.clip(((C[0] + WORLD_HALF) * sc + (dx * sc) * tt), -1e6, 1e6).astype(np.int64)
        iy = np.clip(((C[1] + WORLD_HALF) * sc + (dy * sc) * tt), -1e6, 1e6).astype(np.int64)
        flat = (iy * n + ix).reshape(-1)
        outside = ((ix < 0) | (ix >= n) | (iy < 0) | (iy >= n)).reshape(-1)
        if outside.any():  # the far table: a periodic texture stored after the window
            m = self.far_n
            flat[outside] = n * n + (iy.reshape(-1)[outside] % m) * m + (ix.reshape(-1)[outside] % m)
        mesh = fr.face >= 0
        mesh &= fr.depth < tb
        lam_plane = max(0.0, float(-self.light[2]))
        shade_bg = self.ambient + self.diffuse * lam_plane
        sh = self._shadow(sv).reshape(-1)
        ns = self.shadow_n
        shadow = np.take(sh, np.clip(iy // 3, 0, ns - 1) * ns + np.clip(ix // 3, 0, ns - 1))
        k = np.float32(0.55 * self.diffuse * lam_plane)
        img = np.take(self.world_albedo, flat, axis=0).reshape(H, W, 3)
        lv = imp.lighting_variation
        gain = 1.0 + lv * (0.07 * float(self.exposure(float(i))[0]) + 0.015 * self.flicker[i % 4096])
        colour_gain = (self.tint * np.float32(gain * 255.0)).astype(np.float32)  # exposure, tint, to 0..255
        img *= (np.float32(shade_bg) - k * shadow)[..., None]
        img *= colour_gain
        # mesh shading: Lambert + Blinn-Phong per vertex (camera frame), interpolated per pixel
        sel = mesh.reshape(-1)[fr.pix]
        idx = fr.pix[sel]
        if len(idx):
            b = fr.pix_bary[sel]
            tri = self.faces[fr.pix_face[sel]]
            vcol = self._vertex_colours(pc, n_world @ R.T, R) * colour_gain
            col = (np.take(vcol, tri[:, 0], axis=0) * b[:, 0:1] + np.take(vcol, tri[:, 1], axis=0) * b[:, 1:2]
                   + np.take(vcol, tri[:, 2], axis=0) * b[:, 2:3])
            img.reshape(-1, 3)[idx] = col
        # blur, noise
        if imp.motion_blur > 0:
            img = box_blur_1d(img, blur_px[0] * imp.motion_blur, blur_px[1] * imp.motion_blur)
        if imp.image_noise > 0:
            oy, ox = int(self.rng.integers(16)), int(self.rng.integers(16))
            img += np.float32(3.0 * imp.image_noise) * self.rgb_noise[oy:oy + H, ox:ox + W]
        img += np.float32(0.5)
        np.clip(img, 0.0, 255.0, out=img)
        rgb = img.astype(np.uint8)
        mask = ((fr.face >= 0) & (fr.face < self.n_hand_faces) & mesh).astype(np.uint8) * 255
        # visibility of the hand's vertices from the ego camera
        zbuf = np.minimum(np.where(mesh, fr.depth, np.inf), tb)
        u = np.rint(cam.fx * pc[:self.hand.num_vertices, 0] / pc[:self.hand.num_vertices, 2] + cam.cx)
        vv = np.rint(cam.fy * pc[:self.hand.num_vertices, 1] / pc[:self.hand.num_vertices, 2] + cam.cy)
        inside = (u >= 0) & (u < W) & (vv >= 0) & (vv < H) & (pc[:self.hand.num_vertices, 2] > 0)
        visible = np.zeros(self.hand.num_vertices, dtype=bool)
        ui, vi = u[inside].astype(np.int64), vv[inside].astype(np.int64)
        visible[inside] = pc[:self.hand.num_vertices, 2][inside] <= zbuf[vi, ui] + 0.004
        # ---------------- depth sensor
        depth = self._depth(sv, R, T)
        return rgb, depth, mask, visible

    def _depth(self, sv: np.ndarray, R: np.ndarray, T: np.ndarray) -> np.ndarray:
        imp = self.imperf
        cam = self.dc
        h, w = cam.height, cam.width
        Rd, Td = depth_pose(R, T)
        fr = rasterize(sv @ Rd.T + Td, self.faces, cam, cull_back=True)
        tb = self._background(cam, Rd, Td)
        z = np.minimum(fr.depth, tb)
        valid = np.isfinite(z) & (z > 0.05) & (z < 4.0)
        z = np.where(valid, z, 0.0).astype(np.float32)
        if imp.depth_noise_mm > 0:
            oy, ox = int(self.rng.integers(16)), int(self.rng.integers(16))
            sigma = np.float32(imp.depth_noise_mm * 1e-3) * (z / np.float32(0.5)) ** 2
            z = z + sigma * self.depth_noise[oy:oy + h, ox:ox + w]
        if imp.silhouette_holes > 0:
            jump = np.zeros((h, w), dtype=bool)
            dzx = np.abs(np.diff(z, axis=1)) > 0.015
            dzy = np.abs(np.diff(z, axis=0)) > 0.015
            jump[:, 1:] |= dzx
            jump[:, :-1] |= dzx
            jump[1:, :] |= dzy
            jump[:-1, :] |= dzy
            oy, ox = int(self.rng.integers(16)), int(self.rng.integers(16))
            drop = jump & (self.edge_field[oy:oy + h, ox:ox + w] < imp.silhouette_holes)
            z = np.where(drop, 0.0, z)
        if np.isfinite(self.hole_thresh):
            n = self.hole_field.shape[0]
            oy, ox = int(self.rng.integers(n - h + 1)), int(self.rng.integers(n - w + 1))
            z = np.where(self.hole_field[oy:oy + h, ox:ox + w] > self.hole_thresh, 0.0, z)
        mm = np.rint(np.clip(z, 0.0, 65.535) * 1000.0)
        mm[~valid] = 0
        return mm.astype(np.uint16)


# =============================================================================== sequences
_BAKERS: dict = {}


def _baker(hand: HandModel) -> PressureBaker:
    b = _BAKERS.get(hand.side)
    if b is None:
        b = _BAKERS[hand.side] = PressureBaker(hand.atlas)
    return b


def sequence_rng(seed: int, participant_index: int, sequence_index: int) -> np.random.Generator:
    """The independent RNG of one sequence (reproducible alone)."""
    return np.random.default_rng([int(seed), int(participant_index), int(sequence_index), GENERATOR_VERSION])


def _contact_visibility(v: np.ndarray, p: np.ndarray, visible: np.ndarray) -> float | None:
    """Fraction of the skin within 15 mm of the contact that the ego camera sees (None: no contact)."""
    c = np.nonzero(p > 0.5)[0]
    if len(c) == 0:
        return None
    near = np.nonzero(v[:, 2] > v[c, 2].min() - 0.016)[0]  # only these can be within 15 mm
    vn = v[near]
    d2 = ((vn[:, None, :] - v[None, c, :]) ** 2).sum(axis=2).min(axis=1)
    region = near[d2 < 0.015**2]
    return float(visible[region].mean())


def render_sequence(plan: SequencePlan, frames: int, seed: int, participant: Participant,
                    image_size=DEFAULT_IMAGE_SIZE, imperfections: Imperfections = Imperfections(),
                    tissue: SoftTissue | None = None, on_frame=None):
    """Simulate and render one sequence -> (frame records, config dict, k4a dict, stats dict)."""
    tissue = tissue or SoftTissue()
    from egopressdiff.data.calibration import build_config_json, build_k4a_calibration
    from egopressdiff.data.writer import FrameRecord, encode_jpeg, encode_png

    rng = sequence_rng(seed, plan.participant_index, plan.sequence_index)
    hand = build_hand(plan.side, participant.shape)
    tl = GestureTimeline(plan.gesture, plan.side, frames, rng, hand)
    sp = tl.spec
    solver = ContactSolver(hand, tissue)
    baker = _baker(hand)
    cc, dc = color_camera(image_size), depth_camera(image_size)
    # camera target: the hand's centre when the primary group sits at its anchor
    t0 = tl.target(tl.n_pre)
    p0 = t0.pose.copy()
    p0.rot = solver.world_rotation(t0.yaw, t0.pitch, t0.roll)
    v0, _ = hand.pose(p0)
    off = v0[:, :2].mean(axis=0) - v0[solver.groups[sp.primary], :2].mean(axis=0)
    target = np.array([tl.anchor0[0] + off[0], tl.anchor0[1] + off[1], -0.035])
    rig = CameraRig(rng, frames, target, 0.5 * tl.yaw0, imperfections, tl.n_pre, plan.side)
    renderer = SequenceRenderer(hand, participant, cc, dc, rng, imperfections)
    records = []
    stats = {"frames": frames, "annotated_frames": 0, "contact_frames": 0, "peak_force_n": 0.0, "max_kpa": 0.0,
             "min_hand_height_m": float("inf"), "occluded_contact_frames": 0, "max_force_mismatch": 0.0,
             "camera_tilt_frames": int((rig.occ > 0.5).sum())}
    prev_px = None
    for i in range(frames):
        tgt = tl.target(i)
        v, j, pose = solver.solve(tgt, sp.primary, sp.hover)
        R, T = rig.pose(i)
        cj = R @ j[9] + T
        px = np.array([cc.fx * cj[0] / cj[2] + cc.cx, cc.fy * cj[1] / cj[2] + cc.cy])
        blur = (0.0, 0.0) if prev_px is None else tuple(0.5 * (px - prev_px))
        prev_px = px
        rgb, depth, mask, visible = renderer.render(i, v, j, R, T, blur)
        stats["min_hand_height_m"] = min(stats["min_hand_height_m"], float(-v[:, 2].max()))
        ann = force = pmap = prange = None
        if tgt.annotated:
            p = vertex_pressure(hand, v, tissue)
            baked = baker.bake(v, p)
            pmap, prange = layout.kpa_to_uv_map(baked.kpa_map)
            force = baked.force_counts
            vis = np.zeros((7, hand.num_vertices), dtype=np.float32)
            vis[0] = visible
            ann = {
                "vertices": v.astype(np.float32),
                "joint_position": j.astype(np.float32),
                "betas": participant.shape.betas(),
                "full_pose": pose.full_pose(),
                "transl": j[0].astype(np.float32),
                "normals": hand.vertex_normals(v).astype(np.float32),
                "displacement": np.zeros(hand.num_vertices, dtype=np.float32),
                "visible_vertices": vis,
            }
            stats["annotated_frames"] += 1
            if baked.total_force_grid > 0.05:
                stats["contact_frames"] += 1
                stats["peak_force_n"] = max(stats["peak_force_n"], baked.total_force_grid)
                stats["max_kpa"] = max(stats["max_kpa"], float(baked.kpa_map.max()))
                mis = abs(baked.total_force_uv - baked.total_force_grid) / baked.total_force_grid
                stats["max_force_mismatch"] = max(stats["max_force_mismatch"], mis)
                cv = _contact_visibility(v, p, visible)
                if cv is not None and cv < 0.08:
                    stats["occluded_contact_frames"] += 1
        records.append(FrameRecord(
            frame=i + 1, image_jpeg=encode_jpeg(rgb, 90), depth_png=encode_png(depth), mask_png=encode_png(mask),
            hand_side=plan.side, ego_R=R.astype(np.float32), ego_T=T.astype(np.float32), annotation=ann,
            force=force, pressure_map=pmap, pressure_map_range=prange))
        if on_frame is not None:
            on_frame()
    stats = {k: (round(val, 6) if isinstance(val, float) else val) for k, val in stats.items()}
    marker = {
        "hand_model": HAND_MODEL,
        "gesture": plan.gesture,
        "family": plan.family,
        "intensity": _intensity(plan.gesture),
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "hand_shape": asdict(participant.shape),
        "skin_tone": list(participant.skin),
        "hover_gap_m": round(tl.hover_gap, 6) if sp.hover else None,
        "imperfections": asdict(imperfections),
        "depth_image_size": [dc.width, dc.height],
        "stats": stats,
    }
    d2c = np.eye(4)
    d2c[:3, :3] = DEPTH_TO_COLOR_R
    d2c[:3, 3] = DEPTH_TO_COLOR_T
    config = build_config_json(cc.as_dict(), {"id": plan.participant, "hand_side": plan.side},
                               extra={SYNTH_MARKER: marker}, depth_to_color=d2c)
    k4a = build_k4a_calibration(dc.as_dict(), DEPTH_TO_COLOR_R, DEPTH_TO_COLOR_T, cc.as_dict())
    return records, config, k4a, stats


def _sequence_job(job) -> tuple:
    """Worker: render and write one sequence (used by ``generate_dataset(workers > 1)``)."""
    from egopressdiff.data.writer import write_sequence

    root, plan, frames, seed, size, imperf = job
    participant = make_participant(plan.participant_index, seed, imperf)
    records, config, k4a, stats = render_sequence(plan, frames, seed, participant, size, imperf)
    write_sequence(root, plan.participant, plan.name, records, config, k4a)
    return plan, stats


def generate_dataset(out_root, participants: int = 3, sequences: int = 6, frames: int = 48, seed: int = 0,
                     image_size=DEFAULT_IMAGE_SIZE, imperfections: Imperfections = Imperfections(),
                     progress: bool = True, workers: int = 1) -> dict:
    """Write a synthetic dataset in the EgoPressure layout under ``out_root``; returns a summary.

    ``sequences`` is per participant; gestures follow :func:`plan_dataset`. Each sequence is
    written atomically (an interrupted run leaves only complete sequences) and depends only on
    (seed, participant, sequence), so ``workers > 1`` (processes) gives identical files.
    """
    from egopressdiff.data.writer import write_sequence

    if participants < 1 or sequences < 1 or frames < 1:
        raise ValueError("participants, sequences and frames must all be >= 1")
    w, h = int(image_size[0]), int(image_size[1])
    if w < 32 or h < 32 or w > 4096 or h > 4096:
        raise ValueError(f"image size must be between 32 and 4096 pixels per side, got {w}x{h}")
    root = Path(out_root)
    root.mkdir(parents=True, exist_ok=True)
    plans = plan_dataset(participants, sequences)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(plans) * frames, unit="frame", desc="synth", leave=False)
    t_start = time.perf_counter()
    out = {"root": str(root), "participants": participants, "sequences": [], "frames": 0, "annotated_frames": 0,
           "contact_frames": 0, "families": {}, "seed": seed, "image_size": [w, h]}

    def add(plan, stats):
        out["sequences"].append({"participant": plan.participant, "sequence": plan.name, "gesture": plan.gesture,
                                 "family": plan.family, "side": plan.side, **stats})
        out["frames"] += stats["frames"]
        out["annotated_frames"] += stats["annotated_frames"]
        out["contact_frames"] += stats["contact_frames"]
        out["families"][plan.family] = out["families"].get(plan.family, 0) + 1

    try:
        if workers > 1 and len(plans) > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            jobs = [(str(root), plan, frames, seed, (w, h), imperfections) for plan in plans]
            with ProcessPoolExecutor(max_workers=min(workers, len(plans)),
                                     mp_context=multiprocessing.get_context("spawn")) as ex:
                for plan, stats in ex.map(_sequence_job, jobs):
                    add(plan, stats)
                    if bar is not None:
                        bar.update(frames)
        else:
            people = {p: make_participant(p, seed, imperfections) for p in range(participants)}
            tick = (lambda: bar.update(1)) if bar is not None else None
            for plan in plans:
                records, config, k4a, stats = render_sequence(
                    plan, frames, seed, people[plan.participant_index], (w, h), imperfections, on_frame=tick)
                write_sequence(root, plan.participant, plan.name, records, config, k4a)
                add(plan, stats)
    finally:
        if bar is not None:
            bar.close()
    out["seconds"] = round(time.perf_counter() - t_start, 3)
    out["frames_per_second"] = round(out["frames"] / max(out["seconds"], 1e-9), 2)
    return out
