"""Exponential moving average of the trainable weights, with a warmed-up decay.

The decay after n updates is min(decay, (1 + n) / (10 + n)) (the schedule of diffusers'
EMAModel): without the warm-up the average of a short run keeps much of the random initial
weights (0.998 ** 600 = 30 % of them after 600 steps, 5 % after 1,500). Written here rather
than taken from diffusers' EMAModel so that its state (shadow weights and update count)
lives in the safetensors checkpoints and resumes exactly.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from egopressdiff.errors import ConfigError


class EMA:
    """Shadow copies (float32) of ``params``, updated after every optimizer step."""

    def __init__(self, params: list[nn.Parameter], decay: float):
        self.params = params
        self.decay = decay
        self.updates = 0
        self.shadow = [p.detach().float().clone() for p in params]

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        d = self.current_decay()
        for s, p in zip(self.shadow, self.params):
            s.lerp_(p.detach().float(), 1.0 - d)
        self.updates += 1

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        if len(state["shadow"]) != len(self.shadow):
            raise ConfigError("the checkpoint's EMA does not match the model's trainable parameters")
        self.shadow = [s.to(p.device, torch.float32) for s, p in zip(state["shadow"], self.params)]
        # checkpoints written before the warm-up existed carry no count: treat them as warmed up
        self.updates = int(state.get("updates", 10**9))

    @contextlib.contextmanager
    def swapped_in(self):
        """Temporarily put the EMA weights into the model (to save it)."""
        backup = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for p, s in zip(self.params, self.shadow):
                p.copy_(s)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, b in zip(self.params, backup):
                    p.copy_(b)
