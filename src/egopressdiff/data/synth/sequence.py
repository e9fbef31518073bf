"""One sequence, frame by frame: what happens (:class:`SequenceSimulation`), then what is recorded.

:class:`SequenceSimulation` is the physical world and its annotation: targets -> contact
solve (the kinematic hand sinking into the pad) -> soft-tissue pressure -> the skin
surface the cameras see (flattened on the pad) -> the annotator's fit. The pressure per
vertex comes from the soft-tissue state (:mod:`egopressdiff.data.physics`), is smoothed
over the skin and baked to the 224x224 UV map (kPa, stored normalised +
``pressure_map_range`` in counts) and to the 105x185 force grid (counts): both hold the
same total force. :func:`render_sequence` adds the ego camera, the renders with their
pressure cues (:mod:`egopressdiff.data.synth.renderer`), the estimated-mesh track
(:mod:`egopressdiff.data.synth.estimator`) and turns every frame into a record.

Every sequence has its own RNGs seeded by (seed, participant, sequence) - one for the
gesture, camera and renders, one for the annotator's fit, one for the estimator - so any
sequence is reproducible alone and the same seed gives byte-identical shards.

Stored annotation (synthetic meaning; :mod:`egopressdiff.data.synth.annotation` for the
model): ``vertices``, ``joint_position``, ``normals`` in world metres, the annotator's
fit; ``betas`` = shape factors - 1 (4 used, 6 zeros); ``full_pose`` = the fit's global
rotation (axis-angle) + 15 joint rotations (axis-angle in each finger's rest frame,
thumb..pinky, base to tip; see :meth:`egopressdiff.data.hand.HandPose.full_pose`);
``transl`` = the fit's wrist joint position; ``displacement`` = the flattening of the
contact patches plus the refinement residual, along ``normals``; ``visible_vertices``
row 0 = visibility of each vertex from the ego camera (1 visible, 0 hidden by the hand
or the forearm or outside the image), rows 1-6 zeros (no static cameras). Extra columns
``vertices_estimated`` / ``joint_position_estimated``: the estimated-mesh track.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from egopressdiff.data import layout
from egopressdiff.data.hand import HandModel, HandPose, build_hand
from egopressdiff.data.physics import Baked, PressureBaker, SoftTissue, vertex_pressure
from egopressdiff.data.synth.annotation import RENDER_LIFT_M, AnnotatorFit, flattened_surface
from egopressdiff.data.synth.camera import (
    DEFAULT_IMAGE_SIZE,
    DEPTH_TO_COLOR_R,
    DEPTH_TO_COLOR_T,
    CameraRig,
    color_camera,
    depth_camera,
)
from egopressdiff.data.synth.estimator import MeshEstimator
from egopressdiff.data.synth.gestures import SequencePlan, _intensity
from egopressdiff.data.synth.imperfections import Imperfections
from egopressdiff.data.synth.participants import Participant, stiffness_map
from egopressdiff.data.synth.profiles import GestureTimeline
from egopressdiff.data.synth.renderer import SequenceRenderer
from egopressdiff.data.synth.solver import ContactSolver
from egopressdiff.data.synth.version import GENERATOR_VERSION, HAND_MODEL, SYNTH_MARKER

ANNOTATION_STREAM, ESTIMATOR_STREAM = 1, 2  # RNG streams of the annotator's fit and of the mesh estimator
# the ego camera sees 11-43 % of the hand's vertices (5-95 %; the rest faces away): below VISIBLE_LOW
# the hand counts as occluding itself for the estimator, fully at VISIBLE_OCCLUDED
VISIBLE_LOW, VISIBLE_OCCLUDED = 0.12, 0.06
_BAKERS: dict = {}


def _baker(hand: HandModel) -> PressureBaker:
    b = _BAKERS.get(hand.side)
    if b is None:
        b = _BAKERS[hand.side] = PressureBaker(hand.atlas)
    return b


def sequence_rng(seed: int, participant_index: int, sequence_index: int, stream: int = 0) -> np.random.Generator:
    """The independent RNG of one sequence (reproducible alone); ``stream`` > 0 gives a component its own."""
    key = [int(seed), int(participant_index), int(sequence_index), GENERATOR_VERSION]
    return np.random.default_rng(key + [int(stream)] if stream else key)


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


@dataclass
class FrameState:
    """One simulated frame: the physical hand, its pressure and (annotated frames) the annotation."""

    index: int
    annotated: bool
    pose: HandPose  # the physical pose (world)
    vertices: np.ndarray  # (778, 3) the kinematic hand, sunk into the pad where it presses (internal)
    joints: np.ndarray  # (21, 3)
    pressure: np.ndarray  # (778,) kPa, the soft-tissue state (internal)
    finger_force: np.ndarray  # (5,) newtons per finger
    surface: np.ndarray  # (778, 3) the skin the cameras see: flattened on the pad
    baked: Baked | None = None  # UV map and force grid (annotated frames)
    annotation: dict | None = None  # the annotator's fit (annotated frames)


class SequenceSimulation:
    """The physical world of one sequence and its annotation, frame by frame in order (module doc).

    Draws the gesture timeline from ``rng`` (the sequence's main RNG, which the camera and
    renders go on using) and the annotator's residuals from ``annotation_rng``.
    """

    def __init__(self, plan: SequencePlan, frames: int, participant: Participant, rng: np.random.Generator,
                 annotation_rng: np.random.Generator, imperfections: Imperfections, tissue: SoftTissue | None = None):
        self.tissue = tissue or SoftTissue(stiffness_kpa=SoftTissue().stiffness_kpa * participant.stiffness)
        self.participant = participant
        self.hand = hand = build_hand(plan.side, participant.shape)
        self.timeline = GestureTimeline(plan.gesture, plan.side, frames, rng, hand)
        self.stiffness = stiffness_map(hand, participant)
        self.solver = ContactSolver(hand, self.tissue, self.stiffness)
        self.baker = _baker(hand)
        self.annotator = AnnotatorFit(hand, annotation_rng, imperfections.annotation_residual)
        self._finger_of_vertex = np.where(hand.vertex_part > 0, hand.vertex_part - 1, 5)

    def camera_target(self) -> np.ndarray:
        """Where the ego camera looks: the hand's centre when the primary group sits at its anchor."""
        tl, solver = self.timeline, self.solver
        t0 = tl.target(tl.n_pre)
        p0 = t0.pose.copy()
        p0.rot = solver.world_rotation(t0.yaw, t0.pitch, t0.roll)
        v0, _ = self.hand.pose(p0)
        off = v0[:, :2].mean(axis=0) - v0[solver.groups[tl.spec.primary], :2].mean(axis=0)
        return np.array([tl.anchor0[0] + off[0], tl.anchor0[1] + off[1], -0.035])

    def frame(self, i: int) -> FrameState:
        hand, tl = self.hand, self.timeline
        tgt = tl.target(i)
        v, j, pose = self.solver.solve(tgt, tl.spec.primary, tl.spec.hover)
        p = vertex_pressure(hand, v, self.tissue, self.stiffness)
        force = np.bincount(self._finger_of_vertex, weights=p * 1000.0 * hand.vertex_areas(v), minlength=6)[:5]
        surface = flattened_surface(v, RENDER_LIFT_M)
        st = FrameState(i, tgt.annotated, pose, v, j, p, force, surface)
        if tgt.annotated:
            st.annotation = self.annotator.fit(pose, v, p)
            st.annotation["betas"] = self.participant.shape.betas()
            # the pressure acts where the flattened skin is; its texel areas are the annotation's, as the
            # UV map is read on the annotated mesh (so both hold the same total force there)
            st.baked = self.baker.bake(surface, p, area_vertices=st.annotation["vertices"])
        else:
            self.annotator.fitted_pose(pose)  # the residuals run on through unannotated frames
        return st


