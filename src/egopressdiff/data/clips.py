"""ClipDataset: N-frame clips of consecutive annotated frames with the model inputs.

Clips
    A clip is ``clip_length`` consecutive frame numbers of one sequence that are
    all annotated and present in the colour, depth and pressure shards, so a clip
    never crosses a gap (a missing frame number, a dropped camera frame) or an
    unannotated frame. In each such run, clips start every ``stride`` frames;
    when the stride does not end exactly at the run's end, one more clip aligned
    to the end is added so no annotated frame is left out.

Too-short sequences
    A sequence without a run of ``clip_length`` frames is **reported, not
    dropped silently**: by default a DataError names it (and its longest run);
    with ``skip_short=True`` it is left out and listed in ``dataset.skipped``
    (and a warning says how many).

Per-frame inputs
    Built by :class:`~egopressdiff.data.processor.PressureInputProcessor` from the frames,
    calibration and annotation read here (crop, registered depth, pose map, camera-frame
    vertices, UV mask, optional ``uv_cond``; its module doc says how), plus the targets:
    ``pressure``, the kPa UV map at ``uv_size`` (area-resampled from 224 when different).
    ``augment=True`` draws the processor's per-clip augmentation.

Mesh source
    ``mesh="annotated"`` (default, the paper's protocol) feeds the annotation's
    ``vertices`` / ``joint_position``; ``mesh="estimated"`` the estimated-mesh track
    (``vertices_estimated`` / ``joint_position_estimated``: what a monocular hand-mesh
    estimator gives; :meth:`EgoPressureReader.load_estimated_mesh`). Targets and the
    annotation flag are the annotation's either way. A sequence without the track gives
    a one-line DataError naming it. ``mesh`` may also be a folder of the user's own
    meshes, ``<participant>/<sequence>.npz`` (:mod:`egopressdiff.data.mesh_files`), or a
    :class:`~egopressdiff.data.mesh_files.MeshFolder`.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from egopressdiff.data import layout
from egopressdiff.data.processor import (  # noqa: F401  (re-exported: the processor's names, as before)
    CROP_MARGIN,
    DEPTH_SCALE_M,
    FINGER_COLORS,
    HEIGHT_SCALE_M,
    MIN_CROP_SIDE_PX,
    SMOOTH_WINDOW,
    UV_COND_CHANNELS,
    VISIBILITY_TOL_M,
    PressureInputProcessor,
    crop_intrinsics,
    draw_pose_map,
    hand_crop_boxes,
    smooth_boxes,
)
from egopressdiff.data.reader import EgoPressureReader
from egopressdiff.data.splits import split_participants
from egopressdiff.errors import ConfigError, DataError

MESH_SOURCES = ("annotated", "estimated")  # or a folder of the user's own meshes (mesh_files)


def resolve_mesh(mesh):
    """'annotated' / 'estimated' as they are; anything else is a folder of mesh files -> MeshFolder."""
    from pathlib import Path

    from egopressdiff.data.mesh_files import MeshFolder

    if isinstance(mesh, MeshFolder) or mesh in MESH_SOURCES:
        return mesh
    if mesh is None or not str(mesh).strip() or not Path(mesh).is_dir():
        raise ConfigError(f"mesh must be one of {MESH_SOURCES} or a folder of <participant>/<sequence>.npz mesh "
                          f"files; {mesh!r} is neither")
    return MeshFolder(mesh)

try:  # torch is a dependency; the import guard keeps ``reader``-only use light
    import torch
    from torch.utils.data import Dataset
except ImportError:  # pragma: no cover
    torch = None
    Dataset = object

def _resample_uv(kpa: np.ndarray, size: int) -> np.ndarray:
    if kpa.shape[-1] == size:
        return kpa
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(m.astype(np.float32), "F").resize((size, size), Image.BOX))
                     for m in kpa]).astype(np.float32)


def longest_runs(frames: np.ndarray) -> list[tuple[int, int]]:
    """Runs of consecutive frame numbers in sorted ``frames`` as (first, length)."""
    f = np.asarray(frames, dtype=np.int64)
    if len(f) == 0:
        return []
    breaks = np.nonzero(np.diff(f) != 1)[0]
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks + 1, [len(f)]])
    return [(int(f[s]), int(e - s)) for s, e in zip(starts, ends)]


def clip_starts(run_length: int, clip_length: int, stride: int) -> list[int]:
    """Offsets of clips in a run: every ``stride``, plus one aligned to the run's end if needed."""
    if run_length < clip_length:
        return []
    starts = list(range(0, run_length - clip_length + 1, stride))
    if starts[-1] != run_length - clip_length:
        starts.append(run_length - clip_length)
    return starts


