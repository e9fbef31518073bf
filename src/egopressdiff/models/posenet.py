"""PoseNet: a light conv + SiLU encoder whose output is added to the U-Net's ``conv_in`` features.

Paper (A.2): convolutions and SiLU only, Gaussian weight initialisation, zero-initialised
final convolution -- so an untrained PoseNet adds exactly 0 and leaves the U-Net unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


class PoseNet(ModelMixin, ConfigMixin):
    """(M, C_in, H, W) condition map -> (M, C_out, H/f, W/f) features at latent resolution.

    Args:
        in_channels: channels of the condition (3 for the pose map, 7 for ``uv_cond``).
        out_channels: channel width of the U-Net's ``conv_in`` output.
        downsample_factor: latent downsampling f (a power of two; one stride-2 stage per factor 2).
        channels: widths of the conv stages (the first stage keeps resolution).
    """

    @register_to_config
    def __init__(self, in_channels: int, out_channels: int, downsample_factor: int, channels=(16, 32)):
        super().__init__()
        n_down = int(round(math.log2(downsample_factor)))
        if 2**n_down != downsample_factor:
            raise ValueError(f"PoseNet downsample factor must be a power of two, got {downsample_factor}")
        channels = list(channels)
        # one stage per width; stride-2 stages are added until the latent resolution is reached
        widths = channels + [channels[-1]] * max(0, n_down + 1 - len(channels))
        layers: list[nn.Module] = []
        prev = in_channels
        for i, w in enumerate(widths):
            stride = 2 if 0 < i <= n_down else 1
            layers += [nn.Conv2d(prev, w, 3, stride=stride, padding=1), nn.SiLU(),
                       nn.Conv2d(w, w, 3, padding=1), nn.SiLU()]
            prev = w
        self.body = nn.Sequential(*layers)
        self.final = nn.Conv2d(prev, out_channels, 3, padding=1)
        self.downsample_factor = downsample_factor
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Gaussian (He-normal) weights, zero biases; the final conv all zeros."""
        for m in self.body:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.final.weight)
        nn.init.zeros_(self.final.bias)

    def forward(self, cond: torch.Tensor, latent_size: tuple[int, int] | None = None) -> torch.Tensor:
        """Encode ``cond``; ``latent_size`` (h, w) resizes the input to (h*f, w*f) first."""
        if latent_size is not None:
            target = (latent_size[0] * self.downsample_factor, latent_size[1] * self.downsample_factor)
            if tuple(cond.shape[-2:]) != target:
                cond = F.interpolate(cond, size=target, mode="bilinear", align_corners=False, antialias=True)
        return self.final(self.body(cond))


class ConditionEncoder(PoseNet):
    """The same conv + SiLU stack with an ordinarily initialised final conv.

    Encodes ``uv_cond`` (UV-space conditioning, ``cond_space="uv"``) to the latent channels
    that take the depth latent's slot in the U-Net input; unlike PoseNet it is a primary
    input, so its output must not start at zero.
    """

    def reset_parameters(self) -> None:
        for m in self.body:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.final.weight, std=(1.0 / (self.final.in_channels * 9)) ** 0.5)
        nn.init.zeros_(self.final.bias)
