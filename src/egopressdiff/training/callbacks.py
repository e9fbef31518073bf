"""Callbacks: code that runs inside a :class:`~egopressdiff.training.loop.Trainer` at fixed points.

Pass instances as ``Trainer(..., callbacks=[...])`` (or ``train(..., callbacks=...)``).
Every hook receives the trainer, whose attributes (``global_step``, ``model``, ``rank``,
``world_size``, ``run``, ...) it may read; changing the training state from a hook breaks
the exact-resume guarantee. The base class does nothing, so a callback overrides only the
hooks it needs.
"""

from __future__ import annotations

from pathlib import Path


class TrainerCallback:
    """No-op hooks, in the order a run calls them."""

    def on_train_begin(self, trainer) -> None:
        """Every process, after setup and resume, before the first step."""

    def on_step_end(self, trainer) -> None:
        """Every process, after each optimizer step (``trainer.global_step`` already counts it),
        before logging, validation and checkpointing."""

    def on_checkpoint_written(self, trainer, folder: Path) -> None:
        """The main process, once a checkpoint's files are in its temporary ``folder`` and
        before the checkpoint is marked complete (files added here become part of it)."""

    def on_train_end(self, trainer, summary: dict) -> None:
        """Every process, after the final model and ``train_summary.json`` are written."""