class ClipDataset(Dataset):
    """Clips of ``clip_length`` consecutive annotated frames with the model inputs (see module doc).

    Participants come from ``participants`` (a list), or ``split`` ('train',
    'val', 'test', 'all'; see :mod:`egopressdiff.data.splits`), default all;
    ``sequences`` optionally restricts to sequence names.
    """

    def __init__(self, root, participants=None, split: str | None = None, clip_length: int = 16, stride: int = 8,
                 crop_size: int = 64, uv_size: int = layout.UV_SIZE, uv_conditioning: bool = False,
                 uv_cond_size: int = 64, augment: bool = False, sequences=None, skip_short: bool = False,
                 reader: EgoPressureReader | None = None, targets: bool = True, mesh: str = "annotated"):
        if clip_length < 1 or stride < 1 or crop_size < 8 or uv_size < 8 or uv_cond_size < 8:
            raise ConfigError("clip_length and stride must be >= 1; crop_size, uv_size and uv_cond_size >= 8")
        self.mesh = resolve_mesh(mesh)
        self.reader = reader if reader is not None else EgoPressureReader(root)
        self.clip_length, self.stride = int(clip_length), int(stride)
        self.crop_size, self.uv_size = int(crop_size), int(uv_size)
        self.uv_conditioning, self.uv_cond_size = bool(uv_conditioning), int(uv_cond_size)
        self.augment = bool(augment)
        # without targets (prediction) a frame needs no pressure row and items carry no "pressure"
        self.targets = bool(targets)
        all_ps = self.reader.participants()
        if participants is not None and split is not None:
            raise ConfigError("give participants or split, not both")
        if participants is not None:
            unknown = sorted(set(participants) - set(all_ps))
            if unknown:
                raise DataError(f"unknown participants {unknown}", path=self.reader.root)
            ps = sorted(set(participants))
        else:
            ps = split_participants(all_ps, split or "all")
        pairs = self.reader.all_sequences(ps)
        if sequences is not None:
            wanted = set(sequences)
            pairs = [(p, s) for p, s in pairs if s in wanted or (p, s) in wanted]
            missing = wanted - {s for _, s in pairs} - set(pairs)
            if missing:
                raise DataError(f"unknown sequences {sorted(map(str, missing))}", path=self.reader.root)
        self.sequences = pairs
        self.clips: list[tuple[str, str, int]] = []  # (participant, sequence, first frame)
        self.skipped: list[tuple[str, str, int]] = []  # (participant, sequence, longest run)
        for p, s in pairs:
            usable = self.usable_frames(p, s)
            runs = longest_runs(usable)
            n_before = len(self.clips)
            for first, length in runs:
                self.clips.extend((p, s, first + o) for o in clip_starts(length, self.clip_length, self.stride))
            if len(self.clips) == n_before:
                best = max(runs, key=lambda r: r[1]) if runs else (0, 0)
                if not skip_short:
                    where = f"frames {best[0]}-{best[0] + best[1] - 1}" if best[1] else "none"
                    raise DataError(
                        f"sequence has no run of {self.clip_length} consecutive annotated frames (longest run: "
                        f"{best[1]}, {where}); use a shorter clip_length or skip_short=True to skip and list such "
                        "sequences", path=layout.sequence_dir(self.reader.root, p, s), sequence=s)
                self.skipped.append((p, s, best[1]))
        if self.skipped:
            warnings.warn(f"ClipDataset: skipped {len(self.skipped)} sequences shorter than {self.clip_length} "
                          f"annotated frames: {', '.join(s for _, s, _ in self.skipped[:5])}"
                          f"{' ...' if len(self.skipped) > 5 else ''}", stacklevel=2)

    def usable_frames(self, participant: str, sequence: str) -> np.ndarray:
        """Annotated frames that also have colour and depth rows, and pressure rows with targets (sorted)."""
        r = self.reader
        r.validate_sequence(participant, sequence)
        f = r.annotated_frames(participant, sequence)
        shards = (layout.COLOR_SHARD, layout.DEPTH_SHARD) + ((layout.PRESSURE_SHARD,) if self.targets else ())
        for shard in shards:
            f = np.intersect1d(f, r.shard_frames(participant, sequence, shard))
        return f

    def __len__(self) -> int:
        return len(self.clips)

    def clip_frames(self, index: int) -> tuple[str, str, np.ndarray]:
        p, s, first = self.clips[index]
        return p, s, np.arange(first, first + self.clip_length, dtype=np.int64)

    def __getitem__(self, index: int) -> dict:
        p, s, frames = self.clip_frames(index)
        rng = None
        if self.augment:
            rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,)).item()))
        return self.load_frames(p, s, frames, rng=rng)

    def load_frames(self, participant: str, sequence: str, frames, rng: np.random.Generator | None = None) -> dict:
        """Model inputs for any list of annotated frames of one sequence (same keys/shapes as an item)."""
        return build_inputs(self.reader, participant, sequence, frames, crop_size=self.crop_size,
                            uv_size=self.uv_size, uv_conditioning=self.uv_conditioning,
                            uv_cond_size=self.uv_cond_size, rng=rng, targets=self.targets, mesh=self.mesh)


