"""Trainer callbacks the training tests inject, in-process or through train_launcher.py."""

from __future__ import annotations

import time
from pathlib import Path

from egopressdiff.training.callbacks import TrainerCallback


class StepSleep(TrainerCallback):
    """Sleep after every optimizer step, so that a test can deliver a signal at a chosen moment."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def on_step_end(self, trainer) -> None:
        time.sleep(self.seconds)


class PauseCheckpoint(TrainerCallback):
    """Touch ``marker`` and sleep while the checkpoint of a step >= ``from_step`` is half-written
    (its files in the temporary folder, not yet complete), so that a test can SIGKILL the run then."""

    def __init__(self, seconds: float, from_step: int, marker: Path):
        self.seconds, self.from_step, self.marker = seconds, from_step, Path(marker)

    def on_checkpoint_written(self, trainer, folder: Path) -> None:
        if trainer.global_step >= self.from_step:
            self.marker.write_text(str(trainer.global_step))
            time.sleep(self.seconds)


class DumpRankWeights(TrainerCallback):
    """Every process writes its own weights to ``folder/rank-<r>.safetensors`` at the end, so that a
    test can check that all DDP ranks ended identical."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def on_train_end(self, trainer, summary: dict) -> None:
        from safetensors.torch import save_file

        self.folder.mkdir(parents=True, exist_ok=True)
        weights = {k: v.detach().cpu().contiguous() for k, v in trainer.model.state_dict().items()}
        save_file(weights, str(self.folder / f"rank-{trainer.rank}.safetensors"))
