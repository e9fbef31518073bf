"""Vertex Encoder (paper A.1): hand-mesh vertices (B, N, V, 3) -> per-frame vertex tokens.

1. spatial: per frame, remove translation (centroid) and scale (RMS distance to the centroid),
   a shared point-wise MLP, symmetric max-pool over the vertices (so any V works and the
   vertex order does not matter);
2. temporal: residual depthwise-separable 1-D conv blocks over the frames;
3. projection: Linear + LayerNorm to the cross-attention width D.

``tokens="pooled"`` (the paper) gives that one token per frame, (B, N, D). A single token makes
the DC layer's vertex cross-attention the same at every latent position (softmax over one key
is 1): a per-frame bias with no spatial selectivity.

``tokens="per_vertex"`` keeps **region tokens** that know where they lie on the UV atlas,
(B, N, K, D): the atlas's UV points are split into K regions by farthest-point sampling in UV
space (each UV point joins its nearest centre); a region's feature is the mean of the
point-MLP features of its vertices, joined with the frame's max-pooled feature, mixed over
time by the same kind of temporal blocks (per region), projected, and a Fourier embedding of
the region centre's (u, v) is added. ``token_uv`` (K, 2) holds the centres, so the DC layer can
let every latent position -- the U-Net's grid *is* the UV grid -- find the tokens near it
(models/dc_spatial.py). Regions rather than all 778 vertices keep the attention cheap; a vertex
on a UV seam belongs to the region of each of its UV points. The regions come from the hand's
atlas (``atlas``: ``"synthetic"``, the built-in hand, or ``"mano"``, MANO's UV layout from the
user's files), which left and right hands share.

``image_features=C > 0`` adds **image evidence at each vertex** (PressureFormer's idea, for the
image-space model): a small CNN over the hand crop (RGB, depth, depth validity) gives C feature
channels, sampled bilinearly where each vertex projects into the crop (``vertex_px``, from the
processor), projected and added to that vertex's point feature before the regions are pooled.
A region token then carries what the camera sees at that part of the hand, at a known UV place:
the image -> UV correspondence that image-space conditioning otherwise has to learn through the
U-Net. (Hidden vertices sample whatever covers them; the temporal blocks see the neighbours.)
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

IMAGE_INPUT_CHANNELS = 5  # rgb (3), depth (1), depth validity (1) of the hand crop

TOKEN_MODES = ("pooled", "per_vertex")


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


def farthest_points(points: np.ndarray, k: int) -> np.ndarray:
    """Indices of ``k`` farthest-point samples of ``points`` (P, 2), starting nearest the centroid."""
    if not 1 <= k <= len(points):
        raise ValueError(f"need 1 <= regions <= {len(points)} UV points, got {k}")
    chosen = [int(np.argmin(((points - points.mean(0)) ** 2).sum(1)))]
    dist = ((points - points[chosen[0]]) ** 2).sum(1)
    for _ in range(k - 1):
        chosen.append(int(np.argmax(dist)))
        dist = np.minimum(dist, ((points - points[chosen[-1]]) ** 2).sum(1))
    return np.asarray(chosen)


def uv_regions(atlas, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(weights (K, V), centres (K, 2)): row k averages the vertices of UV region k (see module doc)."""
    uv_vertex = np.full(len(atlas.uvs), -1, dtype=np.int64)  # the mesh vertex of every UV point
    uv_vertex[atlas.uv_faces.reshape(-1)] = atlas.faces.reshape(-1)
    used = np.nonzero(uv_vertex >= 0)[0]
    pts = atlas.uvs[used]
    centres = pts[farthest_points(pts, k)]
    region = np.argmin(((pts[:, None] - centres[None]) ** 2).sum(-1), axis=1)
    weights = np.zeros((k, atlas.num_vertices))
    np.add.at(weights, (region, uv_vertex[used]), 1.0)
    weights /= weights.sum(1, keepdims=True)  # every centre is its own region's member: no empty row
    return weights.astype(np.float32), centres.astype(np.float32)


def load_atlas(name: str):
    """The UV atlas named by the config (``synthetic`` or ``mano``); the right hand's (the left shares its UVs)."""
    if name == "synthetic":
        from egopressdiff.data.hand import synthetic_atlas

        return synthetic_atlas("right")
    if name == "mano":
        from egopressdiff.data.mano_uv import load_mano_atlas

        return load_mano_atlas("right")
    raise ValueError(f"vertex_encoder uv_atlas must be 'synthetic' or 'mano', got {name!r}")


def fourier_uv(uv: torch.Tensor, num_freqs: int) -> torch.Tensor:
    """(..., 2) UV -> (..., 4 * num_freqs) sin/cos features at frequencies pi * 2^j."""
    freqs = math.pi * 2.0 ** torch.arange(num_freqs, dtype=uv.dtype, device=uv.device)
    x = (uv[..., None] * freqs).flatten(-2)
    return torch.cat([x.sin(), x.cos()], dim=-1)


