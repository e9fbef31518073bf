"""ClipDataset: N-frame clips of consecutive annotated frames with the model inputs (DESIGN §2.3).

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

Per-frame inputs (shapes in docs/architecture.md)
    * crop box: the box around the hand's projected vertices, centre smoothed
      over the clip with a moving average of :data:`SMOOTH_WINDOW` frames and
      one side length for the whole clip (the largest, times :data:`CROP_MARGIN`),
      so the crop does not jitter or zoom from frame to frame;
    * ``rgb``: that crop, resized to ``crop_size`` (antialiased bilinear);
    * ``depth``: raw depth registered straight into the crop's virtual pinhole
      camera (z-buffered, see :func:`register_depth_to_color`), normalised as
      ``clip((d - d_ref) / 0.15 m, -1, 1)`` with ``d_ref`` the median camera
      depth of the hand's vertices over the clip; holes are 0 and
      ``depth_valid`` marks measured pixels;
    * ``pose_map``: the 21 joints projected into the crop, bones drawn with
      per-finger colours (:data:`FINGER_COLORS`), values in [0, 1];
    * ``vertices``: camera frame; ``pressure``: kPa UV map at ``uv_size``
      (area-resampled from 224 when different); ``uv_mask``: the atlas's mask;
    * ``uv_cond`` (``uv_conditioning=True``), 7 channels at ``uv_cond_size``,
      all zero outside the UV mask: 0-2 RGB of the crop sampled (bilinear) where
      the texel's surface point projects; 3 observed depth there (same
      normalisation; 0 on holes); 4 the texel's own camera depth (same
      normalisation); 5 visibility: texel depth within 1 cm of the observed depth,
      or, where no depth was measured, within 1 cm of the mesh's own z-buffer;
      6 height above the pad: ``clip(-z_world / 0.02 m, -1, 1)``.

Augmentation (``augment=True``, per clip so frames stay consistent): crop box
scale x[0.9, 1.1] and shift of up to 5 % of its side, brightness x[0.8, 1.2],
contrast x[0.8, 1.2].
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from egopressdiff.data import layout
from egopressdiff.data.calibration import ColorIntrinsics, project, register_depth_to_color
from egopressdiff.data.reader import EgoPressureReader
from egopressdiff.data.splits import split_participants
from egopressdiff.errors import ConfigError, DataError

try:  # torch is a dependency; the import guard keeps ``reader``-only use light
    import torch
    from torch.utils.data import Dataset
except ImportError:  # pragma: no cover
    torch = None
    Dataset = object

DEPTH_SCALE_M = 0.15  # depth normalisation: +-15 cm around the hand maps to [-1, 1]
HEIGHT_SCALE_M = 0.02  # uv_cond height above pad: 2 cm maps to 1
VISIBILITY_TOL_M = 0.01  # a texel is visible if within 1 cm of the surface seen from the camera
CROP_MARGIN = 1.3  # crop side = margin x the larger side of the projected-vertex box
MIN_CROP_SIDE_PX = 16.0
SMOOTH_WINDOW = 5  # frames in the moving average of crop centres
UV_COND_CHANNELS = 7
FINGER_COLORS = {  # RGB in [0, 255]; a bone takes its finger's colour
    "thumb": (255, 64, 64),
    "index": (255, 200, 0),
    "middle": (64, 220, 64),
    "ring": (0, 170, 255),
    "pinky": (220, 80, 255),
}


def _finger_of_joint(j: int) -> str:
    return layout.FINGERS[(j - 1) // 4]


def smooth_boxes(centres: np.ndarray, sides: np.ndarray, window: int = SMOOTH_WINDOW) -> tuple[np.ndarray, float]:
    """Smooth per-frame crop boxes over a clip.

    ``centres`` (N, 2) pixel centres, ``sides`` (N,) box sides. Returns the
    centres after a centred moving average of ``window`` frames (edges padded
    with the end values) and one side for the whole clip (the maximum).
    """
    c = np.asarray(centres, dtype=np.float64)
    n = len(c)
    w = max(1, min(int(window), n))
    if w > 1:
        half_l, half_r = (w - 1) // 2, w // 2
        padded = np.concatenate([np.repeat(c[:1], half_l, 0), c, np.repeat(c[-1:], half_r, 0)])
        kernel = np.ones(w) / w
        c = np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(2)], axis=1)
    return c, float(np.max(sides))


def crop_intrinsics(intr: ColorIntrinsics, x0: float, y0: float, side: float, size: int) -> ColorIntrinsics:
    """Pinhole intrinsics of a ``size`` x ``size`` crop of box (x0, y0, side) of the image (pixel centres)."""
    s = size / side
    return ColorIntrinsics(intr.fx * s, intr.fy * s, (intr.cx - x0 + 0.5) * s - 0.5, (intr.cy - y0 + 0.5) * s - 0.5,
                           size, size)


def draw_pose_map(joints_px: np.ndarray, size: int) -> np.ndarray:
    """21 joints in crop pixels -> (3, size, size) float32 skeleton image in [0, 1], per-finger colours."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(img)
    width = max(1, round(size / 48))
    j = np.asarray(joints_px, dtype=np.float64)
    for a, b in layout.SKELETON_EDGES:
        if np.all(np.isfinite(j[[a, b]])):
            draw.line([tuple(j[a]), tuple(j[b])], fill=FINGER_COLORS[_finger_of_joint(b)], width=width)
    r = width
    for k in range(len(j)):
        if np.all(np.isfinite(j[k])):
            col = (255, 255, 255) if k == 0 else FINGER_COLORS[_finger_of_joint(k)]
            draw.ellipse([j[k, 0] - r, j[k, 1] - r, j[k, 0] + r, j[k, 1] + r], fill=col)
    return (np.asarray(img, dtype=np.float32) / 255.0).transpose(2, 0, 1)


