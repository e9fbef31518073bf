"""How a model meets accelerate: the Accelerator for a run's train section, the one module DDP
wraps, gradient checkpointing, and the reset of accelerate's process-wide state between runs."""

from __future__ import annotations

import contextlib
import os

import torch
from torch import nn

from egopressdiff.errors import ConfigError


class LossModule(nn.Module):
    """The one module DDP wraps: ``forward(batch)`` is the model's training loss."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch):
        return self.model.training_loss(batch)


def make_accelerator(tcfg: dict):
    """The accelerate ``Accelerator`` for the train section (ConfigError for an unusable precision)."""
    from accelerate import Accelerator
    from accelerate.utils import DataLoaderConfiguration, DistributedDataParallelKwargs

    # accelerate only goes multi-process on CPU (gloo) when told cpu=True; a torchrun launch
    # without CUDA must not silently become K independent single-process runs.
    distributed_cpu = not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1
    try:
        return Accelerator(
            cpu=distributed_cpu,
            mixed_precision=tcfg["mixed_precision"],
            gradient_accumulation_steps=tcfg["grad_accum"],
            dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=tcfg["seed"]),
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=tcfg["find_unused_parameters"])],
            step_scheduler_with_optimizer=False,
            rng_types=[],  # RNG states are ours to save/restore; accelerate must not re-sync them per epoch
        )
    except (ValueError, RuntimeError) as e:
        raise ConfigError(f"config key train.mixed_precision={tcfg['mixed_precision']!r} cannot be used here: "
                          f"{' '.join(str(e).split())}") from None


def enable_gradient_checkpointing(model: nn.Module, trainable_ids: set) -> bool:
    """The model's own switch, else that of its top-most sub-modules holding trainable weights.

    A module counts as having a switch when it has ``enable_gradient_checkpointing`` and does
    not declare ``_supports_gradient_checkpointing = False`` (diffusers' ModelMixin has the
    method on every model, and raises for those that lack support). False when none was found.
    """

    def switch(module):
        if not getattr(module, "_supports_gradient_checkpointing", True):
            return None
        return getattr(module, "enable_gradient_checkpointing", None)

    if switch(model) is not None:
        switch(model)()
        return True
    found = False

    def visit(module):
        nonlocal found
        for child in module.children():
            on = switch(child)
            if on is not None:
                # not descending further: an outer wrapper's switch may do more than the inner one's
                if any(id(p) in trainable_ids for p in child.parameters()):
                    on()
                    found = True
            else:
                visit(child)

    visit(model)
    return found


def reset_accelerate_state() -> None:
    # accelerate keeps process-wide singletons (mixed precision, active dataloaders); reset
    # them so that a second train() in the same process (tests, notebooks) starts clean.
    with contextlib.suppress(Exception):
        from accelerate.state import AcceleratorState, GradientState

        GradientState._reset_state()
        AcceleratorState._reset_state(reset_partial_state=False)
