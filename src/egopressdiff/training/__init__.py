"""Training: the :class:`~egopressdiff.training.loop.Trainer` and its one-call form ``train``
(``loop``), the EMA of the weights (``ema``), checkpoints (``checkpoint``), callbacks
(``callbacks``), the datasets of a run (``datasets``) and their frozen-encoder cache (``cache``),
model classes and data sources by name (``registry``) and graceful SIGINT/SIGTERM (``signals``).
``Trainer`` and ``train`` are imported lazily so ``import egopressdiff.training`` is cheap."""

from __future__ import annotations


def __getattr__(name):
    if name in ("Trainer", "train"):
        from egopressdiff.training import loop

        return getattr(loop, name)
    raise AttributeError(name)