def build_inputs(reader: EgoPressureReader, participant: str, sequence: str, frames, *, crop_size: int = 64,
                 uv_size: int = layout.UV_SIZE, uv_conditioning: bool = False, uv_cond_size: int = 64,
                 rng: np.random.Generator | None = None, targets: bool = True, mesh: str = "annotated") -> dict:
    """Per-frame model inputs of ``frames`` (annotated) of one sequence, as torch tensors (see module doc).

    Reads the frames and calibration and hands them to :class:`PressureInputProcessor`; with
    ``targets`` also the ground-truth ``pressure`` (kPa at ``uv_size``); ``mesh`` picks the mesh
    source (module doc).
    """
    frames = np.asarray(frames, dtype=np.int64).reshape(-1)
    if len(frames) == 0:
        raise DataError("no frames requested", sequence=sequence)
    ann_path = layout.shard_path(reader.root, participant, sequence, layout.ANNOTATION_SHARD)
    anns = []
    for f in frames:
        a = reader.load_annotation(participant, sequence, int(f))
        if not a.has_annotation:
            raise DataError("frame is not annotated (no hand mesh to build inputs from)", sequence=sequence,
                            frame=int(f), path=ann_path)
        anns.append(a)
    mesh = resolve_mesh(mesh)
    if mesh == "estimated":  # the estimator's mesh in place of the annotation's
        anns = [_with_estimated_mesh(reader, participant, sequence, a) for a in anns]
    elif mesh != "annotated":  # the user's own meshes (a MeshFolder)
        anns = [_with_mesh_file(mesh, participant, sequence, a) for a in anns]
    intr = reader.intrinsics(participant, sequence)
    w, h = reader.rgb_size(participant, sequence, int(frames[0]))
    if (w, h) != (intr.width, intr.height):
        intr = intr.scaled(w, h)
    processor = PressureInputProcessor(crop_size=crop_size, uv_size=uv_size, uv_conditioning=uv_conditioning,
                                       uv_cond_size=uv_cond_size)
    item = processor(images=[_ShardImage(reader, participant, sequence, int(f)) for f in frames],
                     depth=_LazyFrames(lambda f: reader.load_depth_raw(participant, sequence, f), frames),
                     vertices=np.stack([a.vertices for a in anns]), joints=np.stack([a.joints for a in anns]),
                     ego_R=np.stack([a.ego_R for a in anns]), ego_T=np.stack([a.ego_T for a in anns]),
                     intrinsics=intr, depth_calibration=reader.depth_calibration(participant, sequence),
                     atlas=reader.atlas(participant, sequence), rng=rng, sequence=sequence, frames=frames,
                     path=ann_path)
    item["frame"] = torch.from_numpy(frames.copy())
    item["participant"] = participant
    item["sequence"] = sequence
    item["hand_side"] = anns[0].hand_side
    if targets:
        pressure = np.stack([reader.load_pressure(participant, sequence, int(f)) for f in frames])
        item["pressure"] = torch.from_numpy(_resample_uv(pressure, uv_size))
    return item


