"""Shared test fixtures: tiny datasets in the EgoPressure layout.

* ``fake_mano_dir``: a folder with small stand-in ``MANO_UV_{right,left}.obj``
  files (a 778-vertex grid, not MANO) and ``EGOPRESSDIFF_MANO_DIR`` pointing to it.
* ``make_sequence``: a function writing one small sequence with the real
  writer (a flat 778-vertex "hand" sheet over the pad, a top-down ego camera
  with head jitter, depth in a shifted depth camera), with options for
  unannotated, missing and dropped frames.
* ``fake_root``: a session dataset of 3 participants made with ``make_sequence``.
* ``synth_root``: a small dataset from the synthetic generator.

Importing this file registers the test-only toy model (tests/toy_model.py): model_type
``toy``, ``data.source: toy`` and the run preset ``toy``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import toy_model
from egopressdiff.data import layout

toy_model.register()

GRID_ROWS, GRID_COLS = 26, 30  # 780 grid points; the first 778 are the "hand"
IMAGE_W, IMAGE_H = 64, 48
COLOR = dict(fx=110.0, fy=110.0, cx=31.5, cy=23.5, width=IMAGE_W, height=IMAGE_H)
DEPTH = dict(fx=50.0, fy=50.0, cx=19.5, cy=19.5, width=40, height=40)
DEPTH_TO_COLOR_T = np.array([0.02, 0.0, 0.0])  # metres
CAMERA_HEIGHT = 0.5  # camera 0.5 m above the pad, looking straight down (+z world)


def grid_atlas_obj() -> str:
    """OBJ text of a 778-vertex grid with UVs (a stand-in for MANO's UV file)."""
    lines = []
    n = layout.NUM_VERTICES
    for k in range(n):
        r, c = divmod(k, GRID_COLS)
        lines.append(f"v {c * 0.0035 - 0.05:.5f} {r * 0.0032 - 0.04:.5f} 0.0")
    for k in range(n):
        r, c = divmod(k, GRID_COLS)
        lines.append(f"vt {0.05 + 0.9 * c / (GRID_COLS - 1):.5f} {0.05 + 0.9 * r / (GRID_ROWS - 1):.5f}")
    for r in range(GRID_ROWS - 1):
        for c in range(GRID_COLS - 1):
            a, b, d, e = r * GRID_COLS + c, r * GRID_COLS + c + 1, (r + 1) * GRID_COLS + c, (r + 1) * GRID_COLS + c + 1
            if max(a, b, d, e) < n:
                lines.append(f"f {a + 1}/{a + 1} {b + 1}/{b + 1} {e + 1}/{e + 1}")
                lines.append(f"f {a + 1}/{a + 1} {e + 1}/{e + 1} {d + 1}/{d + 1}")
    return "\n".join(lines) + "\n"


def hand_vertices(frame: int) -> np.ndarray:
    """The fake hand sheet (778, 3), world metres, moving and pressing over time."""
    k = np.arange(layout.NUM_VERTICES)
    r, c = np.divmod(k, GRID_COLS)
    x = c * 0.0035 - 0.05 + 0.01 * np.sin(frame / 4.0)
    y = r * 0.0032 - 0.04
    z = -0.004 + 0.006 * np.sin(frame / 3.0) - 0.01 * np.exp(-((x - 0.01) ** 2 + y**2) / 0.001)
    return np.stack([x, y, z], axis=1)


def _project(P, intr):
    return intr["fx"] * P[:, 0] / P[:, 2] + intr["cx"], intr["fy"] * P[:, 1] / P[:, 2] + intr["cy"]


def make_sequence_files(root, participant: str, sequence: str, n_frames: int = 24, *, unannotated=(),
                        missing=(), dropped_color=(), side: str = "right", seed: int = 0, synthetic: bool = False):
    """Write one fake sequence with the real writer; returns the list of FrameRecords."""
    from egopressdiff.data.calibration import build_config_json, build_k4a_calibration
    from egopressdiff.data.writer import FrameRecord, encode_jpeg, encode_png, write_sequence

    rng = np.random.default_rng(seed)
    records = []
    joints_idx = np.linspace(0, layout.NUM_VERTICES - 1, layout.NUM_JOINTS).astype(int)
    for f in range(1, n_frames + 1):
        if f in missing:
            continue
        V = hand_vertices(f)
        R = np.eye(3)
        T = np.array([0.0, 0.0, CAMERA_HEIGHT]) + rng.normal(0, 0.004, 3) * [1, 1, 0]  # head jitter
        Vc = V @ R.T + T
        img = rng.integers(90, 110, (IMAGE_H, IMAGE_W, 3)).astype(np.uint8)
        u, v = _project(Vc, COLOR)
        ui, vi = np.clip(np.rint(u).astype(int), 0, IMAGE_W - 1), np.clip(np.rint(v).astype(int), 0, IMAGE_H - 1)
        img[vi, ui] = (220, 170, 140)
        mask = np.zeros((IMAGE_H, IMAGE_W), np.uint8)
        mask[vi, ui] = 255
        depth = np.full((DEPTH["height"], DEPTH["width"]), int(round(T[2] * 1000)), np.uint16)  # the pad, head-on
        Vd = Vc - DEPTH_TO_COLOR_T
        du, dv = _project(Vd, DEPTH)
        dui, dvi = np.rint(du).astype(int), np.rint(dv).astype(int)
        ok = (dui >= 0) & (dui < DEPTH["width"]) & (dvi >= 0) & (dvi < DEPTH["height"])
        depth[dvi[ok], dui[ok]] = np.rint(Vd[ok, 2] * 1000).astype(np.uint16)
        depth[0, :3] = 0  # a few holes
        ann = force = pmap = prange = None
        if f not in unannotated:
            ann = {"vertices": V, "joint_position": V[joints_idx], "betas": np.zeros(10), "full_pose": np.zeros(48),
                   "transl": np.zeros(3), "normals": np.tile([0, 0, -1.0], (778, 1)), "displacement": np.zeros(778),
                   "visible_vertices": np.ones((7, 778))}
            kpa = np.zeros((layout.UV_SIZE, layout.UV_SIZE), np.float32)
            kpa[60:120, 80:140] = 5.0 + f
            pmap, prange = layout.kpa_to_uv_map(kpa)
            force = np.zeros(layout.FORCE_GRID_SHAPE, np.float32)
            force[40:50, 80:90] = 10.0 * f
        records.append(FrameRecord(
            frame=f, image_jpeg=None if f in dropped_color else encode_jpeg(img), depth_png=encode_png(depth),
            mask_png=encode_png(mask), hand_side=side, ego_R=R, ego_T=T, annotation=ann, force=force,
            pressure_map=pmap, pressure_map_range=prange))
    config = build_config_json(COLOR, {"id": participant, "hand_side": side},
                               {"egopressdiff_synthetic": True} if synthetic else {})
    k4a = build_k4a_calibration(DEPTH, np.eye(3), DEPTH_TO_COLOR_T, COLOR)
    write_sequence(root, participant, sequence, records, config, k4a)
    return records


@pytest.fixture(scope="session")
def fake_mano_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("mano")
    text = grid_atlas_obj()
    (d / "MANO_UV_right.obj").write_text(text)
    (d / "MANO_UV_left.obj").write_text(text)
    old = os.environ.get("EGOPRESSDIFF_MANO_DIR")
    os.environ["EGOPRESSDIFF_MANO_DIR"] = str(d)
    yield d
    if old is None:
        os.environ.pop("EGOPRESSDIFF_MANO_DIR", None)
    else:
        os.environ["EGOPRESSDIFF_MANO_DIR"] = old


@pytest.fixture(scope="session")
def make_sequence():
    return make_sequence_files


@pytest.fixture(scope="session")
def fake_root(tmp_path_factory, fake_mano_dir) -> Path:
    """3 participants; p_001 has a gap (frame 12 missing), unannotated frames 1-2 and 20, and a
    frame dropped by the colour camera in its second sequence."""
    root = tmp_path_factory.mktemp("fake_data")
    make_sequence_files(root, "p_001", "p_001_press_palm_high_x5_right", 24, unannotated={1, 2, 20}, missing={12})
    make_sequence_files(root, "p_001", "p_001_index_press_high_x5_left", 20, side="left", dropped_color={7}, seed=1)
    make_sequence_files(root, "p_002", "p_002_pinch-zoom_5x_right", 18, seed=2)
    make_sequence_files(root, "p_003", "p_003_press_fingers_low_5x_right", 16, seed=3)
    return root


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    """A small dataset from the synthetic generator (2 participants x 2 sequences x 20 frames)."""
    from egopressdiff.data.synth import generate_dataset

    root = tmp_path_factory.mktemp("synth_data")
    generate_dataset(root, participants=2, sequences=2, frames=20, seed=0, image_size=(96, 72), progress=False)
    return root
