"""Geometry oracles: how much of the answer a rule with no learning reads off the inputs.

A **geometry oracle** maps *one* input quantity to kPa through *one* monotone
curve fitted on the train participants, and is scored on the test participants
with the field's metrics (:mod:`egopressdiff.evaluation.metrics`). If such a rule
scores close to the learned methods, the benchmark's inputs give the answer away.

UV space (the 224x224 UV-pressure maps, prediction masked by the UV mask, the
annotated frames of every test sequence: what ``egopressdiff evaluate`` scores)
    One oracle per quantity:

    * each of the 7 ``uv_cond`` channels of :class:`~egopressdiff.data.clips.ClipDataset`
      (``uv_conditioning=True``), built at ``uv_cond_size`` (64 by default, the
      per-frame baselines' size) from windows of ``window`` consecutive frames (as
      ``predict`` loads them), then brought to 224 by **mask-normalised bilinear**
      upsampling in the atlas' pixel convention (a 224 texel at column ``c`` reads
      the low-resolution map at ``c · (U−1)/223``; only texels inside the
      low-resolution UV mask take part, so the zeros outside the hand do not leak
      in). The few 224 texels with no masked neighbour read 0, the value the
      channel has outside the mask. The curve is fitted and applied at 224, where
      the metrics are computed;
    * the mesh's **height above the pad** per texel, ``−z`` (mm) of the texel's
      surface point on the stored mesh (:meth:`UVAtlas.texel_points` at 224, no
      clipping, no upsampling).

Pad grid (the 105x185 ``force`` grid in kPa, every cell, the annotated frames)
    The mesh's **penetration below the pad** per cell: the largest ``z > 0`` (mm)
    of the mesh surface over the cell centre (an orthographic z-buffer of the
    triangles that reach below the pad, plus the vertices themselves), blurred by
    a Gaussian of one width (chosen on train among :data:`BLUR_WIDTHS_CELLS`), then
    one monotone curve.

The monotone curve
    Isotonic regression (least squares, pool-adjacent-violators) of kPa on the
    quantity over the train samples, binned into at most ``max_bins`` bins (exact
    values when there are fewer distinct ones, else quantile bins), in both the
    increasing and the decreasing direction; the knots are the bins' mean values
    and the curve interpolates linearly between them (so it stays monotone).
    Then a gain and a floor (values below it set to 0; a monotone map stays
    monotone) from :data:`GAINS` x :data:`FLOORS_KPA`. Direction, gain and floor
    are the ones with the best Volumetric IoU **on the train samples**; the test
    participants are only ever scored.

    Hand-written because scikit-learn's ``IsotonicRegression`` is not a
    dependency of the project, and binned PAV is a few lines of numpy.

Train samples
    UV space: a seeded random subset of each train frame's UV-mask texels (the
    budget ``fit_samples`` spread evenly over the train frames; every channel sees
    the same texels). Pad grid: every cell of every train frame (cells where
    both the blurred penetration and the target are 0 are pooled into one
    weighted sample, which is exact for the fit and for the IoU).

Mesh tracks
    ``annotated``: ``vertices`` / ``joint_position`` of annotation.parquet (the
    paper's protocol). ``estimated``: the ``vertices_estimated`` /
    ``joint_position_estimated`` columns (what a monocular hand-mesh estimator
    gives); a frame whose estimate is null (the estimator failed) takes the nearest
    frame's estimate, as a tracker holds its last output. Either way the ground
    truth and the texel areas of the force error come from the annotation.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from egopressdiff.data import layout
from egopressdiff.data.reader import EgoPressureReader
from egopressdiff.errors import DataError
from egopressdiff.evaluation.metrics import HOVER_FAMILY, MetricAccumulator

MESH_TRACKS = ("annotated", "estimated")
ESTIMATED_COLUMNS = {"vertices": "vertices_estimated", "joints": "joint_position_estimated"}
UV_CHANNELS = ("rgb_r", "rgb_g", "rgb_b", "observed_depth", "texel_depth", "visibility", "height_cond")
HEIGHT_CHANNEL = "mesh_height_mm"
FLOORS_KPA = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)
GAINS = (0.5, 0.71, 1.0, 1.41, 2.0, 2.83, 4.0, 5.66, 8.0)
BLUR_WIDTHS_CELLS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)  # Gaussian sigma on the pad grid
CELL_AREA_M2 = layout.SENSEL_CELL_SIZE_M**2


# ---------------------------------------------------------------------------------------------
# the monotone curve


def pool_adjacent_violators(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted least-squares non-decreasing fit of the ordered values ``y`` (weights ``w`` > 0)."""
    means: list[float] = []
    weights: list[float] = []
    sizes: list[int] = []
    for yi, wi in zip(np.asarray(y, np.float64), np.asarray(w, np.float64)):
        m, ww, n = float(yi), float(wi), 1
        while means and means[-1] > m:  # a violation: pool with the block before
            pw = weights.pop()
            m = (means.pop() * pw + m * ww) / (pw + ww)
            ww += pw
            n += sizes.pop()
        means.append(m)
        weights.append(ww)
        sizes.append(n)
    return np.repeat(np.asarray(means), sizes)


