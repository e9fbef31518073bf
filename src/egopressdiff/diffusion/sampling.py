"""Karras sigma schedule and the (seeded) Euler / Heun samplers of EDM."""

from __future__ import annotations

from collections.abc import Callable

import torch


def karras_sigmas(steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0,
                  device=None) -> torch.Tensor:
    """``steps`` decreasing sigmas from sigma_max to sigma_min (Karras et al. 2022, eq. 5), then a final 0."""
    if steps < 1:
        raise ValueError("need at least one sampling step")
    if steps == 1:
        sig = torch.tensor([sigma_max], dtype=torch.float64)
    else:
        ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
        lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
        sig = (hi + ramp * (lo - hi)) ** rho
    return torch.cat([sig, sig.new_zeros(1)]).float().to(device)


def ode_step(x: torch.Tensor, denoised: torch.Tensor, sigma, sigma_next,
             denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """One Euler step of dx/dsigma = (x - D(x; sigma)) / sigma from ``sigma`` to ``sigma_next``, given
    D(x; sigma); with ``denoise`` also Heun's second-order correction (skipped when ``sigma_next`` is 0)."""
    d = (x - denoised) / sigma
    x_next = x + (sigma_next - sigma) * d
    if denoise is not None and sigma_next > 0:
        d2 = (x_next - denoise(x_next, sigma_next)) / sigma_next
        x_next = x + (sigma_next - sigma) * 0.5 * (d + d2)
    return x_next


def sample(denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor,
           sigmas: torch.Tensor, heun: bool = False, callback: Callable | None = None) -> torch.Tensor:
    """Integrate the probability-flow ODE dx/dsigma = (x - D(x; sigma)) / sigma over ``sigmas``.

    ``x`` must already be scaled noise (x = sigmas[0] * eps); deterministic given ``x``.
    Heun adds EDM's second-order correction on every step except the last (to sigma = 0).
    """
    for i in range(len(sigmas) - 1):
        x = ode_step(x, denoise(x, sigmas[i]), sigmas[i], sigmas[i + 1], denoise if heun else None)
        if callback is not None:
            callback(i, x)
    return x


def seeded_noise(shape, seed: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Standard normal noise from a CPU ``torch.Generator`` (identical on every device for a seed)."""
    g = torch.Generator().manual_seed(int(seed) % (2**63))
    return torch.randn(shape, generator=g, dtype=dtype).to(device)
