"""EgoPressDiffPipeline: the EgoPressDiff model + its EDM scheduler + the input processor.

``sample`` is the diffusion sampling of one window: the frozen encoders and the conditioning
(CLIP tokens, Vertex Encoder tokens, PoseNet features, condition latents) are computed once per
window, then the scheduler integrates the probability-flow ODE from Karras sigmas, the latents
are decoded to kPa, clipped at 0 and masked by the UV mask; ``num_samples`` samples are averaged
(their spread is the model's uncertainty) and the model's ``output_floor_kpa`` applied.
"""

from __future__ import annotations

import torch

from egopressdiff.diffusion.sampling import seeded_noise
from egopressdiff.pipelines.base import PressurePipeline


class EgoPressDiffPipeline(PressurePipeline):
    """``pipe(rgb, depth, vertices, joints, intrinsics, ...) -> PressureOutput`` (see
    :meth:`PressurePipeline.__call__`); ``EgoPressDiffPipeline.from_pretrained("synthetic-egopressdiff")``."""

    model_type = "egopressdiff"
    model_class_name = "EgoPressDiff"

    def __init__(self, model, scheduler=None, processor=None):
        super().__init__(model, processor)
        # The model's scheduler holds the constants it was trained with (its preconditioning);
        # a replacement here changes only the sampling schedule.
        self.scheduler = scheduler if scheduler is not None else model.scheduler

    def initial_noise(self, batch_size: int, num_frames: int, seed: int, sample_index: int = 0,
                      frame_ids=None, device=None) -> torch.Tensor:
        """Unit noise (B, N, C, h, w): from one seeded generator, or per frame from (seed, sample, frame id),
        so windows that share a frame start from the same noise there.

        ``frame_ids`` (N,) is shared by the batch; (B, N) gives each batch element its own frames.
        """
        shape = (self.model.latent_channels, *self.model.latent_size)
        if frame_ids is None:
            return seeded_noise((batch_size, num_frames, *shape), seed * 1_000_003 + sample_index, device)
        ids = torch.as_tensor(frame_ids)
        rows = ids.expand(batch_size, -1) if ids.ndim == 1 else ids
        return torch.stack([torch.stack([seeded_noise(shape, (seed * 1_000_003 + sample_index) * 1_000_033 + int(f),
                                                      device) for f in row]) for row in rows]).contiguous()

    @torch.no_grad()
    def sample(self, batch: dict, num_inference_steps: int | None = None, seed: int = 0, num_samples: int = 1,
               frame_ids=None) -> dict:
        """Sample UV-pressure maps for a batch of model inputs (B, N, ...).

        Returns {"pressure_kpa": (B, N, 224, 224) float32} -- the mean over ``num_samples`` samples
        -- plus "pressure_std_kpa" (their std) when ``num_samples > 1``. The same seed gives the
        same result. ``frame_ids`` (N,) or (B, N) draws each frame's noise from (seed, sample, frame id).
        """
        with self.autocast():
            return self._sample(batch, num_inference_steps, seed, num_samples, frame_ids)

    def compile_target(self):
        """The conditioned U-Net: the one network that runs on every sampling step."""
        return self.model.denoiser

    def _sample(self, batch, num_inference_steps, seed, num_samples, frame_ids) -> dict:
        model, scheduler = self.model, self.scheduler
        steps = num_inference_steps or model.config.sample_steps
        # once per window, not per step: frozen encoders, Vertex Encoder, PoseNet, condition latents
        prep = model.prepare_conditions(batch)
        b, n = prep["image_tokens"].shape[:2]
        device = prep["image_tokens"].device
        scheduler.set_timesteps(steps, device=device)

        def denoise(x, sigma):
            return model.denoise(x, sigma, prep)

        uv_mask = batch.get("uv_mask")
        maps = []
        for k in range(num_samples):
            x = self.initial_noise(b, n, seed, k, frame_ids, device) * scheduler.init_noise_sigma
            for i, sigma in enumerate(scheduler.timesteps):
                x = scheduler.step(denoise(x, sigma), i, x, denoise=denoise).prev_sample
            maps.append(model.decode_to_kpa(x, uv_mask))
        stack = torch.stack(maps)
        mean = stack.mean(0).float()
        floor = model.config.output_floor_kpa
        if floor > 0:
            mean = torch.where(mean < floor, torch.zeros_like(mean), mean)
        out = {"pressure_kpa": mean}
        if num_samples > 1:
            out["pressure_std_kpa"] = stack.std(0, correction=0).float()
        return out
