"""CLIP vision wrapper: per-frame image embeddings of the RGB crops.

Pre-processing follows the facts of ``CLIPImageProcessor`` as SVD uses it (resize to the
model's square input size with bicubic antialiasing, then normalise with the processor's
mean/std), done in torch so it runs batched on the accelerator (no torchvision).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def build_clip_model(clip_cfg: dict) -> nn.Module:
    """A randomly initialised ``CLIPVisionModelWithProjection`` from a config dict."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    return CLIPVisionModelWithProjection(CLIPVisionConfig(**clip_cfg))


def clip_config_dict(model: nn.Module) -> dict:
    """The architecture keys of a CLIP vision model's config (enough to rebuild it)."""
    c = model.config
    keys = ("hidden_size", "intermediate_size", "projection_dim", "num_hidden_layers", "num_attention_heads",
            "num_channels", "image_size", "patch_size", "hidden_act", "layer_norm_eps")
    return {k: getattr(c, k) for k in keys}


class ClipImageEncoder(nn.Module):
    """(M, 3, H, W) RGB in [0, 1] -> (M, projection_dim) CLIP image embeddings."""

    def __init__(self, model: nn.Module, mean=(0.48145466, 0.4578275, 0.40821073),
                 std=(0.26862954, 0.26130258, 0.27577711)):
        super().__init__()
        self.model = model
        self.image_size = int(model.config.image_size)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    @property
    def embed_dim(self) -> int:
        return int(self.model.config.projection_dim)

    def preprocess(self, rgb: torch.Tensor) -> torch.Tensor:
        size = (self.image_size, self.image_size)
        if tuple(rgb.shape[-2:]) != size:
            rgb = F.interpolate(rgb, size=size, mode="bicubic", align_corners=False, antialias=True)
        return (rgb.clamp(0, 1) - self.mean) / self.std

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        dtype = next(self.model.parameters()).dtype
        pixels = self.preprocess(rgb.float()).to(dtype)
        return self.model(pixel_values=pixels).image_embeds