def _bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample (H, W, C) at float pixel coords; returns (values (..., C), inside mask)."""
    h, w = img.shape[:2]
    inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    xc, yc = np.clip(x, 0, w - 1), np.clip(y, 0, h - 1)
    x0, y0 = np.floor(xc).astype(np.int64), np.floor(yc).astype(np.int64)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (xc - x0)[..., None], (yc - y0)[..., None]
    out = (img[y0, x0] * (1 - fx) * (1 - fy) + img[y0, x1] * fx * (1 - fy)
           + img[y1, x0] * (1 - fx) * fy + img[y1, x1] * fx * fy)
    return out * inside[..., None], inside


def _nearest(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    xi, yi = np.rint(x).astype(np.int64), np.rint(y).astype(np.int64)
    inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
    out = img[np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)]
    return np.where(inside, out, 0)


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
                 reader: EgoPressureReader | None = None):
        if clip_length < 1 or stride < 1 or crop_size < 8 or uv_size < 8 or uv_cond_size < 8:
            raise ConfigError("clip_length and stride must be >= 1; crop_size, uv_size and uv_cond_size >= 8")
        self.reader = reader if reader is not None else EgoPressureReader(root)
        self.clip_length, self.stride = int(clip_length), int(stride)
        self.crop_size, self.uv_size = int(crop_size), int(uv_size)
        self.uv_conditioning, self.uv_cond_size = bool(uv_conditioning), int(uv_cond_size)
        self.augment = bool(augment)
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
        """Annotated frames that also have colour, depth and pressure rows (sorted)."""
        r = self.reader
        r.validate_sequence(participant, sequence)
        f = r.annotated_frames(participant, sequence)
        for shard in (layout.COLOR_SHARD, layout.DEPTH_SHARD, layout.PRESSURE_SHARD):
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
                            uv_cond_size=self.uv_cond_size, rng=rng)


def hand_crop_boxes(verts_cam: np.ndarray, intr: ColorIntrinsics, rng: np.random.Generator | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Square crop boxes around the hand for a clip, smoothed over it.

    ``verts_cam`` (N, V, 3) camera-frame vertices. Returns integer boxes (N, 4)
    ``[x0, y0, x1, y1]`` (x1/y1 exclusive, all the same side) and the raw
    per-frame box centres (N, 2) before smoothing. ``rng`` adds the per-clip
    scale/shift augmentation.
    """
    px = project(verts_cam, intr)  # (N, V, 2)
    lo, hi = px.min(axis=1), px.max(axis=1)
    raw = (lo + hi) / 2
    centres, side = smooth_boxes(raw, np.maximum((hi - lo).max(axis=1) * CROP_MARGIN, MIN_CROP_SIDE_PX))
    if rng is not None:
        side *= rng.uniform(0.9, 1.1)
        centres = centres + rng.uniform(-0.05, 0.05, size=2) * side
    s = max(1, round(side))
    x0 = np.rint(centres[:, 0] - side / 2).astype(np.int64)
    y0 = np.rint(centres[:, 1] - side / 2).astype(np.int64)
    return np.stack([x0, y0, x0 + s, y0 + s], axis=1), raw