class VertexEncoder(ModelMixin, ConfigMixin):
    """(B, N, V, 3) vertices (metres, any frame) -> (B, N, out_dim) pooled or (B, N, K, out_dim) region tokens."""

    @register_to_config
    def __init__(self, out_dim: int, point_channels=(64, 128, 256), temporal_blocks: int = 2,
                 kernel_size: int = 3, eps: float = 1e-6, tokens: str = "pooled", regions: int = 64,
                 atlas="synthetic", uv_freqs: int = 6, image_features: int = 0):
        super().__init__()
        if tokens not in TOKEN_MODES:
            raise ValueError(f"vertex tokens must be one of {', '.join(TOKEN_MODES)}, got {tokens!r}")
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
        self.image_features = int(image_features)
        if self.image_features > 0:
            c = self.image_features
            self.image_net = nn.Sequential(nn.Conv2d(IMAGE_INPUT_CHANNELS, c, 3, padding=1), nn.SiLU(),
                                           nn.Conv2d(c, c, 3, padding=1), nn.SiLU(), nn.Conv2d(c, c, 3, padding=1))
            self.image_proj = nn.Linear(c, prev)
        self.eps = eps
        self.mode = tokens
        if tokens == "pooled":
            self.token_uv = None  # one token per frame, at no particular place
        else:
            weights, centres = uv_regions(load_atlas(atlas) if isinstance(atlas, str) else atlas, regions)
            self.register_buffer("region_weights", torch.from_numpy(weights))  # (K, V)
            self.register_buffer("token_uv", torch.from_numpy(centres))  # (K, 2)
            self.region_mix = nn.Sequential(nn.Linear(2 * prev, prev), nn.SiLU())
            self.uv_embed = nn.Linear(4 * uv_freqs, out_dim)
            self.uv_freqs = uv_freqs

    @staticmethod
    def normalize(vertices: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
        """Per frame: subtract the centroid, divide by the RMS distance to it."""
        centred = vertices - vertices.mean(dim=-2, keepdim=True)
        scale = centred.pow(2).sum(-1).mean(-1, keepdim=True).add(eps).sqrt()
        return centred / scale.unsqueeze(-1)

    def sample_image(self, image: torch.Tensor, vertex_px: torch.Tensor) -> torch.Tensor:
        """(B, N, 5, S, S) crops, (B, N, V, 2) vertex positions in the crop ([-1, 1], x then y; pixel
        centres, align_corners) -> (B, N, V, C) image features at every vertex."""
        b, n, v = vertex_px.shape[:3]
        f = self.image_net(image.flatten(0, 1).float())  # (BN, C, S, S)
        g = vertex_px.flatten(0, 1).float().unsqueeze(1)  # (BN, 1, V, 2)
        out = F.grid_sample(f, g, mode="bilinear", padding_mode="zeros", align_corners=True)  # (BN, C, 1, V)
        return out.squeeze(2).transpose(1, 2).reshape(b, n, v, -1)

    def forward(self, vertices: torch.Tensor, image: torch.Tensor | None = None,
                vertex_px: torch.Tensor | None = None) -> torch.Tensor:
        if vertices.ndim != 4 or vertices.shape[-1] != 3:
            raise ValueError(f"vertices must be (B, N, V, 3), got {tuple(vertices.shape)}")
        x = self.point_mlp(self.normalize(vertices.float(), self.eps))  # (B, N, V, C)
        if self.image_features > 0:
            if image is None or vertex_px is None:
                raise ValueError("this Vertex Encoder samples image features: pass image (B, N, 5, S, S) and "
                                 "vertex_px (B, N, V, 2)")
            x = x + self.image_proj(self.sample_image(image, vertex_px))
        pooled = x.amax(dim=-2)  # (B, N, C): symmetric max-pool over vertices
        if self.mode == "pooled":
            return self.norm(self.proj(self.temporal(pooled)))
        if vertices.shape[2] != self.region_weights.shape[1]:
            raise ValueError(f"per-vertex tokens need the atlas's {self.region_weights.shape[1]} vertices, "
                             f"got {vertices.shape[2]}")
        b, n, _, c = x.shape
        region = torch.einsum("kv,bnvc->bnkc", self.region_weights, x)
        h = self.region_mix(torch.cat([region, pooled.unsqueeze(2).expand_as(region)], dim=-1))
        k = h.shape[2]
        h = self.temporal(h.transpose(1, 2).reshape(b * k, n, c)).reshape(b, k, n, c).transpose(1, 2)
        return self.norm(self.proj(h)) + self.uv_embed(fourier_uv(self.token_uv, self.uv_freqs))

    def tokens(self, vertices: torch.Tensor, image: torch.Tensor | None = None,
               vertex_px: torch.Tensor | None = None) -> torch.Tensor:
        """(B, N, T, D) tokens for the DC layers: T = 1 (pooled) or K regions (per_vertex)."""
        out = self(vertices, image, vertex_px)
        return out.unsqueeze(2) if self.mode == "pooled" else out
