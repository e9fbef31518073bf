"""The Distribution-Calibrated (DC) spatial layer and its insertion into a diffusers SVD U-Net.

Every *spatial* ``BasicTransformerBlock`` (``transformer_blocks`` of each
``TransformerSpatioTemporalModel``; the temporal blocks are left alone) is replaced by a
:class:`DCSpatialBlock` that reuses the block's own modules (norms, self-attention, image
cross-attention ``attn2``, feed-forward; same residuals) and adds a vertex cross-attention:

    h  = h + attn1(norm1(h))
    n  = norm2(h)
    z_img = attn2(n, image tokens of the frame)        z_vtx = attn_vtx(n, vertex tokens of the frame)
    z_vtx' = (z_vtx - mu_vtx) / sqrt(var_vtx + eps) * sqrt(var_img + eps) + mu_img   (calibration)
    h  = h + z_img + g * z_vtx'
    h  = h + ff(norm3(h))

**Statistics over channels, per token.** With SVD's one token per frame, a cross-attention
output is the same vector at every spatial position (softmax over one key is 1), so mean/std
taken over positions give std 0: the calibrated branch would be the constant mu_img and the
vertex branch would get no gradient. We take mu/sigma over the *channel* dimension of each
token (like LayerNorm), with ``eps`` inside both square roots -- finite, with finite
gradients, even when either branch has zero variance (an all-zero or constant output).

**Start where SVD was.** ``g`` is a per-channel gate initialised to zero, so a pretrained U-Net
computes exactly what it computed before; its gradient (<dL/dh, z_vtx'>) is non-zero from the
first step, and once g != 0 the gradient reaches ``attn_vtx`` and the Vertex Encoder.
``attn_vtx`` starts as a copy of ``attn2`` (pretrained projections of the same width).
With ``calibrate=False`` (ablation "no DC calibration") the fusion is the plain sum
z_img + g * z_vtx.

**Spatial vertex attention** (``spatial_vertex=True``, for region tokens that carry a UV
position, models/vertex_encoder.py). The latent grid of the U-Net is the UV grid of the
pressure map, so the query at grid cell (i, j) of an h x w level sits at
(u, v) = ((j + 0.5) / w, 1 - (i + 0.5) / h) (EgoPressure's convention: row 0 is v = 1). The
vertex cross-attention's logits get a UV-distance bias, a Gaussian kernel in UV space:

    logit(q, k) += -beta * |uv_q - uv_k|^2 / (2 r^2),   r = 1 / sqrt(K)  (about a region's spacing)

with ``beta`` (``vtx_locality``) learned per block, starting at 1, so each position attends
mostly to the regions around it and the vertex branch can differ from place to place. With
one token (or no token positions) the bias is absent and the block is the paper's.

**Per-frame context.** The spatial blocks see hidden states (B*N, HW, C). A shared
:class:`FrameContext` holds image tokens (B*N, T_img, D) and vertex tokens (B*N, T_vtx, D), row
b*N+f holding frame f's tokens, so frame f attends only to its own tokens. If no context is
set the block falls back to the ``encoder_hidden_states`` diffusers passes (vanilla behaviour).
"""

from __future__ import annotations

import contextlib
import copy
import math

import torch
import torch.nn.functional as F
from torch import nn


class FrameContext:
    """Per-frame tokens shared by all DC spatial blocks of one U-Net during a forward pass."""

    def __init__(self):
        self.image: torch.Tensor | None = None
        self.vertex: torch.Tensor | None = None
        self.vertex_uv: torch.Tensor | None = None

    @contextlib.contextmanager
    def use(self, image: torch.Tensor | None, vertex: torch.Tensor | None, vertex_uv: torch.Tensor | None = None):
        """Set (B*N, T, D) image / vertex tokens (and the vertex tokens' (T, 2) UV) for a forward pass."""
        old = (self.image, self.vertex, self.vertex_uv)
        self.image, self.vertex, self.vertex_uv = image, vertex, vertex_uv
        try:
            yield self
        finally:
            self.image, self.vertex, self.vertex_uv = old


def latent_uv(num_positions: int, device=None) -> torch.Tensor:
    """(HW, 2) UV of the cells of a square h x w latent grid, row-major (see module doc)."""
    h = math.isqrt(num_positions)
    if h * h != num_positions:
        raise ValueError(f"spatial vertex attention needs a square latent grid, got {num_positions} positions")
    c = (torch.arange(h, dtype=torch.float32, device=device) + 0.5) / h
    v, u = torch.meshgrid(1 - c, c, indexing="ij")
    return torch.stack([u, v], dim=-1).reshape(-1, 2)