def build_inputs(reader: EgoPressureReader, participant: str, sequence: str, frames, *, crop_size: int = 64,
                 uv_size: int = layout.UV_SIZE, uv_conditioning: bool = False, uv_cond_size: int = 64,
                 rng: np.random.Generator | None = None) -> dict:
    """Per-frame model inputs of ``frames`` (annotated) of one sequence, as torch tensors (see module doc)."""
    frames = np.asarray(frames, dtype=np.int64).reshape(-1)
    if len(frames) == 0:
        raise DataError("no frames requested", sequence=sequence)
    S = crop_size
    anns = []
    for f in frames:
        a = reader.load_annotation(participant, sequence, int(f))
        if not a.has_annotation:
            raise DataError("frame is not annotated (no hand mesh to build inputs from)", sequence=sequence,
                            frame=int(f), path=layout.shard_path(reader.root, participant, sequence,
                                                                 layout.ANNOTATION_SHARD))
        anns.append(a)
    intr = reader.intrinsics(participant, sequence)
    w, h = reader.rgb_size(participant, sequence, int(frames[0]))
    if (w, h) != (intr.width, intr.height):
        intr = intr.scaled(w, h)
    verts_w = np.stack([a.vertices for a in anns]).astype(np.float64)  # (N, V, 3)
    verts_c = np.stack([a.vertices_cam for a in anns]).astype(np.float64)
    joints_c = np.stack([a.joints_cam for a in anns]).astype(np.float64)
    if np.any(verts_c[..., 2] <= 0.01):
        bad = int(frames[np.nonzero((verts_c[..., 2] <= 0.01).any(axis=1))[0][0]])
        raise DataError("hand vertices lie behind the ego camera (check ego_R/ego_T)", sequence=sequence, frame=bad,
                        path=layout.shard_path(reader.root, participant, sequence, layout.ANNOTATION_SHARD))

    boxes, _ = hand_crop_boxes(verts_c, intr, rng)
    d_ref = float(np.median(verts_c[..., 2]))
    depth_calib = reader.depth_calibration(participant, sequence)
    mask_uv = None
    if uv_conditioning:
        atlas = reader.atlas(participant, sequence)
        mask_uv = atlas.mask(uv_cond_size)
        texel_w = atlas.texel_points(verts_w, uv_cond_size)  # (N, U, U, 3) world
    uv_mask = reader.atlas(participant, sequence).mask(uv_size)
    N = len(frames)
    out_rgb = np.zeros((N, 3, S, S), np.float32)
    out_depth = np.zeros((N, 1, S, S), np.float32)
    out_valid = np.zeros((N, 1, S, S), np.float32)
    out_pose = np.zeros((N, 3, S, S), np.float32)
    out_cond = np.zeros((N, UV_COND_CHANNELS, uv_cond_size, uv_cond_size), np.float32) if uv_conditioning else None
    gain = rng.uniform(0.8, 1.2) if rng is not None else 1.0
    contrast = rng.uniform(0.8, 1.2) if rng is not None else 1.0
    for i, f in enumerate(frames):
        box = tuple(int(b) for b in boxes[i])
        crop = _crop_rgb(reader, participant, sequence, int(f), box, S)
        rgb = np.asarray(crop, dtype=np.float32) / 255.0
        if rng is not None:
            rgb = np.clip((rgb - 0.5) * contrast + 0.5, 0, 1) * gain
            rgb = np.clip(rgb, 0.0, 1.0)
        out_rgb[i] = rgb.transpose(2, 0, 1)
        # depth straight into the crop camera (the box actually cut, so rgb and depth align)
        ck = crop_intrinsics(intr, box[0], box[1], box[2] - box[0], S)
        raw = reader.load_depth_raw(participant, sequence, int(f))
        dfx = depth_calib.pixel_intrinsics(raw.shape[1], raw.shape[0])[0]
        splat = int(min(3, max(0, math.ceil(ck.fx / max(dfx, 1e-6) / 2 - 0.5))))  # fill gaps when upsampling
        d = register_depth_to_color(raw, depth_calib, ck, (S, S), splat=splat)
        valid = d > 0
        out_valid[i, 0] = valid
        out_depth[i, 0] = np.where(valid, np.clip((d - d_ref) / DEPTH_SCALE_M, -1, 1), 0.0)
        jp = project(joints_c[i], ck)
        out_pose[i] = draw_pose_map(jp, S)
        if uv_conditioning:
            out_cond[i] = _uv_conditioning(texel_w[i], anns[i], ck, rgb, d, d_ref, mask_uv)

    pressure = np.stack([reader.load_pressure(participant, sequence, int(f)) for f in frames])
    item = {
        "rgb": torch.from_numpy(out_rgb),
        "depth": torch.from_numpy(out_depth),
        "depth_valid": torch.from_numpy(out_valid),
        "pose_map": torch.from_numpy(out_pose),
        "vertices": torch.from_numpy(verts_c.astype(np.float32)),
        "pressure": torch.from_numpy(_resample_uv(pressure, uv_size)),
        "uv_mask": torch.from_numpy(np.ascontiguousarray(uv_mask, dtype=np.float32)),
        "frame": torch.from_numpy(frames.copy()),
        "participant": participant,
        "sequence": sequence,
        "hand_side": anns[0].hand_side,
    }
    if uv_conditioning:
        item["uv_cond"] = torch.from_numpy(out_cond)
    return item


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


