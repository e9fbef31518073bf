"""Statistics of the training targets in latent space, and the EDM constants that follow from them.

EDM's preconditioning (c_in, c_skip, c_out) is derived for data with second moment
sigma_data^2: c_in = 1/sqrt(sigma^2 + E[z^2]) gives the network unit-variance input and
c_skip = E[z^2]/(sigma^2 + E[z^2]) minimises the variance of its training target. So sigma_data
is the **RMS** of the target latents -- over every latent element of every training frame,
hand texels and background alike, since that is what the network sees. UV-pressure maps are
mostly zero pressure, so with zero pressure at latent 0 their RMS is small (about 0.09 for the
tiny codec on the synthetic benchmark), far from the sigma_data = 1 of SVD's video latents.

From the measurement (:func:`edm_constants`):

* ``sigma_max`` = 2.5 x the largest |z| seen: the first sampler input must hide the data, and
  a texel at the largest latent then lies 0.4 sigma_max from the prior's mean (its mismatch
  with N(0, sigma_max^2) is small) while no step is spent far above the data's range;
* ``sigma_min`` = sigma_data / 50: below it the remaining noise is far under the resolution
  that matters (for the tiny codec 0.002 in latent units is ~0.01 kPa near zero);
* ``p_mean`` = ln(sigma_data): half of the training noise levels lie below sigma_data, where
  the network refines detail (c_skip > 1/2), half above, where it predicts from the
  conditioning;
* ``p_std`` = ln(sigma_max / sigma_min) / 5: the log-normal's +-2.5 std spans the sampling
  schedule, so every sigma the sampler visits is trained.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass
class TargetStats:
    """Moments of the target latents over ``frames`` frames (``count`` latent elements)."""

    frames: int
    count: int
    mean: float
    std: float
    rms: float
    abs_max: float
    zero_fraction: float  # share of elements with |z| < 1e-6 (zero pressure, for a zero-centred transform)

    def to_dict(self) -> dict:
        return asdict(self)


class _Moments:
    def __init__(self):
        self.frames = self.count = self.zeros = 0
        self.total = self.total2 = self.abs_max = 0.0

    def add(self, z) -> None:
        z = z.double()
        self.frames += z.shape[0]
        self.count += z.numel()
        self.total += float(z.sum())
        self.total2 += float(z.pow(2).sum())
        self.abs_max = max(self.abs_max, float(z.abs().max()))
        self.zeros += int((z.abs() < 1e-6).sum())

    def result(self) -> TargetStats:
        if self.count == 0:
            raise ValueError("no target latents were measured")
        mean = self.total / self.count
        second = self.total2 / self.count
        return TargetStats(frames=self.frames, count=self.count, mean=mean, std=math.sqrt(max(second - mean**2, 0.0)),
                           rms=math.sqrt(second), abs_max=self.abs_max, zero_fraction=self.zeros / self.count)


def latent_stats(latents) -> TargetStats:
    """Moments of a tensor of target latents (frames first)."""
    m = _Moments()
    m.add(latents)
    return m.result()


def training_frames(dataset) -> list[tuple[str, str, int]]:
    """The distinct (participant, sequence, frame) that ``dataset``'s clips cover, in order."""
    seen: dict[tuple[str, str, int], None] = {}
    for i in range(len(dataset)):
        p, s, frames = dataset.clip_frames(i)
        for f in frames:
            seen.setdefault((p, s, int(f)), None)
    return list(seen)


def measure_target_stats(model, dataset, batch_frames: int = 64, max_frames: int | None = None,
                         progress: bool = False) -> TargetStats:
    """Moments of ``model.encode_targets`` over every frame ``dataset``'s clips cover.

    Only the pressure maps are read (no RGB, depth or UV conditioning is built). ``max_frames``
    keeps an evenly spaced subset.
    """
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    frames = training_frames(dataset)
    if max_frames is not None and len(frames) > max_frames:
        frames = [frames[round(i * len(frames) / max_frames)] for i in range(max_frames)]
    reader = dataset.reader
    m = _Moments()
    with torch.no_grad():
        for start in tqdm(range(0, len(frames), batch_frames), disable=not progress, desc="targets", unit="batch"):
            chunk = frames[start:start + batch_frames]
            kpa = np.stack([reader.load_pressure(p, s, f) for p, s, f in chunk])
            z = model.encode_targets({"pressure": torch.from_numpy(kpa).unsqueeze(0)})["target_latents"]
            m.add(z.flatten(0, 1))
    return m.result()


def edm_constants(stats: TargetStats, digits: int = 2) -> dict:
    """``edm`` config values that follow from the measured target statistics (see module doc)."""

    def r(x: float) -> float:
        return float(f"{x:.{digits}g}")

    sigma_data = r(stats.rms)
    sigma_max = r(2.5 * stats.abs_max)
    sigma_min = r(sigma_data / 50)
    return {"sigma_data": sigma_data, "p_mean": r(math.log(sigma_data)),
            "p_std": r(math.log(sigma_max / sigma_min) / 5), "sigma_min": sigma_min, "sigma_max": sigma_max}
