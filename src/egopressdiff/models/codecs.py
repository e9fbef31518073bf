"""Target normalisation and the latent codecs (SVD VAE wrapper and the tiny pixel-unshuffle codec).

Pressure normalisation (documented, invertible on [0, p_max]):

    y = clip(log1p(kPa / s) / log1p(p_max / s), 0, 1) * 2 - 1            (kPa -> [-1, 1])
    kPa = s * expm1((y + 1) / 2 * log1p(p_max / s))                         (inverse, y in [-1, 1])

with s = ``pressure_scale_kpa`` (2 kPa) and p_max = ``pressure_max_kpa`` (200 kPa). The map
is strictly increasing on [0, p_max], so the inverse is exact there (up to float rounding);
the log compresses the heavy tail of contact pressure so light touches are not lost.

Both codecs encode *one-channel* maps in [-1, 1] of shape (M, 1, H, W) to latents
(M, C, H/f, W/f) and decode them back:

* :class:`VAECodec` repeats the map to 3 channels, VAE-encodes (posterior mean, times the
  VAE's scaling factor) and on decoding averages the 3 decoded channels.
* :class:`PixelUnshuffleCodec` (tiny) is space-to-depth with factor f (f^2 latent channels);
  decoding is its exact inverse, so the codec adds no error of its own.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin


def normalize_pressure(kpa: torch.Tensor, scale_kpa: float, max_kpa: float) -> torch.Tensor:
    """kPa -> [-1, 1] (see module doc)."""
    y = torch.log1p(kpa.clamp(min=0) / scale_kpa) / math.log1p(max_kpa / scale_kpa)
    return y.clamp(0, 1) * 2 - 1


def denormalize_pressure(y: torch.Tensor, scale_kpa: float, max_kpa: float) -> torch.Tensor:
    """[-1, 1] -> kPa, the inverse of :func:`normalize_pressure` (values outside [-1, 1] are clipped)."""
    t = (y.clamp(-1, 1) + 1) / 2
    return scale_kpa * torch.expm1(t * math.log1p(max_kpa / scale_kpa))


def resize_maps(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize (M, C, H, W) maps: area averaging when shrinking, bilinear when enlarging."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    if size < x.shape[-1]:
        return F.interpolate(x, size=(size, size), mode="area")
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


class PixelUnshuffleCodec(ModelMixin, ConfigMixin):
    """Exactly invertible space-to-depth codec for the tiny config (no parameters)."""

    @register_to_config
    def __init__(self, factor: int = 4):
        super().__init__()
        self.factor = int(factor)
        self.latent_channels = self.factor**2
        self.downsample_factor = self.factor
        self.scaling_factor = 1.0

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(M, 1, H, W) in [-1, 1] -> (M, f^2, H/f, W/f)."""
        return F.pixel_unshuffle(x, self.factor)

    def decode(self, z: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        """(M, f^2, h, w) -> (M, 1, h*f, w*f)."""
        return F.pixel_shuffle(z, self.factor)


class VAECodec(ModelMixin, ConfigMixin):
    """Wraps diffusers' ``AutoencoderKLTemporalDecoder`` (SVD's VAE) for 1-channel maps.

    ``vae_config`` holds the VAE's constructor arguments; ``vae_model`` (not part of the config)
    is an already built VAE, e.g. SVD's pretrained one.
    """

    ignore_for_config = ["vae_model"]

    @register_to_config
    def __init__(self, vae_config: dict | None = None, decode_chunk_size: int | None = None, vae_model=None):
        super().__init__()
        if vae_model is None:
            from diffusers import AutoencoderKLTemporalDecoder

            vae_model = AutoencoderKLTemporalDecoder(**(vae_config or {}))
        vae = vae_model
        self.vae = vae
        self.latent_channels = int(vae.config.latent_channels)
        self.downsample_factor = 2 ** (len(vae.config.block_out_channels) - 1)
        self.scaling_factor = float(vae.config.scaling_factor)
        self.decode_chunk_size = decode_chunk_size

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(M, 1, H, W) in [-1, 1] -> (M, 4, H/8, W/8) scaled latents (posterior mean: deterministic, cacheable)."""
        x3 = x.expand(-1, 3, -1, -1).to(self.vae.dtype)
        return self.vae.encode(x3).latent_dist.mode() * self.scaling_factor

    def decode(self, z: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        """(M, 4, h, w) -> (M, 1, 8h, 8w); ``num_frames`` groups consecutive rows into clips for the temporal decoder."""
        num_frames = z.shape[0] if num_frames is None else num_frames
        chunk = self.decode_chunk_size or num_frames
        z = (z / self.scaling_factor).to(self.vae.dtype)
        outs = []
        for i in range(0, z.shape[0], chunk):
            zc = z[i : i + chunk]
            outs.append(self.vae.decode(zc, num_frames=zc.shape[0]).sample)
        return torch.cat(outs).float().mean(dim=1, keepdim=True)


def build_codec(codec_cfg: dict, vae=None) -> ModelMixin:
    """Codec from the config's ``codec`` dict (a prebuilt ``vae`` is used as is)."""
    if codec_cfg["type"] == "pixel_unshuffle":
        return PixelUnshuffleCodec(codec_cfg.get("factor", 4))
    return VAECodec(codec_cfg["vae"], decode_chunk_size=codec_cfg.get("decode_chunk_size"), vae_model=vae)