def _bins(x: np.ndarray, w: np.ndarray, max_bins: int) -> np.ndarray:
    """Bin index of every sample, ordered by x: one bin per distinct value when there are few;
    else a value holding more than 1/max_bins of the weight gets a bin of its own and the rest
    are cut at weighted quantiles (ties never split). Depends only on the weight per distinct
    value, so pooling equal samples into one weighted sample changes nothing."""
    uniq, inv = np.unique(x, return_inverse=True)
    inv = inv.reshape(-1)
    if len(uniq) <= max_bins:
        return inv
    wu = np.bincount(inv, weights=w, minlength=len(uniq))
    heavy = wu > wu.sum() / max_bins
    light = np.where(heavy, 0.0, wu)
    per_bin = max(light.sum() / max(max_bins - int(heavy.sum()), 1), 1e-300)
    group = np.floor((np.cumsum(light) - light) / per_bin)  # weighted quantile group of each light value
    start = np.ones(len(uniq), bool)  # where a new bin starts, in x order
    start[1:] = heavy[1:] | heavy[:-1] | (group[1:] != group[:-1])
    return (np.cumsum(start) - 1)[inv]


def fit_isotonic(x, y, w=None, increasing: bool = True, max_bins: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Knots ``(kx, ky)`` of the binned isotonic regression of ``y`` on ``x`` (see module doc)."""
    x = np.asarray(x, np.float64).reshape(-1)
    y = np.asarray(y, np.float64).reshape(-1)
    w = np.ones_like(x) if w is None else np.asarray(w, np.float64).reshape(-1)
    if len(x) == 0:
        raise ValueError("no samples to fit")
    idx = _bins(x, w, max_bins)
    nb = int(idx.max()) + 1
    sw = np.bincount(idx, weights=w, minlength=nb)
    keep = sw > 0
    kx = (np.bincount(idx, weights=w * x, minlength=nb)[keep]) / sw[keep]
    my = (np.bincount(idx, weights=w * y, minlength=nb)[keep]) / sw[keep]
    sw = sw[keep]
    ky = pool_adjacent_violators(my, sw) if increasing else -pool_adjacent_violators(-my, sw)
    return kx, ky


@dataclass
class MonotoneMap:
    """kPa = gain · curve(x), set to 0 below ``floor_kpa``; ``curve`` interpolates the knots."""

    knots_x: np.ndarray
    knots_y: np.ndarray
    direction: str  # "increasing" | "decreasing"
    gain: float = 1.0
    floor_kpa: float = 0.0
    train_volumetric_iou: float | None = None

    def __call__(self, x) -> np.ndarray:
        v = self.gain * np.interp(np.asarray(x, np.float64), self.knots_x, self.knots_y)
        v = np.maximum(v, 0.0)
        return np.where(v < self.floor_kpa, 0.0, v)

    def summary(self, max_points: int = 64) -> dict:
        """JSON-ready description: direction, gain, floor, train IoU, range and the curve's breakpoints
        (the knots where its value changes, thinned evenly to ``max_points``)."""
        v = self(self.knots_x)
        k = len(v)
        change = np.zeros(k, bool)
        change[[0, -1]] = True
        change[1:] |= v[1:] != v[:-1]
        change[:-1] |= v[:-1] != v[1:]
        keep = np.nonzero(change)[0]
        pick = keep[np.unique(np.linspace(0, len(keep) - 1, min(len(keep), max_points)).round().astype(int))]
        return {
            "direction": self.direction,
            "gain": float(self.gain),
            "floor_kpa": float(self.floor_kpa),
            "train_volumetric_iou": None if self.train_volumetric_iou is None else float(self.train_volumetric_iou),
            "num_knots": int(k),
            "x_range": [float(self.knots_x[0]), float(self.knots_x[-1])],
            "kpa_range": [float(v.min()), float(v.max())],
            "knots_x": [float(x) for x in self.knots_x[pick]],
            "knots_kpa": [float(y) for y in v[pick]],
        }


def weighted_volumetric_iou(pred: np.ndarray, gt: np.ndarray, w: np.ndarray | None = None) -> float:
    """Σ w·min / Σ w·max (1.0 when both are zero everywhere, as in the metrics module)."""
    w = np.ones_like(gt) if w is None else w
    hi = float((w * np.maximum(pred, gt)).sum())
    return 1.0 if hi <= 0 else float((w * np.minimum(pred, gt)).sum()) / hi


def fit_monotone_map(x, y, w=None, floors=FLOORS_KPA, gains=GAINS, max_bins: int = 1024) -> MonotoneMap:
    """The best monotone map of x to kPa on these (train) samples, by Volumetric IoU (see module doc)."""
    x = np.asarray(x, np.float64).reshape(-1)
    y = np.asarray(y, np.float64).reshape(-1)
    w = np.ones_like(x) if w is None else np.asarray(w, np.float64).reshape(-1)
    best: MonotoneMap | None = None
    for direction in ("increasing", "decreasing"):
        kx, ky = fit_isotonic(x, y, w, increasing=direction == "increasing", max_bins=max_bins)
        base = np.maximum(np.interp(x, kx, ky), 0.0)
        for gain in gains:
            scaled = gain * base
            for floor in floors:
                pred = np.where(scaled < floor, 0.0, scaled)
                iou = weighted_volumetric_iou(pred, y, w)
                if best is None or iou > best.train_volumetric_iou:
                    best = MonotoneMap(kx, ky, direction, float(gain), float(floor), iou)
    return best


# ---------------------------------------------------------------------------------------------
# mesh tracks


class MeshTrackReader(EgoPressureReader):
    """A reader whose annotations hold the chosen mesh track's ``vertices`` and ``joints``.

    Everything else (pressure, images, ego pose) is the dataset's own. With the
    ``estimated`` track, a null estimate takes the nearest frame's (module doc).
    """

    def __init__(self, root, mesh: str = "annotated", **kwargs):
        super().__init__(root, **kwargs)
        if mesh not in MESH_TRACKS:
            raise ValueError(f"mesh must be one of {MESH_TRACKS}, got {mesh!r}")
        self.mesh = mesh

    def check_track(self, participant: str, sequence: str) -> None:
        """One-line DataError if the sequence lacks the estimated track (checked before any work)."""
        if self.mesh == "estimated":
            self.load_estimated_mesh(participant, sequence, int(self.annotated_frames(participant, sequence)[0]))

    def estimated_mesh(self, participant: str, sequence: str, frame: int) -> tuple[np.ndarray, np.ndarray]:
        return self.load_estimated_mesh(participant, sequence, frame)  # the reader's: nearest valid estimate

    def load_annotation(self, participant: str, sequence: str, frame: int, *args, **kwargs):
        ann = super().load_annotation(participant, sequence, frame, *args, **kwargs)
        if self.mesh == "estimated" and ann.has_annotation:
            v, j = self.estimated_mesh(participant, sequence, int(frame))
            ann = dataclasses.replace(ann, vertices=v, joints=j)
        return ann


# ---------------------------------------------------------------------------------------------
# per-frame quantities


def _bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) linear interpolation in the atlas' pixel convention (ends on ends)."""
    g = np.arange(n_out) * (n_in - 1) / (n_out - 1)
    i0 = np.minimum(np.floor(g).astype(np.int64), n_in - 2)
    f = g - i0
    w = np.zeros((n_out, n_in))
    w[np.arange(n_out), i0] = 1 - f
    w[np.arange(n_out), i0 + 1] = f
    return w


def upsample_masked(cond: np.ndarray, mask_lo: np.ndarray, size: int = layout.UV_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(..., U, U) maps on the UV mask ``mask_lo`` -> (..., size, size), mask-normalised bilinear.

    Returns the maps and a (size, size) bool array of the texels that had a masked neighbour.
    """
    U = mask_lo.shape[0]
    w = _bilinear_matrix(U, size)
    m = np.asarray(mask_lo, np.float64)
    x = np.asarray(cond, np.float64) * m
    lead = x.shape[:-2]
    # separable, as two plain 2-D products (numpy's stacked matmul is far slower here)
    x = (x.reshape(-1, U) @ w.T).reshape(-1, U, size).transpose(1, 0, 2).reshape(U, -1)
    num = (w @ x).reshape(size, -1, size).transpose(1, 0, 2).reshape(*lead, size, size)
    den = w @ m @ w.T
    covered = den > 1e-9
    return np.where(covered, num / np.where(covered, den, 1.0), 0.0), covered


def mesh_height_mm(atlas, vertices: np.ndarray, size: int = layout.UV_SIZE) -> np.ndarray:
    """Height above the pad (mm, ``−z``; negative below the pad) of every texel's surface point, (T, size, size)."""
    return -atlas.texel_points(np.asarray(vertices, np.float64), size)[..., 2] * 1000.0


def pad_penetration_mm(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Largest ``z > 0`` (mm) of the mesh surface over each pad cell's centre, (105, 185); 0 elsewhere."""
    from egopressdiff.data.physics import GRID_COLS, GRID_ROWS, grid_coords

    v = np.asarray(vertices, np.float64)
    out = np.zeros(GRID_ROWS * GRID_COLS)
    col, row = grid_coords(v[:, 0], v[:, 1])
    below = v[:, 2] > 0
    # the vertices themselves (a triangle smaller than a cell may miss every centre)
    ci, ri = np.rint(col).astype(np.int64), np.rint(row).astype(np.int64)
    ok = below & (ci >= 0) & (ci < GRID_COLS) & (ri >= 0) & (ri < GRID_ROWS)
    np.maximum.at(out, ri[ok] * GRID_COLS + ci[ok], v[ok, 2] * 1000.0)
    fz = v[faces, 2]
    sel = np.nonzero(fz.max(axis=1) > 0)[0]
    if len(sel):
        fc, fr = col[faces[sel]], row[faces[sel]]  # (F, 3)
        c0 = np.clip(np.ceil(fc.min(1)), 0, GRID_COLS - 1).astype(np.int64)
        c1 = np.clip(np.floor(fc.max(1)), 0, GRID_COLS - 1).astype(np.int64)
        r0 = np.clip(np.ceil(fr.min(1)), 0, GRID_ROWS - 1).astype(np.int64)
        r1 = np.clip(np.floor(fr.max(1)), 0, GRID_ROWS - 1).astype(np.int64)
        nc, nr = np.maximum(c1 - c0 + 1, 0), np.maximum(r1 - r0 + 1, 0)
        n = nc * nr
        if n.sum():
            t = np.repeat(np.arange(len(sel)), n)
            k = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
            cc = c0[t] + k % nc[t]
            rr = r0[t] + k // nc[t]
            a, b, c = (np.stack([fc[t, j], fr[t, j]], 1) for j in range(3))
            p = np.stack([cc, rr], 1).astype(np.float64)
            e1, e2, q = b - a, c - a, p - a
            det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
            good = np.abs(det) > 1e-12
            sd = np.where(good, det, 1.0)
            l1 = (q[:, 0] * e2[:, 1] - q[:, 1] * e2[:, 0]) / sd
            l2 = (e1[:, 0] * q[:, 1] - e1[:, 1] * q[:, 0]) / sd
            inside = good & (l1 >= -1e-9) & (l2 >= -1e-9) & (l1 + l2 <= 1 + 1e-9)
            z = (1 - l1 - l2) * fz[sel][t, 0] + l1 * fz[sel][t, 1] + l2 * fz[sel][t, 2]
            hit = inside & (z > 0)
            np.maximum.at(out, rr[hit] * GRID_COLS + cc[hit], z[hit] * 1000.0)
    return out.reshape(GRID_ROWS, GRID_COLS)


def blur_matrix(n: int, sigma: float) -> np.ndarray:
    """(n, n) Gaussian blur along one axis, truncated at 4 sigma, zero outside the grid; identity for sigma 0."""
    if sigma <= 0:
        return np.eye(n)
    radius = math.ceil(4 * sigma)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    d = np.arange(n)[:, None] - np.arange(n)[None, :]
    return np.where(np.abs(d) <= radius, kernel[np.clip(d + radius, 0, 2 * radius)], 0.0)


def blur_grids(grids: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur (sigma in cells) of (..., rows, cols) grids."""
    if sigma <= 0:
        return np.asarray(grids, np.float64)
    g = np.asarray(grids, np.float64)
    R, C = g.shape[-2:]
    br, bc = blur_matrix(R, sigma), blur_matrix(C, sigma)
    # two plain 2-D products (numpy's stacked matmul is far slower here)
    x = (g.reshape(-1, C) @ bc.T).reshape(-1, R, C).transpose(1, 0, 2).reshape(R, -1)
    return (br @ x).reshape(R, -1, C).transpose(1, 0, 2).reshape(g.shape)


# ---------------------------------------------------------------------------------------------
# running the oracles


@dataclass
class OracleOptions:
    """Settings of :func:`run_oracles` (see module doc)."""

    mesh: str = "annotated"
    uv_cond_size: int = 64
    window: int = 16
    max_frames: int | None = None  # per sequence: its first N annotated frames
    fit_samples: int = 4_000_000  # UV train texels in all
    seed: int = 0
    floors: tuple = FLOORS_KPA
    gains: tuple = GAINS
    blur_widths: tuple = BLUR_WIDTHS_CELLS
    progress: bool = False
    # Extra UV quantities, for checking the tool itself: name -> f(context) -> (T, 224, 224),
    # context holding participant, sequence, frames, split, gt (kPa), vertices (track, world).
    extra_channels: Mapping[str, Callable[[dict], np.ndarray]] = field(default_factory=dict)


def _frames_of(reader: EgoPressureReader, participant: str, sequence: str, max_frames: int | None) -> np.ndarray:
    f = reader.annotated_frames(participant, sequence)
    return f[:max_frames] if max_frames else f


def _split(reader: EgoPressureReader) -> dict:
    from egopressdiff.data.splits import describe_split

    t = describe_split(reader.participants())
    if not t["all"]:
        raise DataError("no participants found (expected data/<participant>/<sequence>/)", path=reader.root)
    if not t["held_out"]:
        raise DataError(f"only {len(t['all'])} participants: an oracle needs train and test participants that "
                        "differ (at least 3 participants)", path=reader.root)
    return t


def _bar(progress: bool, iterable=None, **kw):
    """A tqdm bar (a silent one when ``progress`` is off)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=not progress, **kw)


def _accumulate(accs: dict, name: str, family: str, key: str, pred, gt, mask, area, hover: bool) -> None:
    a = accs.setdefault(name, {}).setdefault(key, (family, MetricAccumulator()))[1]
    a.update(pred, gt, mask, area=area, hover=hover)


def _results(per_sequence: dict) -> dict:
    """Overall / per-gesture / per-sequence results of one oracle, as ``evaluate_predictions`` lays them out."""
    overall = MetricAccumulator()
    fam_acc: dict[str, MetricAccumulator] = {}
    seqs = {}
    for key, (family, acc) in per_sequence.items():
        overall.merge(acc)
        fam_acc.setdefault(family, MetricAccumulator()).merge(acc)
        p, s = key.split("/", 1)
        seqs[key] = {"participant": p, "sequence": s, "gesture_family": family, **acc.result()}
    res = overall.result()
    res["per_gesture"] = {f: fam_acc[f].result() for f in sorted(fam_acc)}
    res["per_sequence"] = seqs
    return res


class _Sources:
    """The readers of one run: the chosen mesh track (inputs) and the plain dataset (ground truth)."""

    def __init__(self, root, options: OracleOptions):
        self.gt = EgoPressureReader(root)
        self.track = MeshTrackReader(root, options.mesh)
        self.split = _split(self.gt)
        self.pairs = {s: self.gt.all_sequences(self.split[s]) for s in ("train", "test")}
        for p, s in self.pairs["train"] + self.pairs["test"]:
            self.track.check_track(p, s)


def _uv_frames(src: _Sources, options: OracleOptions, split: str):
    """Yield (participant, sequence, chunk dict) of every window of annotated frames of ``split``."""
    from egopressdiff.data.clips import ClipDataset

    pairs = src.pairs[split]
    ds = ClipDataset(src.gt.root, participants=sorted({p for p, _ in pairs}), clip_length=1, stride=1,
                     uv_conditioning=True, uv_cond_size=options.uv_cond_size, reader=src.track)
    for p, s in pairs:
        frames = _frames_of(src.gt, p, s, options.max_frames)
        atlas = src.gt.atlas(p, s)
        for start in range(0, len(frames), options.window):
            fr = frames[start:start + options.window]
            item = ds.load_frames(p, s, fr)
            gt = item["pressure"].numpy().astype(np.float64)
            verts = np.stack([src.track.load_annotation(p, s, int(f)).vertices for f in fr]).astype(np.float64)
            yield p, s, {"frames": fr, "atlas": atlas, "uv_cond": item["uv_cond"].numpy(), "gt": gt,
                         "vertices": verts, "mask_lo": atlas.mask(options.uv_cond_size)}


def _uv_quantities(chunk: dict, p: str, s: str, split: str, options: OracleOptions) -> tuple[dict, float]:
    """name -> (T, 224, 224) of every UV oracle's input quantity; plus the share of texels upsampling missed."""
    mask = chunk["atlas"].mask(layout.UV_SIZE) > 0
    up, covered = upsample_masked(chunk["uv_cond"].astype(np.float64), chunk["mask_lo"])
    n = up.shape[1]
    names = UV_CHANNELS if n == len(UV_CHANNELS) else tuple(f"uv_cond_{c}" for c in range(n))
    q = {name: up[:, c] for c, name in enumerate(names)}
    q[HEIGHT_CHANNEL] = mesh_height_mm(chunk["atlas"], chunk["vertices"])
    ctx = {"participant": p, "sequence": s, "frames": chunk["frames"], "split": split, "gt": chunk["gt"],
           "vertices": chunk["vertices"]}
    for name, fn in options.extra_channels.items():
        q[name] = np.asarray(fn(ctx), np.float64)
    return q, float(1.0 - covered[mask].mean())


def run_uv_oracles(src: _Sources, options: OracleOptions) -> dict:
    """Fit every UV oracle on the train participants, score it on the test participants."""
    rng = np.random.default_rng(options.seed)
    n_train = sum(len(_frames_of(src.gt, p, s, options.max_frames)) for p, s in src.pairs["train"])
    per_frame = max(1, options.fit_samples // max(n_train, 1))
    xs: dict[str, list] = {}
    ys: list = []
    missed = []
    bar = _bar(options.progress, total=n_train, desc="uv fit (train)", unit="frame")
    for p, s, ch in _uv_frames(src, options, "train"):
        q, miss = _uv_quantities(ch, p, s, "train", options)
        missed.append(miss)
        inside = np.nonzero(ch["atlas"].mask(layout.UV_SIZE).reshape(-1) > 0)[0]
        for t in range(len(ch["frames"])):
            pick = inside if per_frame >= len(inside) else rng.choice(inside, per_frame, replace=False)
            ys.append(ch["gt"][t].reshape(-1)[pick].astype(np.float32))
            for name, v in q.items():
                xs.setdefault(name, []).append(v[t].reshape(-1)[pick].astype(np.float32))
        bar.update(len(ch["frames"]))
    bar.close()
    if not ys:
        raise DataError("the train participants have no annotated frames", path=src.gt.root)
    y = np.concatenate(ys)
    maps = {}
    for name in _bar(options.progress, list(xs), desc="uv fit (curves)", unit="oracle"):
        maps[name] = fit_monotone_map(np.concatenate(xs[name]), y, floors=options.floors, gains=options.gains)
    del xs, ys

    accs: dict = {}
    n_test = sum(len(_frames_of(src.gt, p, s, options.max_frames)) for p, s in src.pairs["test"])
    bar = _bar(options.progress, total=n_test, desc="uv score (test)", unit="frame")
    for p, s, ch in _uv_frames(src, options, "test"):
        q, miss = _uv_quantities(ch, p, s, "test", options)
        missed.append(miss)
        mask = ch["atlas"].mask(layout.UV_SIZE)
        ann_verts = np.stack([src.gt.load_annotation(p, s, int(f)).vertices for f in ch["frames"]])
        area = ch["atlas"].texel_area(ann_verts, layout.UV_SIZE)
        family = layout.gesture_family(s)
        for name, m in maps.items():
            _accumulate(accs, name, family, f"{p}/{s}", m(q[name]), ch["gt"], mask, area, family == HOVER_FAMILY)
        bar.update(len(ch["frames"]))
    bar.close()
    oracles = {name: {"curve": maps[name].summary(), "test": _results(accs.get(name, {}))} for name in maps}
    by_train = max(oracles, key=lambda n: oracles[n]["curve"]["train_volumetric_iou"])
    by_test = max(oracles, key=lambda n: oracles[n]["test"]["volumetric_iou"] or 0.0)
    return {
        "uv_cond_size": options.uv_cond_size,
        "resolution": f"uv_cond channels built at {options.uv_cond_size}x{options.uv_cond_size}, mask-normalised "
                      f"bilinear upsampling to {layout.UV_SIZE}; {HEIGHT_CHANNEL} computed at {layout.UV_SIZE}; "
                      f"curves fitted and metrics computed at {layout.UV_SIZE}x{layout.UV_SIZE} on the UV mask",
        "upsampling_missed_texel_share": float(np.mean(missed)) if missed else 0.0,
        "train_samples": int(len(y)),
        "train_samples_per_frame": int(per_frame),
        "oracles": oracles,
        "best_by_train": by_train,
        "best_on_test": by_test,
    }


def _pad_frames(src: _Sources, options: OracleOptions, split: str):
    for p, s in src.pairs[split]:
        faces = src.gt.atlas(p, s).faces
        for f in _frames_of(src.gt, p, s, options.max_frames):
            v = src.track.load_annotation(p, s, int(f)).vertices
            yield p, s, pad_penetration_mm(v, faces), src.gt.load_force(p, s, int(f))


def run_pad_oracle(src: _Sources, options: OracleOptions) -> dict:
    """Fit the pad-grid oracle (blur width and curve) on the train participants, score it on the test ones."""
    n_train = sum(len(_frames_of(src.gt, p, s, options.max_frames)) for p, s in src.pairs["train"])
    pen, force = [], []
    for _, _, x, y in _bar(options.progress, _pad_frames(src, options, "train"), total=n_train,
                           desc="pad fit (train)", unit="frame"):
        pen.append(x.astype(np.float32))
        force.append(y.astype(np.float32))
    if not pen:
        raise DataError("the train participants have no annotated frames", path=src.gt.root)
    pen, force = np.stack(pen), np.stack(force)
    per_width = {}
    best = None
    for sigma in _bar(options.progress, options.blur_widths, desc="pad fit (widths)", unit="width"):
        x = blur_grids(pen, sigma)
        live = (x > 0) | (force > 0)
        n_dead = int((~live).sum())  # both zero: pooled into one weighted sample (exact)
        xv = np.concatenate([x[live], [0.0]])
        yv = np.concatenate([force[live].astype(np.float64), [0.0]])
        wv = np.concatenate([np.ones(int(live.sum())), [max(n_dead, 1e-12)]])
        m = fit_monotone_map(xv, yv, wv, floors=options.floors, gains=options.gains)
        per_width[f"{sigma:g}"] = m.train_volumetric_iou
        if best is None or m.train_volumetric_iou > best[1].train_volumetric_iou:
            best = (sigma, m)
    del pen, force
    sigma, m = best
    n_test = sum(len(_frames_of(src.gt, p, s, options.max_frames)) for p, s in src.pairs["test"])
    accs: dict = {}
    mask = np.ones(layout.FORCE_GRID_SHAPE)
    area = np.full(layout.FORCE_GRID_SHAPE, CELL_AREA_M2)
    for p, s, x, y in _bar(options.progress, _pad_frames(src, options, "test"), total=n_test,
                           desc="pad score (test)", unit="frame"):
        family = layout.gesture_family(s)
        _accumulate(accs, "pad", family, f"{p}/{s}", m(blur_grids(x, sigma)), y, mask, area, family == HOVER_FAMILY)
    return {
        "quantity": "penetration below the pad per cell (mm), Gaussian blur, one monotone curve",
        "blur_width_cells": float(sigma),
        "train_volumetric_iou_by_width": per_width,
        "curve": m.summary(),
        "test": _results(accs.get("pad", {})),
    }


def run_oracles(root, space: str = "both", options: OracleOptions | None = None) -> dict:
    """The geometry oracles of a dataset: ``space`` 'uv', 'pad' or 'both'; JSON-ready results."""
    options = options or OracleOptions()
    if space not in ("uv", "pad", "both"):
        raise ValueError(f"space must be 'uv', 'pad' or 'both', got {space!r}")
    t0 = time.perf_counter()
    src = _Sources(root, options)
    out = {
        "data": str(src.gt.root),
        "mesh": options.mesh,
        "split": {"train": src.split["train"], "test": src.split["test"]},
        "sequences": {k: len(v) for k, v in src.pairs.items()},
        "max_frames_per_sequence": options.max_frames,
        "contact_threshold_kpa": MetricAccumulator().contact_threshold,
    }
    if space in ("uv", "both"):
        out["uv"] = run_uv_oracles(src, options)
    if space in ("pad", "both"):
        out["pad"] = run_pad_oracle(src, options)
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out
