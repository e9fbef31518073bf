"""PerFrameBaselinePipeline: a per-frame baseline + the input processor, with EgoPressDiff's call signature.

It serves both per-frame model types: ``PerFrameBaseline`` (classification / regression) and
``PressureFormerBaseline``.

The baselines predict each frame on its own and deterministically: ``num_inference_steps``,
``seed`` and ``num_samples`` are accepted for a common interface and change nothing (there is no
sample spread, so no ``pressure_std_kpa``).
"""

from __future__ import annotations

import torch

from egopressdiff.pipelines.base import PressurePipeline


class PerFrameBaselinePipeline(PressurePipeline):
    """``pipe(rgb, depth, vertices, joints, intrinsics, ...) -> PressureOutput`` for the per-frame baselines."""

    model_type = "perframe_baseline"
    model_class_name = "PerFrameBaseline"
    also_serves = ("pressureformer_baseline",)

    @torch.no_grad()
    def sample(self, batch: dict, num_inference_steps: int | None = None, seed: int = 0, num_samples: int = 1,
               frame_ids=None) -> dict:
        return {"pressure_kpa": self.model.predict(batch)["pressure_kpa"]}
