"""Facts of the EgoPressure on-disk layout: paths, columns, shapes and units.

One place for every constant the writer (``synth``) and the reader share, so
they cannot drift apart (the facts are listed in the README, "The EgoPressure layout").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# --- cameras ---------------------------------------------------------------
EGO_CAMERA = "d"  # camera letter of the egocentric camera in file names
EGO_CAMERA_CALIB_KEY = "0"  # its key under "camera_calibrations" in the config JSON

# --- shards ----------------------------------------------------------------
COLOR_SHARD = f"cam-{EGO_CAMERA}.color.parquet"  # column "image": struct{bytes, path}, JPEG
DEPTH_SHARD = f"cam-{EGO_CAMERA}.depth.parquet"  # column "depth": struct{bytes, path}, uint16 PNG, mm
MASK_SHARD = f"cam-{EGO_CAMERA}.mask.parquet"  # column "mask": struct{bytes, path}, PNG
PRESSURE_SHARD = "pressure.parquet"  # force, pressure_map, pressure_map_range
ANNOTATION_SHARD = "annotation.parquet"  # MANO + ego pose
SHARDS = (COLOR_SHARD, DEPTH_SHARD, MASK_SHARD, PRESSURE_SHARD, ANNOTATION_SHARD)

FRAME_COLUMN = "frame"  # int, frames numbered from 1

# --- shapes ----------------------------------------------------------------
NUM_VERTICES = 778
NUM_JOINTS = 21
FORCE_GRID_SHAPE = (105, 185)  # Sensel Morph pad cells (rows, cols)
UV_SIZE = 224  # UV-pressure maps are 224x224
ANNOTATION_SHAPES = {
    "vertices": (NUM_VERTICES, 3),
    "joint_position": (NUM_JOINTS, 3),
    "betas": (10,),
    "full_pose": (48,),
    "transl": (3,),
    "normals": (NUM_VERTICES, 3),
    "displacement": (NUM_VERTICES,),
    "ego_R": (3, 3),
    "ego_T": (3,),
    "visible_vertices": (7, NUM_VERTICES),
}
# the estimated-mesh track: extra annotation.parquet columns (a monocular estimator's mesh, world frame;
# null where it failed). Our synthetic data has them; the official toolkit ignores them; real data lacks them.
ESTIMATED_SHAPES = {
    "vertices_estimated": (NUM_VERTICES, 3),
    "joint_position_estimated": (NUM_JOINTS, 3),
}

# Joint order: 0 wrist; 1-4 thumb; 5-8 index; 9-12 middle; 13-16 ring; 17-20 pinky (base -> tip)
FINGERS = ("thumb", "index", "middle", "ring", "pinky")
FINGER_JOINTS = {f: [1 + 4 * i + k for k in range(4)] for i, f in enumerate(FINGERS)}
SKELETON_EDGES = [(0, 1 + 4 * i) for i in range(5)] + [
    (1 + 4 * i + k, 2 + 4 * i + k) for i in range(5) for k in range(3)
]

# --- the touchpad (world frame: pad is z = 0, +z points down through the pad) ----
PAD_HALF_X = 0.120  # metres
PAD_HALF_Y = 0.06875  # metres

# --- units -----------------------------------------------------------------
COUNTS_PER_NEWTON = 1736.0
SENSEL_CELL_SIZE_M = 0.00125  # 1.25 mm cells
KPA_PER_COUNT = 1.0 / COUNTS_PER_NEWTON / (SENSEL_CELL_SIZE_M**2) / 1000.0  # ~0.3687 kPa per count
CELL_AREA_M2 = SENSEL_CELL_SIZE_M**2


def counts_to_kpa(counts):
    """Sensel counts (per cell) -> pressure in kPa."""
    return np.asarray(counts, dtype=np.float32) * np.float32(KPA_PER_COUNT)


def kpa_to_counts(kpa):
    """Pressure in kPa -> Sensel counts (per cell)."""
    return np.asarray(kpa, dtype=np.float32) / np.float32(KPA_PER_COUNT)


def counts_to_newtons(counts):
    return np.asarray(counts, dtype=np.float64) / COUNTS_PER_NEWTON


def uv_map_to_kpa(pressure_map, pressure_map_range):
    """Stored normalised UV map (224*224 flat or 224x224) + range -> kPa map (224x224).

    The real data stores the UV map normalised; counts = clip(map, 0) * range[1].
    """
    m = np.asarray(pressure_map, dtype=np.float32).reshape(UV_SIZE, UV_SIZE)
    rng = np.asarray(pressure_map_range, dtype=np.float32).reshape(-1)
    return counts_to_kpa(np.clip(m, 0.0, None) * rng[1])


def kpa_to_uv_map(kpa_map):
    """kPa UV map -> (normalised flat map, range [min, max] in counts), as the data stores it."""
    counts = kpa_to_counts(np.clip(np.asarray(kpa_map, dtype=np.float32), 0.0, None))
    hi = float(counts.max())
    lo = float(counts.min())
    norm = counts / hi if hi > 0 else np.zeros_like(counts)
    return norm.reshape(-1).astype(np.float32), np.array([lo, hi], dtype=np.float32)


def uv_pixel_of(u, v, size: int = UV_SIZE):
    """UV coordinate -> (column, row) pixel position: col = u*(W-1), row = (1-v)*(H-1)."""
    u = np.asarray(u, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    return u * (size - 1), (1.0 - v) * (size - 1)


# --- paths -----------------------------------------------------------------
def config_path(root: Path, participant: str, sequence: str) -> Path:
    return Path(root) / "configs" / participant / f"{sequence}.json"


def k4a_calibration_path(root: Path, participant: str, sequence: str, camera: str = EGO_CAMERA) -> Path:
    return Path(root) / "configs" / participant / f"{sequence}_k4a" / f"cam-{camera}.k4a_calibration.json"


def sequence_dir(root: Path, participant: str, sequence: str) -> Path:
    return Path(root) / "data" / participant / sequence


def shard_path(root: Path, participant: str, sequence: str, shard: str) -> Path:
    return sequence_dir(root, participant, sequence) / shard


# --- names -----------------------------------------------------------------
# Real EgoPressure gesture names (docs/DATA.md of the official toolkit), by family.
# `no-contact` variants hover just above the pad; they form their own family "hover".
GESTURE_FAMILIES = {
    "palm_press": ["press_palm_high_x5", "press_palm_low_x5",
                   "press_palm-and-fingers_high_x5", "press_palm-and-fingers_low_x5"],
    "finger_press": ["press_fingers_high_5x", "press_fingers_low_5x"],
    "one_by_one": ["press_flat_onebyone_high_3x", "press_flat_onebyone_low_3x",
                   "press_cupped_onebyone_high_3x", "press_cupped_onebyone_low_3x"],
    "index_press": ["index_press_high_x5", "index_press_low_x5"],
    "index_drag": ["index_press_pull_x5", "index_press_push_x5",
                   "index_press_rotate-left_x5", "index_press_rotate-right_x5", "draw_word_5x"],
    "pinch": ["pinch_thumb-down_high_5x", "pinch_thumb-down_low_5x", "pinch-zoom_5x"],
    "hover": ["press_palm_no-contact_x5", "press_palm-and-fingers_no-contact_x5",
              "press_fingers_no-contact_5x", "index_press_no-contact_x5", "pinch_thumb-down_no-contact_5x"],
}
GESTURE_TO_FAMILY = {g: fam for fam, gs in GESTURE_FAMILIES.items() for g in gs}


def family_of_gesture(gesture: str) -> str:
    """Gesture name -> family; unknown real gestures are classified by their name's pattern."""
    if gesture in GESTURE_TO_FAMILY:
        return GESTURE_TO_FAMILY[gesture]
    if "no-contact" in gesture:
        return "hover"
    for prefix, fam in (("press_palm", "palm_press"), ("press_fingers", "finger_press"),
                        ("press_flat_onebyone", "one_by_one"), ("press_cupped_onebyone", "one_by_one"),
                        ("index_press_high", "index_press"), ("index_press_low", "index_press"),
                        ("index_press_", "index_drag"), ("draw", "index_drag"), ("pinch", "pinch"),
                        ("grasp", "grasp"), ("pull-towards", "surface_motion"), ("push-away", "surface_motion"),
                        ("type", "surface_motion"), ("calibration", "calibration")):
        if gesture.startswith(prefix):
            return fam
    return gesture or "unknown"


def participant_name(index: int) -> str:
    """0-based index -> ``p_001`` style participant id."""
    return f"p_{index + 1:03d}"


def sequence_name(participant: str, gesture: str, side: str) -> str:
    if side not in ("left", "right"):
        raise ValueError(f"hand side must be 'left' or 'right', got {side!r}")
    return f"{participant}_{gesture}_{side}"


def parse_sequence_name(sequence: str) -> tuple[str, str, str]:
    """``p_001_press_index_right`` -> (participant, gesture, side). Unknown forms give gesture ''."""
    parts = sequence.split("_")
    side = parts[-1] if parts and parts[-1] in ("left", "right") else ""
    if len(parts) >= 3 and parts[0] == "p":
        participant = f"{parts[0]}_{parts[1]}"
        gesture = "_".join(parts[2:-1] if side else parts[2:])
    else:
        participant, gesture = "", "_".join(parts[:-1] if side else parts)
    return participant, gesture, side


def gesture_family(sequence: str) -> str:
    _, gesture, _ = parse_sequence_name(sequence)
    return family_of_gesture(gesture)
