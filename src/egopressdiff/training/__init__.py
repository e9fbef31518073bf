"""Training: the accelerate loop (``loop``), checkpoints (``checkpoint``), model classes by
``model_type`` (``registry``), graceful SIGINT/SIGTERM (``signals``) and the toy model used to
test them (``toy``). ``train`` is imported lazily so ``import egopressdiff.training`` is cheap."""

from __future__ import annotations


def __getattr__(name):
    if name == "train":
        from egopressdiff.training.loop import train

        return train
    raise AttributeError(name)
