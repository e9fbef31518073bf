"""EDMScheduler: EDM's noise levels, preconditioning and Euler/Heun steps as one diffusers scheduler.

A diffusers ``SchedulerMixin`` + ``ConfigMixin`` (saved as ``scheduler_config.json``), holding
every constant of the diffusion process that training and sampling must agree on:

* training: ``ln(sigma) ~ N(p_mean, p_std^2)`` (:meth:`sample_training_sigmas`) and the loss
  weight lambda(sigma) (:meth:`loss_weight`);
* preconditioning: ``D(x; sigma) = c_skip x + c_out F(c_in x, c_noise)`` (:meth:`precondition`,
  :meth:`denoised_from_output`); ``c_out_sign = -1`` is SVD's v-prediction;
* sampling: Karras sigmas from ``sigma_max`` to ``sigma_min`` then 0 (:meth:`set_timesteps`),
  and the probability-flow ODE step (:meth:`step`: Euler, or Heun's second-order correction
  when the config says ``sampler="heun"`` and the caller passes the denoiser).

diffusers' own ``EDMEulerScheduler`` has the same Karras schedule and preconditioning but no
Heun step and no training-side constants, and its step keeps an internal index; this class keeps
the formulas in :mod:`egopressdiff.diffusion.edm` / :mod:`~egopressdiff.diffusion.sampling` (one
copy) and is stateless apart from the schedule set by :meth:`set_timesteps`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from egopressdiff.diffusion.edm import EDMPreconditioning, sample_sigmas
from egopressdiff.diffusion.sampling import karras_sigmas, ode_step


@dataclass
class EDMSchedulerOutput:
    prev_sample: torch.Tensor  # x at the next (lower) noise level
    denoised: torch.Tensor  # D(x; sigma) of this step


class EDMScheduler(SchedulerMixin, ConfigMixin):
    """EDM (Karras et al. 2022) as used in SVD fine-tuning; see the module doc."""

    config_name = "scheduler_config.json"
    order = 1

    @register_to_config
    def __init__(self, sigma_data: float = 1.0, sigma_min: float = 0.002, sigma_max: float = 80.0,
                 rho: float = 7.0, p_mean: float = 0.7, p_std: float = 1.6, c_out_sign: float = -1.0,
                 loss_weighting: str = "edm", sampler: str = "euler"):
        if sampler not in ("euler", "heun"):
            raise ValueError(f"sampler must be 'euler' or 'heun', got {sampler!r}")
        if loss_weighting not in ("edm", "none"):
            raise ValueError(f"loss_weighting must be 'edm' or 'none', got {loss_weighting!r}")
        self.preconditioning = EDMPreconditioning(float(sigma_data), float(c_out_sign))
        self.sigmas: torch.Tensor | None = None
        self.num_inference_steps: int | None = None

    @classmethod
    def from_edm_config(cls, edm: dict) -> EDMScheduler:
        """From a model config's ``edm`` section."""
        return cls(**{k: edm[k] for k in ("sigma_data", "sigma_min", "sigma_max", "rho", "p_mean", "p_std",
                                          "c_out_sign", "loss_weighting", "sampler") if k in edm})

    # ------------------------------------------------------------------ training
    def sample_training_sigmas(self, batch_size: int, device=None,
                               generator: torch.Generator | None = None) -> torch.Tensor:
        """One sigma per clip, ln(sigma) ~ N(p_mean, p_std^2); torch's global RNG unless ``generator``."""
        return sample_sigmas(batch_size, self.config.p_mean, self.config.p_std, device=device, generator=generator)

    def loss_weight(self, sigma: torch.Tensor) -> torch.Tensor:
        if self.config.loss_weighting == "none":
            return torch.ones_like(sigma)
        return self.preconditioning.loss_weight(sigma)

    # ------------------------------------------------------------------ preconditioning
    def precondition(self, sigma: torch.Tensor):
        """(c_skip, c_out, c_in, c_noise) for sigma of any shape."""
        return self.preconditioning.scalings(sigma)

    def denoised_from_output(self, sample: torch.Tensor, model_output: torch.Tensor,
                             sigma: torch.Tensor) -> torch.Tensor:
        """D = c_skip x + c_out F for latents (B, ...) and sigma (B,)."""
        c_skip, c_out, _, _ = self.precondition(sigma)
        shape = (-1,) + (1,) * (sample.dim() - 1)
        return c_skip.view(shape) * sample + c_out.view(shape) * model_output.float()

    # ------------------------------------------------------------------ sampling
    def set_timesteps(self, num_inference_steps: int, device=None) -> None:
        """Karras sigmas for ``num_inference_steps`` steps, then a final 0 (``self.sigmas``)."""
        c = self.config
        self.num_inference_steps = int(num_inference_steps)
        self.sigmas = karras_sigmas(self.num_inference_steps, c.sigma_min, c.sigma_max, c.rho, device=device)

    @property
    def timesteps(self) -> torch.Tensor:
        """The noise levels of the steps (the sigmas without the final 0)."""
        return self.sigmas[:-1]

    @property
    def init_noise_sigma(self) -> torch.Tensor:
        return self.sigmas[0]

    def step(self, denoised: torch.Tensor, step_index: int, sample: torch.Tensor,
             denoise: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> EDMSchedulerOutput:
        """One step of the probability-flow ODE dx/dsigma = (x - D(x; sigma)) / sigma, from
        ``sigmas[step_index]`` to ``sigmas[step_index + 1]``, given D at the current level.

        With ``sampler="heun"`` and ``denoise`` (x, sigma) -> D, EDM's second-order correction is
        applied on every step except the last (to sigma = 0).
        """
        heun = denoise if self.config.sampler == "heun" else None
        prev = ode_step(sample, denoised, self.sigmas[step_index], self.sigmas[step_index + 1], heun)
        return EDMSchedulerOutput(prev_sample=prev, denoised=denoised)