def _uv_conditioning(texel_w: np.ndarray, ann, ck: ColorIntrinsics, rgb_crop: np.ndarray, depth_crop: np.ndarray,
                     d_ref: float, mask_uv: np.ndarray) -> np.ndarray:
    """The 7 UV-space conditioning channels of one frame (see module doc)."""
    U = mask_uv.shape[0]
    inside_uv = mask_uv > 0
    pts_w = texel_w[inside_uv]  # (K, 3)
    pts_c = pts_w @ np.asarray(ann.ego_R, np.float64).T + np.asarray(ann.ego_T, np.float64)
    z = pts_c[:, 2]
    uv = project(pts_c, ck)
    x, y = uv[:, 0], uv[:, 1]
    finite = np.isfinite(x) & np.isfinite(y)
    x, y = np.where(finite, x, -1e6), np.where(finite, y, -1e6)
    col, inside = _bilinear(rgb_crop, x, y)
    obs = _nearest(depth_crop, x, y)
    obs_valid = obs > 0
    # mesh z-buffer from the (dense) texel points themselves, for texels without measured depth
    S = depth_crop.shape[0]
    zbuf = np.full(S * S, np.inf)
    xi, yi = np.rint(x).astype(np.int64), np.rint(y).astype(np.int64)
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            xx, yy = xi + dx, yi + dy
            ok = (xx >= 0) & (xx < S) & (yy >= 0) & (yy < S)
            np.minimum.at(zbuf, yy[ok] * S + xx[ok], z[ok])
    ok = (xi >= 0) & (xi < S) & (yi >= 0) & (yi < S)
    zb = np.where(ok, zbuf[np.clip(yi, 0, S - 1) * S + np.clip(xi, 0, S - 1)], np.inf)
    visible = np.where(obs_valid, np.abs(z - obs) < VISIBILITY_TOL_M, z <= zb + VISIBILITY_TOL_M) & inside
    chans = np.zeros((UV_COND_CHANNELS, len(z)), np.float32)
    chans[0:3] = col.T
    chans[3] = np.where(obs_valid, np.clip((obs - d_ref) / DEPTH_SCALE_M, -1, 1), 0.0)
    chans[4] = np.clip((z - d_ref) / DEPTH_SCALE_M, -1, 1)
    chans[5] = visible
    chans[6] = np.clip(-pts_w[:, 2] / HEIGHT_SCALE_M, -1, 1)
    out = np.zeros((UV_COND_CHANNELS, U, U), np.float32)
    out[:, inside_uv] = chans
    return out