def uv_distance_bias(num_positions: int, token_uv: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    """(HW, K) attention-logit bias -strength * |uv_q - uv_k|^2 / (2 r^2), r = 1/sqrt(K)."""
    d2 = torch.cdist(latent_uv(num_positions, token_uv.device), token_uv.float()).pow(2)
    return -strength * d2 * (token_uv.shape[0] / 2.0)


def calibrate(z_vtx: torch.Tensor, z_img: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Give ``z_vtx`` the mean and std of ``z_img``, both taken over channels for each token.

    z_vtx' = (z_vtx - mu_vtx) / sqrt(var_vtx + eps) * sqrt(var_img + eps) + mu_img  (biased variances).
    ``eps`` sits inside both square roots: d sqrt(v)/dv is infinite at v = 0, so a branch with
    zero variance (an all-zero or constant output) would otherwise send inf/NaN gradients.
    """
    normed = F.layer_norm(z_vtx, z_vtx.shape[-1:], eps=eps)  # (z - mu)/sqrt(var + eps) over channels
    var_img, mu_img = torch.var_mean(z_img, dim=-1, keepdim=True, correction=0)
    return normed * (var_img + eps).sqrt() + mu_img


class DCSpatialBlock(nn.Module):
    """Drop-in replacement of a diffusers ``BasicTransformerBlock`` (layer_norm type) -- see module doc."""

    def __init__(self, block: nn.Module, context: FrameContext, calibrate: bool = True, eps: float = 1e-5,
                 spatial_vertex: bool = False):
        super().__init__()
        if getattr(block, "norm_type", "layer_norm") != "layer_norm" or block.attn2 is None:
            raise ValueError("DCSpatialBlock needs a layer_norm BasicTransformerBlock with cross-attention")
        if block.only_cross_attention or block.pos_embed is not None:
            raise ValueError("DCSpatialBlock does not support only_cross_attention or positional embeddings")
        # keep the original module names so the state dict is a superset of the diffusers one
        self.norm1, self.attn1 = block.norm1, block.attn1
        self.norm2, self.attn2 = block.norm2, block.attn2
        self.norm3, self.ff = block.norm3, block.ff
        self.attn_vtx = copy.deepcopy(block.attn2)
        self.vtx_gate = nn.Parameter(torch.zeros(block.norm2.normalized_shape[0]))
        if spatial_vertex:
            self.vtx_locality = nn.Parameter(torch.ones(()))
        self.spatial_vertex = spatial_vertex
        self.context = context
        self.use_calibration = calibrate
        self.eps = eps
        self._chunk_size = None
        self._chunk_dim = 0

    def set_chunk_feed_forward(self, chunk_size: int | None, dim: int = 0):
        self._chunk_size, self._chunk_dim = chunk_size, dim

    def _ff(self, x: torch.Tensor) -> torch.Tensor:
        if self._chunk_size is None:
            return self.ff(x)
        return torch.cat([self.ff(c) for c in x.split(self._chunk_size, dim=self._chunk_dim)], dim=self._chunk_dim)

    def forward(self, hidden_states, attention_mask=None, encoder_hidden_states=None,
                encoder_attention_mask=None, **unused):
        ctx = self.context
        image = ctx.image if ctx is not None and ctx.image is not None else encoder_hidden_states
        vertex = ctx.vertex if ctx is not None else None
        vertex_uv = ctx.vertex_uv if ctx is not None else None
        rows = hidden_states.shape[0]
        for name, tokens in (("image", image), ("vertex", vertex)):
            if tokens is not None and tokens.shape[0] != rows:
                raise ValueError(f"{name} tokens have {tokens.shape[0]} rows, hidden states {rows} (B*N)")

        hidden_states = self.attn1(self.norm1(hidden_states), attention_mask=attention_mask) + hidden_states
        normed = self.norm2(hidden_states)
        z = self.attn2(normed, encoder_hidden_states=image, attention_mask=encoder_attention_mask)
        if vertex is not None:
            bias = None
            if self.spatial_vertex and vertex_uv is not None and vertex.shape[1] > 1:
                # (HW, K) -> (rows * heads, HW, K) without a copy: what diffusers' processors expect
                bias = uv_distance_bias(normed.shape[1], vertex_uv, self.vtx_locality).to(normed.dtype)
                bias = bias.expand(rows * self.attn_vtx.heads, *bias.shape)
            z_vtx = self.attn_vtx(normed, encoder_hidden_states=vertex, attention_mask=bias)
            if self.use_calibration:
                z_vtx = calibrate(z_vtx, z, self.eps)
            z = z + self.vtx_gate * z_vtx
        hidden_states = z + hidden_states
        return self._ff(self.norm3(hidden_states)) + hidden_states


def swap_in_dc_spatial_blocks(unet: nn.Module, context: FrameContext, calibrate: bool = True,
                              eps: float = 1e-5, spatial_vertex: bool = False) -> list[DCSpatialBlock]:
    """Replace every spatial transformer block of a ``UNetSpatioTemporalConditionModel`` in place.

    Only the ``transformer_blocks`` of each ``TransformerSpatioTemporalModel`` are swapped; its
    ``temporal_transformer_blocks`` keep the diffusers behaviour. Returns the new blocks.
    """
    from diffusers.models.transformers.transformer_temporal import TransformerSpatioTemporalModel

    swapped = []
    # collect first: the module tree must not change while it is being walked
    targets = [m for m in unet.modules() if isinstance(m, TransformerSpatioTemporalModel)]
    for module in targets:
        for i, block in enumerate(module.transformer_blocks):
            if isinstance(block, DCSpatialBlock):  # already swapped: just rewire
                if block.spatial_vertex != spatial_vertex:
                    raise ValueError("the U-Net's DC blocks were built with another spatial_vertex setting")
                block.context, block.use_calibration, block.eps = context, calibrate, eps
                swapped.append(block)
                continue
            new = DCSpatialBlock(block, context, calibrate=calibrate, eps=eps, spatial_vertex=spatial_vertex)
            module.transformer_blocks[i] = new
            swapped.append(new)
    return swapped
