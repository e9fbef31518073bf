"""Helpers for tests and benchmarks: random clip batches with the ClipDataset contract."""

from __future__ import annotations

import torch


def make_dummy_batch(batch_size: int = 1, num_frames: int = 2, crop_size: int = 64, uv_cond_size: int | None = None,
                     num_vertices: int = 778, seed: int = 0, uv_size: int = 224) -> dict:
    """A random batch shaped like a DataLoader batch of ClipDataset items (docs/architecture.md).

    Pressure is a smooth blob (0-40 kPa) inside a rectangular UV mask, so the maps look like
    contact rather than noise. ``uv_cond_size`` adds ``uv_cond`` (B, N, 7, U, U).
    """
    g = torch.Generator().manual_seed(seed)
    b, n, s = batch_size, num_frames, crop_size
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, uv_size), torch.linspace(-1, 1, uv_size), indexing="ij")
    mask = ((xx.abs() < 0.8) & (yy.abs() < 0.7)).float()
    centres = torch.rand(b, n, 2, generator=g) - 0.5
    peak = 40 * torch.rand(b, n, 1, 1, generator=g)
    d2 = (xx - centres[..., 0, None, None]) ** 2 + (yy - centres[..., 1, None, None]) ** 2
    pressure = peak * torch.exp(-d2 / 0.05) * mask
    verts = 0.4 + 0.05 * torch.randn(b, n, num_vertices, 3, generator=g)
    batch = {
        "rgb": torch.rand(b, n, 3, s, s, generator=g),
        "depth": torch.rand(b, n, 1, s, s, generator=g) * 2 - 1,
        "depth_valid": torch.ones(b, n, 1, s, s),
        "pose_map": torch.rand(b, n, 3, s, s, generator=g),
        "vertices": verts,
        "pressure": pressure.float(),
        "uv_mask": mask.expand(b, -1, -1).clone(),
        "frame": torch.arange(1, n + 1).expand(b, -1).clone(),
        "participant": ["participant_01"] * b,
        "sequence": ["seq"] * b,
        "hand_side": ["right"] * b,
    }
    if uv_cond_size:
        batch["uv_cond"] = torch.rand(b, n, 7, uv_cond_size, uv_cond_size, generator=g) * 2 - 1
    # where each vertex lies in the crop ([-1, 1]); drawn last so the keys above keep their values
    batch["vertex_px"] = torch.rand(b, n, num_vertices, 2, generator=g) * 1.6 - 0.8
    return batch
