"""Target normalisation and the latent codecs (SVD VAE wrapper and the tiny pixel-unshuffle codec).

Pressure normalisation (documented, invertible on [0, p_max]):

    x = clip(log1p(kPa / s) / log1p(p_max / s), 0, 1) * 2 - 1            (kPa -> [-1, 1], the codec's input)
    kPa = s * expm1((x + 1) / 2 * log1p(p_max / s))                         (inverse, x in [-1, 1])

with s = ``pressure_scale_kpa`` (2 kPa) and p_max = ``pressure_max_kpa`` (200 kPa). The map
is strictly increasing on [0, p_max], so the inverse is exact there (up to float rounding);
the log compresses the heavy tail of contact pressure so light touches are not lost.

Target latents (:class:`PressureTargets`, the model's ``target_transform``):

* ``"zero_centered"`` (default): z = E(x) - E(-1), so **zero pressure is latent 0** for every
  codec. For the tiny codec (linear, E(-1) = -1) this is z = pixel_unshuffle(2 y) with
  y = log1p(kPa/s)/log1p(p_max/s) in [0, 1]; for the SVD VAE the latent of an all-zero map
  (constant -1 image) is subtracted. Why: pressure maps are mostly zero, so with a -1
  background a symmetric error of the network turns into positive pressure wherever it lands
  above -1 (what lies below is clipped away), and the U-Net's zero padding reads as ~18 kPa;
  with the background at 0 both are neutral.
* ``"legacy_minus1"``: z = E(x), the zero-pressure background at latent -1 (the models shipped
  before the change; a saved config without the key loads with it).

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


TARGET_TRANSFORMS = ("zero_centered", "legacy_minus1")


class PressureTargets:
    """kPa maps <-> the diffusion model's target latents through ``codec`` (see module doc).

    A plain object holding a reference to the codec (not a module: the codec's weights are
    registered once, by the model).
    """

    def __init__(self, codec: ModelMixin, transform: str, scale_kpa: float, max_kpa: float):
        if transform not in TARGET_TRANSFORMS:
            raise ValueError(f"target_transform must be one of {', '.join(TARGET_TRANSFORMS)}, got {transform!r}")
        self.codec, self.transform = codec, transform
        self.scale_kpa, self.max_kpa = float(scale_kpa), float(max_kpa)

    def zero_latent(self, size: tuple[int, int], device=None) -> torch.Tensor:
        """E(-1): the (1, C, h, w) latent of a zero-pressure map of ``size`` (H, W) pixels."""
        return self.codec.encode(torch.full((1, 1, *size), -1.0, device=device))

    def encode(self, kpa: torch.Tensor) -> torch.Tensor:
        """(M, 1, H, W) kPa -> (M, C, h, w) target latents."""
        x = normalize_pressure(kpa, self.scale_kpa, self.max_kpa)
        if self.transform == "legacy_minus1":
            return self.codec.encode(x)
        if isinstance(self.codec, PixelUnshuffleCodec):  # linear: E(x) - E(-1) = E(x + 1), exact
            return self.codec.encode(x + 1)
        return self.codec.encode(x) - self.zero_latent(x.shape[-2:], x.device)

    def decode(self, z: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        """(M, C, h, w) target latents -> (M, 1, H, W) kPa (>= 0; values below the zero map clip to 0)."""
        if self.transform == "legacy_minus1":
            x = self.codec.decode(z, num_frames=num_frames).float()
        elif isinstance(self.codec, PixelUnshuffleCodec):
            x = self.codec.decode(z, num_frames=num_frames).float() - 1
        else:
            f = self.codec.downsample_factor
            zero = self.zero_latent((z.shape[-2] * f, z.shape[-1] * f), z.device).to(z.dtype)
            x = self.codec.decode(z + zero, num_frames=num_frames).float()
        return denormalize_pressure(x, self.scale_kpa, self.max_kpa)


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
