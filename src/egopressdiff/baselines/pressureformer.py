"""A per-frame baseline in the style of PressureFormer (EgoPressure): vertex queries, UV refinement.

The EgoPressure paper's UV-domain baseline predicts pressure *on the hand mesh*: the hand's
vertices are query tokens that cross-attend to image features of the hand crop, and the
per-vertex features are laid onto the UV atlas and refined there. Written here from that
description, with the inputs and interface of :class:`~egopressdiff.baselines.PerFrameBaseline`
(one frame at a time: a clip batch (B, N, ...) is B·N independent frames):

1. **Feature tokens.** A conv encoder (GroupNorm blocks, stride 2 per level) turns the frame's
   inputs into a G×G feature map, G = input size / ``token_stride``; its cells are the key/value
   tokens, each plus a learned projection of a Fourier encoding of its 2D position.
   ``cond_space="image"``: RGB crop + depth + pose map (7 channels at the crop size), positions
   in crop coordinates [-1, 1]. ``cond_space="uv"``: ``uv_cond`` + UV mask + two UV-coordinate
   channels (as the UV-space baselines), positions in UV-map coordinates.
2. **Vertex tokens**, one per mesh vertex (778), the sum of: a learned per-vertex embedding; a
   Fourier encoding of the vertex's place on the UV atlas; (``use_vertices``) an MLP of its
   geometry -- camera-frame coordinates centred on the centroid and scaled by 1/0.1 m, the
   centroid (metres), and its approximate place in the hand crop (its pinhole projection
   relative to the box the processor crops, ``CROP_MARGIN`` times the projected vertices' box;
   a single frame does not know the clip's smoothing of that box); (``vertex_aligned``) a
   projection of the encoder's full-resolution first-level features sampled bilinearly where the
   vertex lies in the input (its UV position in ``uv`` space, its crop position in ``image``
   space, which needs ``use_vertices``), so each vertex starts from its own local evidence.
3. **Transformer decoder.** The tokens of ``num_queries`` vertices are the queries of
   ``num_layers`` pre-norm ``nn.TransformerDecoderLayer`` layers: self-attention over the hand,
   cross-attention to the feature tokens, feed-forward. With every vertex a query
   (``num_queries=778``, the full-size preset) that is the per-vertex output. The tiny presets
   use 256 queries (coarse-mesh queries, as in METRO; attention among all 778 doubles the cost of
   a training step on a CPU): farthest-point samples of the vertices by hop distance on the mesh.
   Afterwards every other vertex takes the inverse-hop-distance mix of its three nearest query
   vertices plus its own token, and (``fine_layer``) every vertex reads the feature tokens once
   more in a cross-attention + feed-forward layer without self-attention (coarse to fine:
   without it image detail would reach the UV map only at the query spacing).

   **Locality** (``locality``): a vertex that knows its place in the input's coordinates (its UV
   position in ``uv`` space, its crop position in ``image`` space with ``use_vertices``) gets a
   Gaussian distance bias on its cross-attention logits, ``-beta_h * |p_q - p_k|^2 / (2 r^2)``,
   ``r`` the token spacing, with fixed per-head strengths ``beta_h = locality * 4^-h`` (like
   ALiBi's fixed slopes): head 0 looks around the vertex, the last nearly everywhere. Fixed, not
   learned: an attention mask that needs a gradient takes PyTorch's slow attention path on a CPU.
4. **Onto the atlas.** Each texel of a ``uv_out_size``² UV map takes the barycentric mix of its
   atlas triangle's three vertex features (every texel's triangle and weights come from the
   atlas named by ``uv_atlas``, held in buffers built at init and not saved); texels outside the
   atlas are 0.
5. **UV refinement and head.** A few conv blocks over [features, atlas mask, UV coordinates],
   a 1×1 conv to the 9 PressureVision classes, bilinearly resized to 224 (texel centres aligned).

Training and decoding are the classification baseline's: soft cross-entropy on the 9 bins
(ε on each neighbour), weighted by (1 + UV mask), decoded to the bin midpoints (``argmax``) or
their expectation; predictions are >= 0 and multiplied by the UV mask. Ablation switches zero
inputs as in the other baselines (``use_depth``, ``use_pose``); ``use_vertices=False`` leaves the
vertex tokens without mesh geometry (their embedding and atlas position only; in image space
also no vertex-aligned features and no locality, since the vertex's place in the crop is unknown).

The model scatters through one atlas, so the data must use it: a batch whose UV mask is not that
atlas's mask is refused (a model trained on the built-in hand, ``uv_atlas="synthetic"``, cannot
predict on MANO's layout, ``"mano"``, or the other way round).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from egopressdiff.baselines.perframe import (
    NUM_CLASSES,
    VERTEX_SCALE_M,
    _conv_block,
    decode_classes,
    quantize_pressure,
    soft_targets,
)
from egopressdiff.data.layout import NUM_VERTICES, UV_SIZE
from egopressdiff.data.processor import CROP_MARGIN
from egopressdiff.errors import CheckpointError, ConfigError

MODEL_TYPE = "pressureformer_baseline"
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"  # diffusers' ModelMixin file name
CONFIG_NAME = "config.json"
ATLASES = ("synthetic", "mano")
MAX_MASK_MISMATCH = 0.01  # share of UV texels on which the data's mask may differ from the model's atlas


# ---------------------------------------------------------------------------------------------
# config


@dataclass
class PressureFormerConfig:
    """Sizes and switches of the PressureFormer-style baseline (see module doc)."""

    name: str = "baseline-pformer-tiny"
    cond_space: str = "image"  # "image" | "uv"
    clip_length: int = 4  # frames per training clip (each is treated independently)
    crop_size: int = 64
    uv_cond_size: int = 64
    uv_cond_channels: int = 7
    width: int = 24  # channels of the feature encoder's first level (doubled per level, up to d_model)
    token_stride: int = 4  # input size / token grid side (a power of 2)
    d_model: int = 96  # token width
    num_heads: int = 4
    num_layers: int = 2
    ffn_dim: int = 192
    num_queries: int = 256  # query vertices of the decoder (778 = every vertex)
    vertex_aligned: bool = True  # add the first-level features sampled at the vertex's place in the input
    fine_layer: bool = True  # with num_queries < 778: a cross-attention layer for every vertex after the decoder
    locality: float = 1.0  # strength of head 0's Gaussian distance bias on the cross-attention (0: none)
    pos_freqs: int = 4  # Fourier frequencies pi * 2^j, j < pos_freqs, of every position encoding
    uv_out_size: int = 64  # side of the UV map the vertex features are scattered onto
    refine_width: int = 32
    refine_blocks: int = 2
    uv_atlas: str = "synthetic"  # the atlas of the scattering: "synthetic" (built-in hand) | "mano"
    use_depth: bool = True
    use_pose: bool = True
    use_vertices: bool = True
    use_uv_mask_weight: bool = True
    soft_label_eps: float = 0.1
    decode: str = "argmax"  # "argmax" | "expectation"

    PRESETS = ("baseline-pformer-tiny", "baseline-pformer-tiny-uv", "baseline-pformer")

    @classmethod
    def preset(cls, name: str) -> PressureFormerConfig:
        """Presets: ``baseline-pformer-tiny[-uv]`` (CPU-sized, the inputs of EgoPressDiff ``tiny``) and
        ``baseline-pformer`` (crop 256, UV conditioning 224, MANO's atlas: the inputs of ``svd``)."""
        if name not in cls.PRESETS:
            raise ConfigError(f"unknown PressureFormer preset {name!r} (known: {', '.join(cls.PRESETS)})")
        cfg = cls(name=name, cond_space="uv" if name.endswith("-uv") else "image")
        if "tiny" not in name:
            cfg.crop_size, cfg.uv_cond_size, cfg.clip_length = 256, 224, 8
            cfg.width, cfg.token_stride, cfg.d_model, cfg.num_heads = 32, 16, 256, 8
            cfg.num_layers, cfg.ffn_dim, cfg.pos_freqs, cfg.num_queries = 4, 1024, 6, NUM_VERTICES
            cfg.uv_out_size, cfg.refine_width, cfg.refine_blocks = 112, 64, 3
            cfg.uv_atlas = "mano"
        return cfg

    def to_dict(self) -> dict:
        return copy.deepcopy(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict) -> PressureFormerConfig:
        """From a dict of fields; missing fields come from the preset named by ``name``.

        ``model_type`` (if present) must be ``pressureformer_baseline``; ``preset`` is a synonym
        of ``name``; any other unknown key, or a value of the wrong type, is a ConfigError.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"PressureFormer config must be a mapping, got {type(data).__name__}")
        data = dict(data)
        mt = data.pop("model_type", MODEL_TYPE)
        if mt != MODEL_TYPE:
            raise ConfigError(f"config is for model_type {mt!r}, not {MODEL_TYPE!r}")
        if "preset" in data:
            data.setdefault("name", data.pop("preset"))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown PressureFormer config key {unknown[0]!r} (known: {', '.join(sorted(known))})")
        name = data.get("name", cls.name)
        out = (cls.preset(name) if name in cls.PRESETS else cls(name=str(name))).to_dict()
        for k, v in data.items():
            default = out[k]
            if not (type(v) is type(default) or (isinstance(default, float) and type(v) is int)):
                raise ConfigError(f"PressureFormer config key {k} must be {type(default).__name__}, got {v!r}")
            out[k] = float(v) if isinstance(default, float) else v
        cfg = cls(**out)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.cond_space not in ("image", "uv"):
            raise ConfigError(f"cond_space must be 'image' or 'uv', got {self.cond_space!r}")
        if self.decode not in ("argmax", "expectation"):
            raise ConfigError(f"decode must be 'argmax' or 'expectation', got {self.decode!r}")
        if self.uv_atlas not in ATLASES:
            raise ConfigError(f"uv_atlas must be one of {', '.join(ATLASES)}, got {self.uv_atlas!r}")
        for k in ("clip_length", "crop_size", "uv_cond_size", "uv_cond_channels", "width", "token_stride",
                  "d_model", "num_heads", "num_layers", "ffn_dim", "num_queries", "pos_freqs", "refine_width",
                  "refine_blocks"):
            if getattr(self, k) < 1:
                raise ConfigError(f"PressureFormer config {k} must be >= 1, got {getattr(self, k)!r}")
        s = self.token_stride
        if s & (s - 1):
            raise ConfigError(f"token_stride must be a power of 2, got {s}")
        size = self.crop_size if self.cond_space == "image" else self.uv_cond_size
        what = "crop_size" if self.cond_space == "image" else "uv_cond_size"
        if size % s:
            raise ConfigError(f"{what} ({size}) must be divisible by token_stride ({s})")
        if self.d_model % self.num_heads:
            raise ConfigError(f"d_model ({self.d_model}) must be divisible by num_heads ({self.num_heads})")
        if self.num_queries > NUM_VERTICES:
            raise ConfigError(f"num_queries must be <= {NUM_VERTICES} (the mesh's vertices), got {self.num_queries}")
        if self.uv_out_size < 8:
            raise ConfigError(f"uv_out_size must be >= 8, got {self.uv_out_size}")
        if self.locality < 0:
            raise ConfigError(f"locality must be >= 0, got {self.locality}")
        if not 0 <= self.soft_label_eps < 0.5:
            raise ConfigError("soft_label_eps must be in [0, 0.5)")

    def replace(self, **overrides) -> PressureFormerConfig:
        data = self.to_dict()
        data.update(overrides)
        return type(self).from_dict(data)


# ---------------------------------------------------------------------------------------------
# geometry helpers


def load_atlas(name: str):
    """The right hand's UV atlas named by the config (the left hand shares its UV layout)."""
    if name == "synthetic":
        from egopressdiff.data.hand import synthetic_atlas

        return synthetic_atlas("right")
    from egopressdiff.data.mano_uv import load_mano_atlas

    return load_mano_atlas("right")


def fourier_features(x: torch.Tensor, num_freqs: int) -> torch.Tensor:
    """(..., D) -> (..., 2·D·num_freqs): sin and cos at frequencies pi * 2^j."""
    freqs = math.pi * 2.0 ** torch.arange(num_freqs, dtype=x.dtype, device=x.device)
    z = (x[..., None] * freqs).flatten(-2)
    return torch.cat([z.sin(), z.cos()], dim=-1)


def texel_scatter_tables(atlas, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every texel inside the atlas at ``size``²: its flat index, triangle vertices (K, 3), barycentrics (K, 3)."""
    tm = atlas.texels(size)
    inside = np.nonzero(tm.face.reshape(-1) >= 0)[0]
    tri = atlas.faces[tm.face.reshape(-1)[inside]]
    bary = tm.bary.reshape(-1, 3)[inside]
    return inside.astype(np.int64), tri.astype(np.int64), bary.astype(np.float32)


def mesh_hops(atlas) -> np.ndarray:
    """(V, V) hop distances along the mesh's edges; vertices of separate parts are V hops apart."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import shortest_path

    f, v = atlas.faces, atlas.num_vertices
    rows, cols = f.reshape(-1), np.roll(f, -1, axis=1).reshape(-1)
    adj = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(v, v)).tocsr()
    hops = shortest_path(adj, unweighted=True, directed=False)
    hops[~np.isfinite(hops)] = v
    return hops


def query_vertices(hops: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``k`` query vertices by farthest-point sampling of ``hops`` (from vertex 0), and for every vertex
    its three nearest queries (indices into the k) with inverse-hop weights (a query vertex: itself only)."""
    v = len(hops)
    chosen = [0]
    dist = hops[0].copy()
    for _ in range(k - 1):
        chosen.append(int(np.argmax(dist)))
        dist = np.minimum(dist, hops[chosen[-1]])
    chosen = np.asarray(chosen)
    to_queries = hops[:, chosen]  # (V, k)
    n = min(3, k)
    nearest = np.argsort(to_queries, axis=1, kind="stable")[:, :n]
    d = np.take_along_axis(to_queries, nearest, axis=1)
    w = np.where(d[:, :1] == 0, (np.arange(n) == 0).astype(np.float64)[None], 1.0 / np.maximum(d, 1e-9))
    return chosen, nearest.reshape(v, n), (w / w.sum(1, keepdims=True)).astype(np.float32)


def vertex_uv_positions(atlas) -> np.ndarray:
    """(V, 2) each vertex's place on the UV map in [-1, 1] (x = column, y = row); a vertex on a seam
    takes its first UV point."""
    uv_of_vertex = np.zeros((atlas.num_vertices, 2))
    seen = np.zeros(atlas.num_vertices, bool)
    for v, t in zip(atlas.faces.reshape(-1), atlas.uv_faces.reshape(-1)):
        if not seen[v]:
            uv_of_vertex[v], seen[v] = atlas.uvs[t], True
    return np.stack([2 * uv_of_vertex[:, 0] - 1, 1 - 2 * uv_of_vertex[:, 1]], axis=1).astype(np.float32)


def uv_grid_positions(size: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(2, size, size) the UV-map coordinates of every texel centre in [-1, 1] (x = column, y = row)."""
    lin = torch.linspace(-1.0, 1.0, size, device=device, dtype=dtype)
    yy, xx = torch.meshgrid(lin, lin, indexing="ij")
    return torch.stack([xx, yy])


def token_positions(grid: int, stride: int, cond_space: str, device=None, dtype=torch.float32) -> torch.Tensor:
    """(G², 2) centres of the G×G token cells in the input's coordinates [-1, 1] (x, y).

    Image crops are pixel areas ([-1, 1] spans the crop's edges); UV maps are texel centres
    (column = u·(R−1)), so that the tokens and the vertices' UV positions share coordinates.
    """
    j = torch.arange(grid, device=device, dtype=dtype) + 0.5
    if cond_space == "image":
        lin = j / grid * 2 - 1
    else:
        size = grid * stride
        lin = (j * stride - 0.5) / (size - 1) * 2 - 1
    yy, xx = torch.meshgrid(lin, lin, indexing="ij")
    return torch.stack([xx, yy], dim=-1).reshape(-1, 2)


def crop_positions(vertices: torch.Tensor) -> torch.Tensor:
    """(M, V, 3) camera-frame vertices -> (M, V, 2) their approximate place in the hand crop, [-1, 1].

    The processor crops a square around the projected vertices' box, CROP_MARGIN times its larger
    side; in normalised image coordinates (x/z, y/z) the same box needs no intrinsics (fx ≈ fy).
    """
    q = vertices[..., :2] / vertices[..., 2:3].clamp_min(1e-3)
    lo, hi = q.amin(dim=1, keepdim=True), q.amax(dim=1, keepdim=True)
    half = (CROP_MARGIN * (hi - lo).amax(dim=-1, keepdim=True) / 2).clamp_min(1e-6)
    return (q - (lo + hi) / 2) / half


# ---------------------------------------------------------------------------------------------
# network pieces


class _FeatureEncoder(nn.Module):
    """(M, C, H, W) image or UV inputs -> first-level features (M, width, H, W), (M, G², d_model) feature tokens.

    G = H / stride.
    """

    def __init__(self, in_ch: int, width: int, stride: int, d_model: int):
        super().__init__()
        layers, c = [_conv_block(in_ch, width)], width
        for i in range(int(round(math.log2(stride)))):
            ch = min(width * 2 ** (i + 1), max(width, d_model))
            layers.append(_conv_block(c, ch, stride=2))
            c = ch
        self.net = nn.Sequential(*layers)
        self.proj = nn.Conv2d(c, d_model, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        first = self.net[0](x)
        return first, self.proj(self.net[1:](first)).flatten(2).transpose(1, 2)


class _VertexTokens(nn.Module):
    """(M, V, 3) camera-frame vertices -> (M, V, d_model) per-vertex tokens (see module doc, step 2)."""

    def __init__(self, cfg: PressureFormerConfig, vertex_uv: np.ndarray):
        super().__init__()
        f = cfg.pos_freqs
        self.num_freqs = f
        self.embedding = nn.Parameter(torch.randn(len(vertex_uv), cfg.d_model) * 0.02)
        self.register_buffer("vertex_uv", torch.from_numpy(vertex_uv), persistent=False)
        self.uv_proj = nn.Linear(4 * f, cfg.d_model)
        self.geometry = None
        if cfg.use_vertices:
            # Fourier + raw: local coords (3), crop position (2); raw centroid (3)
            in_dim = 2 * 3 * f + 3 + 2 * 2 * f + 2 + 3
            self.geometry = nn.Sequential(nn.Linear(in_dim, cfg.d_model), nn.SiLU(),
                                          nn.Linear(cfg.d_model, cfg.d_model))

    def forward(self, vertices: torch.Tensor) -> torch.Tensor:
        m = vertices.shape[0]
        e = self.embedding + self.uv_proj(fourier_features(self.vertex_uv.to(self.embedding.dtype), self.num_freqs))
        e = e.unsqueeze(0).expand(m, -1, -1)
        if self.geometry is None:
            return e
        c = vertices.mean(dim=1, keepdim=True)
        local = (vertices - c) / VERTEX_SCALE_M
        crop = crop_positions(vertices)
        feats = torch.cat([fourier_features(local, self.num_freqs), local, fourier_features(crop, self.num_freqs),
                           crop, c.expand_as(vertices)], dim=-1)
        return e + self.geometry(feats)


class _FineCrossAttention(nn.Module):
    """Every vertex token reads the feature tokens: pre-norm cross-attention, then feed-forward (no self-attention).

    Written with ``F.scaled_dot_product_attention`` so the per-head mask broadcasts over the frames
    (778 x G² per head, not copied for every frame).
    """

    def __init__(self, d_model: int, num_heads: int, ffn_dim: int):
        super().__init__()
        self.heads = num_heads
        self.norm_attn = nn.LayerNorm(d_model)
        self.to_q = nn.Linear(d_model, d_model)
        self.to_kv = nn.Linear(d_model, 2 * d_model)
        self.to_out = nn.Linear(d_model, d_model)
        self.norm_ff = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, ffn_dim), nn.GELU(), nn.Linear(ffn_dim, d_model))

    def forward(self, x: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        m, v, d = x.shape

        def split(t):  # (M, L, d) -> (M, heads, L, d / heads)
            return t.view(m, -1, self.heads, d // self.heads).transpose(1, 2)

        q = split(self.to_q(self.norm_attn(x)))
        k, val = (split(t) for t in self.to_kv(memory).chunk(2, dim=-1))
        attn = F.scaled_dot_product_attention(q, k, val, attn_mask=mask)
        x = x + self.to_out(attn.transpose(1, 2).reshape(m, v, d))
        return x + self.ff(self.norm_ff(x))


class _UVRefiner(nn.Module):
    """(M, C, R, R) scattered vertex features (+ atlas mask and UV coordinates) -> (M, 9, R, R) logits."""

    def __init__(self, in_ch: int, width: int, blocks: int):
        super().__init__()
        layers, c = [], in_ch + 3
        for _ in range(blocks):
            layers.append(_conv_block(c, width))
            c = width
        self.net = nn.Sequential(*layers)
        self.head = nn.Conv2d(width, NUM_CLASSES, 1)

    def forward(self, x: torch.Tensor, layout: torch.Tensor) -> torch.Tensor:
        return self.head(self.net(torch.cat([x, layout.expand(len(x), -1, -1, -1)], dim=1)))


# ---------------------------------------------------------------------------------------------
# the model


class PressureFormerBaseline(ModelMixin, ConfigMixin):
    """PressureFormer-style per-frame baseline with the model interface of the other baselines (module doc).

    A diffusers ``ModelMixin``: ``save_pretrained`` writes ``config.json`` (the registered
    ``settings``, i.e. the :class:`PressureFormerConfig` fields, and ``model_type``) and
    ``diffusion_pytorch_model.safetensors``. ``model.config`` is the typed :class:`PressureFormerConfig`.
    The atlas tables (texel triangles, barycentrics, vertex UV positions, the UV mask) are rebuilt
    from ``uv_atlas`` at init and are not part of the saved weights.
    """

    config_name = CONFIG_NAME

    @register_to_config
    def __init__(self, settings: dict | None = None, model_type: str = MODEL_TYPE):
        super().__init__()
        if model_type != MODEL_TYPE:
            raise ConfigError(f"config is for model_type {model_type!r}, not {MODEL_TYPE!r}")
        config = settings if isinstance(settings, PressureFormerConfig) else \
            PressureFormerConfig.from_dict(dict(settings or {}))
        config.validate()
        self._settings = config
        if isinstance(settings, PressureFormerConfig):  # register plain JSON, not the object
            self.register_to_config(settings=config.to_dict())
        atlas = load_atlas(config.uv_atlas)
        if atlas.num_vertices != NUM_VERTICES:
            raise ConfigError(f"the {config.uv_atlas} atlas has {atlas.num_vertices} vertices, not {NUM_VERTICES}")
        index, tri, bary = texel_scatter_tables(atlas, config.uv_out_size)
        self.register_buffer("texel_index", torch.from_numpy(index), persistent=False)
        self.register_buffer("texel_vertices", torch.from_numpy(tri), persistent=False)
        self.register_buffer("texel_bary", torch.from_numpy(bary), persistent=False)
        r = config.uv_out_size
        layout = torch.cat([torch.from_numpy(atlas.mask(r))[None], uv_grid_positions(r)])[None]  # (1, 3, R, R)
        self.register_buffer("uv_layout", layout, persistent=False)
        self.register_buffer("atlas_mask", torch.from_numpy(atlas.mask(UV_SIZE)), persistent=False)
        queries, nearest, weights = (query_vertices(mesh_hops(atlas), config.num_queries)
                                     if config.num_queries < NUM_VERTICES else (np.arange(NUM_VERTICES), None, None))
        self.register_buffer("query_index", torch.from_numpy(queries), persistent=False)
        self.register_buffer("upsample_index", None if nearest is None else torch.from_numpy(nearest), persistent=False)
        self.register_buffer("upsample_weight", None if weights is None else torch.from_numpy(weights),
                             persistent=False)

        in_ch = 7 if config.cond_space == "image" else config.uv_cond_channels + 3
        d = config.d_model
        self.feature_encoder = _FeatureEncoder(in_ch, config.width, config.token_stride, d)
        self.key_pos = nn.Linear(4 * config.pos_freqs, d)
        self.key_norm = nn.LayerNorm(d)
        self.vertex_tokens = _VertexTokens(config, vertex_uv_positions(atlas))
        self.decoder = nn.ModuleList([
            nn.TransformerDecoderLayer(d, config.num_heads, config.ffn_dim, dropout=0.0, activation="gelu",
                                       batch_first=True, norm_first=True) for _ in range(config.num_layers)])
        self.decoder_norm = nn.LayerNorm(d)
        coarse = config.num_queries < NUM_VERTICES
        self.fine = _FineCrossAttention(d, config.num_heads, config.ffn_dim) if coarse and config.fine_layer else None
        self.fine_norm = nn.LayerNorm(d) if self.fine is not None else None
        located = config.cond_space == "uv" or config.use_vertices  # the vertices know where they are in the input
        self.aligned = nn.Linear(config.width, d) if config.vertex_aligned and located else None
        strengths = config.locality * 4.0 ** -torch.arange(config.num_heads, dtype=torch.float32)
        self.register_buffer("head_locality", strengths if config.locality > 0 and located else None,
                             persistent=False)
        self.vertex_out = nn.Linear(d, config.refine_width)
        self.uv_refiner = _UVRefiner(config.refine_width, config.refine_width, config.refine_blocks)

    @property
    def config(self) -> PressureFormerConfig:
        return self._settings

    @property
    def model_type(self) -> str:
        return MODEL_TYPE

    # -- construction / persistence ------------------------------------------------------
    @classmethod
    def from_config(cls, config=None, **kwargs) -> PressureFormerBaseline:
        """A fresh model from a preset name, a dict of config fields, a config object, or a path to
        a ``config.json`` / YAML file (or a folder holding ``config.json``).

        A dict in diffusers' form (``{"settings": {...}}``, as in a saved ``config.json``) goes
        through ``ConfigMixin.from_config``.
        """
        if isinstance(config, dict) and ("settings" in config or "_class_name" in config):
            return super().from_config(config, **kwargs)
        if isinstance(config, PressureFormerConfig):
            return cls(config)
        if isinstance(config, dict):
            return cls(PressureFormerConfig.from_dict(config))
        if isinstance(config, str) and config in PressureFormerConfig.PRESETS:
            return cls(PressureFormerConfig.preset(config))
        p = Path(config)
        if p.is_dir():
            p = p / CONFIG_NAME
        if not p.is_file():
            raise ConfigError(f"{config!r} is neither a PressureFormer preset "
                              f"({', '.join(PressureFormerConfig.PRESETS)}) nor a config file")
        try:
            if p.suffix in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(p.read_text(encoding="utf-8"))
            else:
                data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot read PressureFormer config {p}: {' '.join(str(e).split())}") from None
        if isinstance(data, dict) and "settings" in data:
            data = data["settings"]
        return cls(PressureFormerConfig.from_dict(data))

    def save_pretrained(self, directory, overwrite: bool = True) -> Path:
        """diffusers' ``save_pretrained`` (config.json + safetensors), into a folder that appears atomically."""
        from egopressdiff.fsutil import atomic_dir

        directory = Path(directory)
        with atomic_dir(directory, overwrite=overwrite) as tmp:
            super().save_pretrained(tmp, safe_serialization=True)
        return directory

    @classmethod
    def from_pretrained(cls, directory, **kwargs) -> PressureFormerBaseline:
        """Load a ``save_pretrained`` folder (safetensors only); anything else is a CheckpointError."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        d = Path(directory)
        cfg_path = d / CONFIG_NAME
        if not cfg_path.is_file():
            raise CheckpointError(f"model folder {d} has no {CONFIG_NAME}")
        try:
            data = json.loads(cfg_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise CheckpointError(f"cannot read {cfg_path}: {' '.join(str(e).split())}") from None
        mt = data.get("model_type") if isinstance(data, dict) else None
        if mt != MODEL_TYPE:
            raise CheckpointError(f"{d} holds a model of type {mt!r}, not a PressureFormer baseline ({MODEL_TYPE})")
        w_path = d / WEIGHTS_NAME
        if not w_path.is_file():
            raise CheckpointError(f"model folder {d} has no {WEIGHTS_NAME}")
        try:
            model = cls(PressureFormerConfig.from_dict(data.get("settings") or {}))
        except ConfigError as e:
            raise CheckpointError(f"{cfg_path}: {e}") from None
        try:
            state = load_file(str(w_path))
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"cannot read weights {w_path}: {' '.join(str(e).split())}") from None
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise CheckpointError(f"weights {w_path} do not fit the config: {str(e).splitlines()[0]}") from None
        return model

    # -- the model interface ---------------------------------------------------------------
    def data_requirements(self) -> dict:
        """What the clip dataset must deliver for this model."""
        c = self.config
        uv = c.cond_space == "uv"
        return {"clip_length": c.clip_length, "crop_size": c.crop_size, "uv_conditioning": uv,
                "uv_cond_size": c.uv_cond_size if uv else None}

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def parameter_counts(self) -> dict:
        def n(*modules):
            return sum(p.numel() for m in modules for p in m.parameters())

        return {"total": n(self), "trainable": sum(p.numel() for p in self.trainable_parameters()),
                "feature_encoder": n(self.feature_encoder, self.key_pos, self.key_norm),
                "vertex_tokens": n(self.vertex_tokens) + (n(self.aligned) if self.aligned is not None else 0),
                "decoder": n(self.decoder, self.decoder_norm),
                "fine_layer": n(self.fine, self.fine_norm) if self.fine is not None else 0,
                "uv_refiner": n(self.vertex_out, self.uv_refiner)}

    def _device_dtype(self):
        p = next(self.parameters())
        return p.device, p.dtype

    def _check_atlas(self, batch: dict) -> None:
        mask = batch["uv_mask"]
        if tuple(mask.shape[-2:]) != (UV_SIZE, UV_SIZE):
            raise ConfigError(f"uv_mask must be {UV_SIZE}x{UV_SIZE}, got {tuple(mask.shape[-2:])}")
        differ = (mask.to(self.atlas_mask.device) > 0.5).ne(self.atlas_mask > 0.5).float().mean().item()
        if differ > MAX_MASK_MISMATCH:
            raise ConfigError(f"the data's UV mask is not the {self.config.uv_atlas!r} atlas this model scatters "
                              f"onto ({differ:.1%} of the texels differ): use a model with the data's atlas "
                              f"(uv_atlas: {', '.join(ATLASES)})")

    def _inputs(self, batch: dict) -> tuple[torch.Tensor, int, int]:
        """Frames as (B*N, C, H, W) encoder input, B and N."""
        dev, dt = self._device_dtype()
        c = self.config
        if c.cond_space == "image":
            rgb = batch["rgb"]
            b, n = rgb.shape[:2]
            depth = batch["depth"].to(dev, dt)
            pose = batch["pose_map"].to(dev, dt)
            if not c.use_depth:
                depth = torch.zeros_like(depth)
            if not c.use_pose:
                pose = torch.zeros_like(pose)
            return torch.cat([rgb.to(dev, dt), depth, pose], dim=2).flatten(0, 1), b, n
        if "uv_cond" not in batch:
            raise ConfigError("this baseline uses UV conditioning (cond_space='uv'): the batch has no uv_cond; "
                              "build the dataset with uv_conditioning=True")
        cond = batch["uv_cond"].to(dev, dt)
        b, n, _, u, _ = cond.shape
        if not c.use_depth:  # observed depth and visibility against it (see data/processor.py)
            cond = cond.clone()
            cond[:, :, 3] = 0
            cond[:, :, 5] = 0
        mask = F.interpolate(batch["uv_mask"].to(dev, dt)[:, None], size=(u, u), mode="area")
        mask = mask[:, None].expand(b, n, 1, u, u)
        coords = uv_grid_positions(u, dev, dt)[None, None].expand(b, n, 2, u, u)
        return torch.cat([cond, mask, coords], dim=2).flatten(0, 1), b, n

    def vertex_positions(self, vertices: torch.Tensor, index=None) -> torch.Tensor:
        """Where the vertices ``index`` (default all) lie in the input, [-1, 1] (x, y): (K, 2) UV positions
        in ``uv`` space, (M, K, 2) crop positions in ``image`` space."""
        if self.config.cond_space == "uv":
            uv = self.vertex_tokens.vertex_uv
            return uv if index is None else uv[index]
        crop = crop_positions(vertices)
        return crop if index is None else crop[:, index]

    def sample_at_vertices(self, fmap: torch.Tensor, vertices: torch.Tensor) -> torch.Tensor:
        """Bilinear samples (M, V, C) of an input-aligned map (M, C, H, W) where each vertex lies (0 outside)."""
        at = self.vertex_positions(vertices).to(fmap.dtype).expand(len(fmap), -1, -1)[:, :, None]  # (M, V, 1, 2)
        # crop positions span pixel edges; UV positions are texel centres (see token_positions)
        out = F.grid_sample(fmap, at, mode="bilinear", padding_mode="zeros", align_corners=self.config.cond_space == "uv")
        return out[..., 0].transpose(1, 2)

    def locality_bias(self, vertices: torch.Tensor, key_pos: torch.Tensor, grid: int, index=None
                      ) -> torch.Tensor | None:
        """Unscaled cross-attention bias -|p_q - p_k|^2 / (2 r^2) of the vertices ``index`` (default: the
        queries): (K, G²) in ``uv`` space, (M, K, G²) in ``image`` space (the crop positions move with the
        hand); None without locality."""
        if self.head_locality is None:
            return None
        q = self.vertex_positions(vertices, self.query_index if index is None else index).to(key_pos.dtype)
        r = 2.0 / grid  # the token spacing in [-1, 1] coordinates
        return -torch.cdist(q, key_pos.expand(*q.shape[:-2], -1, -1)).pow(2) / (2 * r * r)

    def attention_mask(self, bias: torch.Tensor | None, frames: int, dtype) -> torch.Tensor | None:
        """The additive cross-attention mask, per head: (frames or 1, heads, K, G²) from a bias (K, G²) or (M, K, G²)."""
        if bias is None:
            return None
        bias = bias if bias.ndim == 3 else bias[None]
        return (self.head_locality[None, :, None, None] * bias[:, None]).to(dtype)

    def vertex_features(self, batch: dict) -> tuple[torch.Tensor, int, int]:
        """(B*N, 778, d_model) per-vertex features after the decoder, B and N."""
        dev, dt = self._device_dtype()
        x, b, n = self._inputs(batch)
        first, tokens = self.feature_encoder(x)  # (M, width, H, W), (M, G², d)
        g = int(round(math.sqrt(tokens.shape[1])))
        pos = token_positions(g, self.config.token_stride, self.config.cond_space, dev, dt)
        memory = self.key_norm(tokens + self.key_pos(fourier_features(pos, self.config.pos_freqs)))
        vertices = batch["vertices"].to(dev, dt).flatten(0, 1)
        tokens = self.vertex_tokens(vertices)  # (M, V, d)
        if self.aligned is not None:
            tokens = tokens + self.aligned(self.sample_at_vertices(first, vertices))
        bias = self.locality_bias(vertices, pos, g)
        h = tokens[:, self.query_index]  # (M, K, d)
        mask = self.attention_mask(bias, len(h), h.dtype)
        if mask is not None:  # MultiheadAttention takes a per-head mask as (M * heads, K, G²), frame-major
            mask = mask.expand(len(h), -1, -1, -1).reshape(-1, *mask.shape[-2:])
        for layer in self.decoder:
            h = layer(h, memory, memory_mask=mask)
        h = self.decoder_norm(h)
        if self.upsample_index is not None:  # coarse queries -> every vertex, plus its own token
            h = (h[:, self.upsample_index] * self.upsample_weight[None, :, :, None].to(h.dtype)).sum(2) + tokens
        if self.fine is not None:
            every = torch.arange(NUM_VERTICES, device=dev)
            fine_mask = self.attention_mask(self.locality_bias(vertices, pos, g, every), len(h), h.dtype)
            h = self.fine_norm(self.fine(h, memory, fine_mask))
        return h, b, n

    def scatter_to_uv(self, feats: torch.Tensor) -> torch.Tensor:
        """Per-vertex features (M, V, C) -> (M, C, R, R) UV map: each texel mixes its triangle's
        vertices with its barycentric weights; 0 outside the atlas."""
        m, _, ch = feats.shape
        r = self.config.uv_out_size
        corners = feats[:, self.texel_vertices]  # (M, K, 3, C)
        texels = (corners * self.texel_bary[None, :, :, None].to(feats.dtype)).sum(dim=2)  # (M, K, C)
        flat = feats.new_zeros(m, r * r, ch).index_copy(1, self.texel_index, texels)
        return flat.transpose(1, 2).reshape(m, ch, r, r)

    def _outputs(self, batch: dict) -> tuple[torch.Tensor, int, int]:
        """Class logits at 224x224, (B*N, 9, 224, 224)."""
        self._check_atlas(batch)
        h, b, n = self.vertex_features(batch)
        uv = self.scatter_to_uv(self.vertex_out(h))
        logits = self.uv_refiner(uv, self.uv_layout.to(uv.dtype))
        # texel centres at column u·(R−1): align_corners keeps them where the 224 map has them
        return F.interpolate(logits, size=(UV_SIZE, UV_SIZE), mode="bilinear", align_corners=True), b, n

    def training_loss(self, batch: dict) -> torch.Tensor:
        """Soft cross-entropy per pixel, averaged over the B·N frames, weighted by (1 + UV mask) if configured."""
        out, b, n = self._outputs(batch)
        dev = out.device
        target = batch["pressure"].to(dev, torch.float32).flatten(0, 1)  # (M, 224, 224)
        if self.config.use_uv_mask_weight:
            w = 1.0 + batch["uv_mask"].to(dev, torch.float32)[:, None].expand(b, n, -1, -1).flatten(0, 1)
        else:
            w = torch.ones_like(target)
        soft = soft_targets(quantize_pressure(target), self.config.soft_label_eps)  # (M, H, W, 9)
        logp = F.log_softmax(out.float(), dim=1).permute(0, 2, 3, 1)
        per_pixel = -(soft * logp).sum(dim=-1)
        return (per_pixel * w).sum() / w.sum()

    def forward(self, batch: dict) -> torch.Tensor:
        """The training loss (so DDP wrappers call the model itself)."""
        return self.training_loss(batch)

    @torch.no_grad()
    def predict(self, batch: dict, steps: int | None = None, seed: int = 0, num_samples: int = 1,
                frame_ids=None) -> dict:
        """``{"pressure_kpa": (B, N, 224, 224)}``, masked by the UV mask and >= 0.

        ``steps``, ``seed``, ``num_samples`` and ``frame_ids`` exist for interface parity with the
        diffusion model and are ignored: the baseline is deterministic (no ``pressure_std_kpa``).
        """
        was_training = self.training
        self.eval()
        try:
            out, b, n = self._outputs(batch)
            kpa = decode_classes(out.float(), self.config.decode, dim=1).view(b, n, UV_SIZE, UV_SIZE)
            mask = batch["uv_mask"].to(kpa.device, kpa.dtype)[:, None]
            kpa = kpa.clamp_min(0) * mask
        finally:
            self.train(was_training)
        return {"pressure_kpa": kpa}
