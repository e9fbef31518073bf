"""CLIP vision wrapper: per-frame image embeddings of the RGB crops.

Pre-processing follows the facts of ``CLIPImageProcessor`` as SVD uses it (resize to the
model's square input size with bicubic antialiasing, then normalise with the processor's
mean/std), done in torch so it runs batched on the accelerator (no torchvision).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
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


class ClipImageEncoder(ModelMixin, ConfigMixin):
    """(M, 3, H, W) RGB in [0, 1] -> (M, projection_dim) CLIP image embeddings.

    ``clip_config`` holds the ``CLIPVisionConfig`` arguments; ``clip_model`` (not part of the
    config) is an already built model, e.g. SVD's pretrained image encoder.
    """

    ignore_for_config = ["clip_model"]

    @register_to_config
    def __init__(self, clip_config: dict | None = None, image_mean=(0.48145466, 0.4578275, 0.40821073),
                 image_std=(0.26862954, 0.26130258, 0.27577711), clip_model=None):
        super().__init__()
        self.model = clip_model if clip_model is not None else build_clip_model(clip_config or {})
        self.image_size = int(self.model.config.image_size)
        self.register_buffer("mean", torch.tensor(image_mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(image_std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

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