def _with_estimated_mesh(reader: EgoPressureReader, participant: str, sequence: str, ann):
    import dataclasses

    v, j = reader.load_estimated_mesh(participant, sequence, ann.frame)
    return dataclasses.replace(ann, vertices=v, joints=j)


def _with_mesh_file(folder, participant: str, sequence: str, ann):
    import dataclasses

    v, j = folder.mesh(participant, sequence, ann.frame, ann.ego_R, ann.ego_T)
    return dataclasses.replace(ann, vertices=v, joints=j)


class _LazyFrames:
    """A read-on-index list of per-frame arrays (the processor takes one frame at a time)."""

    def __init__(self, load, frames):
        self.load, self.frames = load, frames

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i):
        return self.load(int(self.frames[i]))


class _ShardImage:
    """One colour frame of a sequence, cropped without decoding more of the JPEG than the crop needs."""

    def __init__(self, reader: EgoPressureReader, participant: str, sequence: str, frame: int):
        self.reader, self.participant, self.sequence, self.frame = reader, participant, sequence, frame

    def crop(self, box, size: int) -> np.ndarray:
        return _crop_rgb(self.reader, self.participant, self.sequence, self.frame, box, size)


def _crop_rgb(reader: EgoPressureReader, participant: str, sequence: str, frame: int, box, size: int) -> np.ndarray:
    """Crop ``box`` (full-resolution pixel edges x0, y0, x1, y1) of a colour frame, resized to ``size``.

    The JPEG is decoded at the smallest power-of-two reduction that still leaves
    at least ``size`` pixels across the box (real ego frames are 1920x1080, crops ~64-256).
    """
    from PIL import Image

    side = box[2] - box[0]
    reduce = 1
    while reduce < 8 and side / (reduce * 2) >= size:
        reduce *= 2
    if reduce == 1:
        img = Image.fromarray(reader.load_rgb(participant, sequence, frame))
        return np.asarray(img.crop(box).resize((size, size), Image.BILINEAR))
    arr, (full_w, _) = reader.load_rgb(participant, sequence, frame, reduce=reduce)
    r = full_w / arr.shape[1]  # actual reduction (edge coordinates scale by 1/r)
    e = [b / r for b in box]
    ix0, iy0 = math.floor(e[0]), math.floor(e[1])
    ix1, iy1 = math.ceil(e[2]), math.ceil(e[3])
    part = Image.fromarray(arr).crop((ix0, iy0, ix1, iy1))  # zero padding outside the image
    sub = (e[0] - ix0, e[1] - iy0, e[2] - ix0, e[3] - iy0)
    return np.asarray(part.resize((size, size), Image.BILINEAR, box=sub))
