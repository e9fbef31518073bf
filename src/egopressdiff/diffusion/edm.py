"""EDM preconditioning, log-normal sigma sampling and the UV-mask weighted loss (SVD fine-tuning).

    c_skip  = sigma_d^2 / (sigma^2 + sigma_d^2)
    c_out   = sign * sigma * sigma_d / sqrt(sigma^2 + sigma_d^2)     (sign = -1 reproduces SVD's v-prediction)
    c_in    = 1 / sqrt(sigma^2 + sigma_d^2)
    c_noise = 0.25 * ln(sigma)
    D(x; sigma) = c_skip * x + c_out * F(c_in * x, c_noise)

    ln(sigma) ~ N(P_mean, P_std^2)                                    (training)
    L = lambda(sigma) * mean( ((z_gt - D) * (1 + M_uv))^2 ),  lambda = (sigma^2 + sigma_d^2) / (sigma * sigma_d)^2

M_uv is the binary UV mask at latent resolution (a latent cell is 1 if any texel it covers is
on the hand); without UV-mask weighting the factor (1 + M_uv) is replaced by 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class EDMPreconditioning:
    """EDM scalings for a given sigma_data (see module doc)."""

    sigma_data: float = 1.0
    c_out_sign: float = -1.0

    def scalings(self, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(c_skip, c_out, c_in, c_noise) for sigma of any shape."""
        sd2 = self.sigma_data**2
        denom = (sigma**2 + sd2).sqrt()
        c_skip = sd2 / (sigma**2 + sd2)
        c_out = self.c_out_sign * sigma * self.sigma_data / denom
        c_in = 1.0 / denom
        c_noise = 0.25 * sigma.log()
        return c_skip, c_out, c_in, c_noise

    def loss_weight(self, sigma: torch.Tensor) -> torch.Tensor:
        """EDM's lambda(sigma) = (sigma^2 + sigma_d^2) / (sigma * sigma_d)^2."""
        return (sigma**2 + self.sigma_data**2) / (sigma * self.sigma_data) ** 2


def sample_sigmas(batch_size: int, p_mean: float, p_std: float, device=None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """ln(sigma) ~ N(p_mean, p_std^2), one sigma per clip; global torch RNG unless ``generator`` is given."""
    n = torch.randn(batch_size, generator=generator, device=None if generator is not None else device)
    return (n.to(device) * p_std + p_mean).exp()


def latent_mask(uv_mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, H, W) binary UV mask -> (B, 1, 1, h, w): 1 where any covered texel is on the hand."""
    m = F.adaptive_max_pool2d(uv_mask.float().unsqueeze(1), size)
    return (m > 0.5).float().unsqueeze(1)


def edm_loss(z_gt: torch.Tensor, z_den: torch.Tensor, sigma: torch.Tensor,
             mask: torch.Tensor | None = None, precond: EDMPreconditioning | None = None,
             weighting: str = "edm") -> torch.Tensor:
    """Weighted MSE of the denoised latents (B, N, C, h, w); ``mask`` (B, 1, 1, h, w) or None (weight 1)."""
    err = z_gt.float() - z_den.float()
    if mask is not None:
        err = err * (1.0 + mask)
    per_clip = err.pow(2).flatten(1).mean(dim=1)
    if weighting == "edm":
        per_clip = per_clip * (precond or EDMPreconditioning()).loss_weight(sigma.float())
    elif weighting != "none":
        raise ValueError(f"unknown loss weighting {weighting!r}")
    return per_clip.mean()