def render_sequence(plan: SequencePlan, frames: int, seed: int, participant: Participant,
                    image_size=DEFAULT_IMAGE_SIZE, imperfections: Imperfections | None = None,
                    tissue: SoftTissue | None = None, on_frame=None):
    """Simulate and render one sequence -> (frame records, config dict, k4a dict, stats dict)."""
    from egopressdiff.data.calibration import build_config_json, build_k4a_calibration
    from egopressdiff.data.writer import FrameRecord, encode_jpeg, encode_png

    imperfections = imperfections or Imperfections()
    keys = (seed, plan.participant_index, plan.sequence_index)
    rng = sequence_rng(*keys)
    sim = SequenceSimulation(plan, frames, participant, rng, sequence_rng(*keys, ANNOTATION_STREAM), imperfections,
                             tissue)
    hand, tl = sim.hand, sim.timeline
    cc, dc = color_camera(image_size), depth_camera(image_size)
    rig = CameraRig(rng, frames, sim.camera_target(), 0.5 * tl.yaw0, imperfections, tl.n_pre, plan.side)
    renderer = SequenceRenderer(hand, participant, cc, dc, rng, imperfections)
    estimator = MeshEstimator(hand, sequence_rng(*keys, ESTIMATOR_STREAM))
    records = []
    stats = {"frames": frames, "annotated_frames": 0, "contact_frames": 0, "peak_force_n": 0.0, "max_kpa": 0.0,
             "min_hand_height_m": float("inf"), "occluded_contact_frames": 0, "max_force_mismatch": 0.0,
             "camera_tilt_frames": int((rig.occ > 0.5).sum()), "estimator_failures": 0}
    prev_px = None
    for i in range(frames):
        st = sim.frame(i)
        R, T = rig.pose(i)
        cj = R @ st.joints[9] + T
        px = np.array([cc.fx * cj[0] / cj[2] + cc.cx, cc.fy * cj[1] / cj[2] + cc.cy])
        blur = (0.0, 0.0) if prev_px is None else tuple(0.5 * (px - prev_px))
        prev_px = px
        rgb, depth, mask, visible = renderer.render(i, st.surface, st.joints, R, T, blur, st.pressure,
                                                    st.finger_force)
        stats["min_hand_height_m"] = min(stats["min_hand_height_m"], float(-st.vertices[:, 2].max()))
        hidden = np.clip((VISIBLE_LOW - visible.mean()) / (VISIBLE_LOW - VISIBLE_OCCLUDED), 0.0, 1.0)
        est = estimator.estimate(st.pose, -R.T @ T, max(float(rig.occ[i]), float(hidden)))
        stats["estimator_failures"] += est is None
        estimated = {} if est is None else {"vertices_estimated": est[0].astype(np.float32),
                                            "joint_position_estimated": est[1].astype(np.float32)}
        ann = force = pmap = prange = None
        if st.annotated:
            baked = st.baked
            pmap, prange = layout.kpa_to_uv_map(baked.kpa_map)
            force = baked.force_counts
            ann = dict(st.annotation)
            vis = np.zeros((7, hand.num_vertices), dtype=np.float32)
            vis[0] = visible
            ann["visible_vertices"] = vis
            stats["annotated_frames"] += 1
            if baked.total_force_grid > 0.05:
                stats["contact_frames"] += 1
                stats["peak_force_n"] = max(stats["peak_force_n"], baked.total_force_grid)
                stats["max_kpa"] = max(stats["max_kpa"], float(baked.kpa_map.max()))
                mis = abs(baked.total_force_uv - baked.total_force_grid) / baked.total_force_grid
                stats["max_force_mismatch"] = max(stats["max_force_mismatch"], mis)
                cv = _contact_visibility(st.vertices, st.pressure, visible)
                if cv is not None and cv < 0.08:
                    stats["occluded_contact_frames"] += 1
        records.append(FrameRecord(
            frame=i + 1, image_jpeg=encode_jpeg(rgb, 90), depth_png=encode_png(depth), mask_png=encode_png(mask),
            hand_side=plan.side, ego_R=R.astype(np.float32), ego_T=T.astype(np.float32), annotation=ann,
            force=force, pressure_map=pmap, pressure_map_range=prange, estimated=estimated))
        if on_frame is not None:
            on_frame()
    stats = {k: (round(val, 6) if isinstance(val, float) else int(val) if isinstance(val, (bool, np.integer)) else val)
             for k, val in stats.items()}
    marker = {
        "hand_model": HAND_MODEL,
        "gesture": plan.gesture,
        "family": plan.family,
        "intensity": _intensity(plan.gesture),
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "hand_shape": asdict(participant.shape),
        "skin_tone": list(participant.skin),
        "tissue_stiffness": round(participant.stiffness, 6),
        "hover_gap_m": round(tl.hover_gap, 6) if tl.spec.hover else None,
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
