"""One sequence, frame by frame: targets -> contact solve -> camera -> renders -> pressure -> records.

Every sequence has its own RNG seeded by (seed, participant, sequence), so any sequence
is reproducible alone and the same seed gives byte-identical shards. Pressure per vertex
comes from the soft-tissue state (:mod:`egopressdiff.data.physics`), is smoothed over
the skin and baked to the 224x224 UV map (kPa, stored normalised + ``pressure_map_range``
in counts) and to the 105x185 force grid (counts): both hold the same total force.

Stored annotation (synthetic meaning): ``vertices``, ``joint_position``, ``normals`` in
world metres; ``betas`` = shape factors - 1 (4 used, 6 zeros); ``full_pose`` = global
rotation (axis-angle) + 15 joint rotations (axis-angle in each finger's rest frame,
thumb..pinky, base to tip; see :meth:`egopressdiff.data.hand.HandPose.full_pose`);
``transl`` = the wrist joint's world position; ``displacement`` zeros;
``visible_vertices`` row 0 = visibility of each vertex from the ego camera (1 visible,
0 hidden by the hand or the forearm or outside the image), rows 1-6 zeros (no static
cameras).
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from egopressdiff.data import layout
from egopressdiff.data.hand import HandModel, build_hand
from egopressdiff.data.physics import PressureBaker, SoftTissue, vertex_pressure
from egopressdiff.data.synth.camera import (
    DEFAULT_IMAGE_SIZE,
    DEPTH_TO_COLOR_R,
    DEPTH_TO_COLOR_T,
    CameraRig,
    color_camera,
    depth_camera,
)
from egopressdiff.data.synth.gestures import SequencePlan, _intensity
from egopressdiff.data.synth.imperfections import Imperfections
from egopressdiff.data.synth.participants import Participant
from egopressdiff.data.synth.profiles import GestureTimeline
from egopressdiff.data.synth.renderer import SequenceRenderer
from egopressdiff.data.synth.solver import ContactSolver
from egopressdiff.data.synth.version import GENERATOR_VERSION, HAND_MODEL, SYNTH_MARKER

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
                    image_size=DEFAULT_IMAGE_SIZE, imperfections: Imperfections | None = None,
                    tissue: SoftTissue | None = None, on_frame=None):
    """Simulate and render one sequence -> (frame records, config dict, k4a dict, stats dict)."""
    imperfections = imperfections or Imperfections()
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

