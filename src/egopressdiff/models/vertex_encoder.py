"""Vertex Encoder (paper A.1): hand-mesh vertices (B, N, V, 3) -> one token per frame (B, N, D).

1. spatial: per frame, remove translation (centroid) and scale (RMS distance to the centroid),
   a shared point-wise MLP, symmetric max-pool over the vertices (so any V works and the
   vertex order does not matter);
2. temporal: residual depthwise-separable 1-D conv blocks over the frames;
3. projection: Linear + LayerNorm to the cross-attention width D.
"""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


class DepthwiseSeparableBlock(nn.Module):
    """Residual temporal block on (B, N, C): LayerNorm per frame -> depthwise conv over frames -> pointwise conv -> SiLU."""

    def __init__(self, channels: int, kernel_size: int = 3):
        super().__init__()
        self.norm = nn.LayerNorm(channels)  # per frame, so mixing over time stays local
        # replicate padding: clip borders see a held signal, not a drop to zero
        self.depthwise = nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2,
                                   groups=channels, padding_mode="replicate")
        self.pointwise = nn.Conv1d(channels, channels, 1)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, C)
        h = self.depthwise(self.norm(x).transpose(1, 2))
        return x + self.act(self.pointwise(h)).transpose(1, 2)


class VertexEncoder(ModelMixin, ConfigMixin):
    """(B, N, V, 3) vertices (metres, any frame) -> (B, N, out_dim) tokens."""

    @register_to_config
    def __init__(self, out_dim: int, point_channels=(64, 128, 256), temporal_blocks: int = 2,
                 kernel_size: int = 3, eps: float = 1e-6):
        super().__init__()
        layers: list[nn.Module] = []
        prev = 3
        for i, c in enumerate(point_channels):
            layers.append(nn.Linear(prev, c))
            if i < len(point_channels) - 1:
                layers.append(nn.SiLU())
            prev = c
        self.point_mlp = nn.Sequential(*layers)
        self.temporal = nn.Sequential(*[DepthwiseSeparableBlock(prev, kernel_size) for _ in range(temporal_blocks)])
        self.proj = nn.Linear(prev, out_dim)
        self.norm = nn.LayerNorm(out_dim)
        self.eps = eps

    @staticmethod
    def normalize(vertices: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
        """Per frame: subtract the centroid, divide by the RMS distance to it."""
        centred = vertices - vertices.mean(dim=-2, keepdim=True)
        scale = centred.pow(2).sum(-1).mean(-1, keepdim=True).add(eps).sqrt()
        return centred / scale.unsqueeze(-1)

    def forward(self, vertices: torch.Tensor) -> torch.Tensor:
        if vertices.ndim != 4 or vertices.shape[-1] != 3:
            raise ValueError(f"vertices must be (B, N, V, 3), got {tuple(vertices.shape)}")
        x = self.normalize(vertices.float(), self.eps)
        x = self.point_mlp(x).amax(dim=-2)  # (B, N, C): symmetric max-pool over vertices
        x = self.temporal(x)
        return self.norm(self.proj(x))
