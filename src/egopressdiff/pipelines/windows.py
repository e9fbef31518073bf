"""Overlapping windows for sequences of any length, blended with linear cross-fades, streamed.

A sequence of T frames is cut into windows of ``window`` frames with stride ``window - overlap``;
the last window is aligned to the end of the sequence (so every window but a lone short one has
the clip length the model was trained on); a sequence no longer than the window is one window.
Inside an overlap of L frames the earlier window's weight falls (L, ..., 1)/(L+1) and the later
one's rises (1, ..., L)/(L+1); blended maps are sum(w*x)/sum(w), which also covers a frame that
three windows reach (possible only where the end-aligned last window overlaps more).

Each frame's initial noise is drawn from (seed, sample, frame index), so the windows sharing a
frame start from the same noise there and their blend is consistent; the same seed gives the
same result. Frames are yielded in order as soon as no later window touches them: memory holds
at most two windows of maps, whatever the sequence length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

DEFAULT_BATCH_SIZE = 4  # windows per model call; see benchmarks (egopressdiff bench, "predict_batched")


def window_bounds(num_frames: int, window: int = 16, overlap: int = 4) -> list[tuple[int, int]]:
    """[(start, stop), ...] covering frames 0..num_frames-1 (see module doc)."""
    if num_frames < 1:
        raise ValueError(f"a sequence needs at least one frame, got {num_frames}")
    if window < 1 or not 0 <= overlap < window:
        raise ValueError(f"need window >= 1 and 0 <= overlap < window, got window={window}, overlap={overlap}")
    if num_frames <= window:
        return [(0, num_frames)]
    stride = window - overlap
    starts = list(range(0, num_frames - window + 1, stride))
    if starts[-1] + window < num_frames:
        starts.append(num_frames - window)
    return [(s, s + window) for s in starts]


def blend_weights(bounds: list[tuple[int, int]]) -> list[np.ndarray]:
    """Per-window frame weights: linear ramps over the overlaps with the neighbouring windows."""
    out = []
    for k, (start, stop) in enumerate(bounds):
        w = np.ones(stop - start, dtype=np.float64)
        if k > 0:
            n = bounds[k - 1][1] - start
            if n > 0:
                w[:n] = np.minimum(w[:n], np.arange(1, n + 1) / (n + 1))
        if k + 1 < len(bounds):
            n = stop - bounds[k + 1][0]
            if n > 0:
                w[-n:] = np.minimum(w[-n:], np.arange(n, 0, -1) / (n + 1))
        out.append(w)
    return out


def collate_windows(batches: list[dict]) -> dict:
    """Window batches (B = 1 each, equal lengths) -> one batch: tensors concatenated along B, lists joined."""
    if len(batches) == 1:
        return batches[0]
    out = {}
    for key, first in batches[0].items():
        if torch.is_tensor(first):
            out[key] = torch.cat([b[key] for b in batches])
        elif isinstance(first, list):
            out[key] = [v for b in batches for v in b[key]]
        else:
            out[key] = [b[key] for b in batches]
    return out


def predict_windows(pipeline, num_frames: int, load_window: Callable[[int, int], dict], window: int = 16,
                    overlap: int = 4, steps: int | None = None, seed: int = 0, num_samples: int = 1,
                    batch_size: int = 1) -> Iterator[tuple[int, np.ndarray, np.ndarray | None]]:
    """Yield ``(frame_index, mean_kpa (224, 224), std_kpa or None)`` for frames 0..num_frames-1 in order.

    ``pipeline.sample(batch, ...)`` predicts windows (an EgoPressDiff or per-frame pipeline);
    ``load_window(start, stop)`` returns the batch (B = 1) of frames [start, stop). Up to
    ``batch_size`` consecutive windows go through one ``sample`` call (one U-Net call per step
    for all of them); each frame's noise depends only on (seed, sample, frame), so the result does
    not depend on the batch size beyond float rounding. The std is the blend of the windows'
    per-frame sample std (None when ``num_samples == 1``). Memory holds ``batch_size + 1`` windows.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    bounds = window_bounds(num_frames, window, overlap)
    weights = blend_weights(bounds)
    acc: dict[int, list] = {}  # frame -> [weight sum, weighted mean, weighted std]
    next_frame = 0
    for first in range(0, len(bounds), batch_size):
        group = list(range(first, min(first + batch_size, len(bounds))))  # equal lengths: only a lone window is short
        batch = collate_windows([load_window(*bounds[k]) for k in group])
        ids = [torch.arange(*bounds[k]) for k in group]
        out = pipeline.sample(batch, num_inference_steps=steps, seed=seed, num_samples=num_samples,
                              frame_ids=ids[0] if len(ids) == 1 else torch.stack(ids))
        means = out["pressure_kpa"].detach().cpu().double().numpy()
        stds = out.get("pressure_std_kpa")
        stds = None if stds is None else stds.detach().cpu().double().numpy()
        for j, k in enumerate(group):
            (start, stop), w = bounds[k], weights[k]
            mean, std = means[j], None if stds is None else stds[j]
            if mean.shape[0] != stop - start:
                raise ValueError(f"window [{start}, {stop}) returned {mean.shape[0]} frames")
            for i, t in enumerate(range(start, stop)):
                a = acc.setdefault(t, [0.0, 0.0, 0.0])
                a[0] += w[i]
                a[1] = a[1] + w[i] * mean[i]
                if std is not None:
                    a[2] = a[2] + w[i] * std[i]
        last = group[-1]
        final_until = bounds[last + 1][0] if last + 1 < len(bounds) else num_frames
        while next_frame < final_until:
            wsum, m, s = acc.pop(next_frame)
            yield (next_frame, (m / wsum).astype(np.float32),
                   None if stds is None else (s / wsum).astype(np.float32))
            next_frame += 1
