"""Models shipped inside the package, addressable by name, and checkpoint resolution.

The shipped models are small models trained by this project on its own
synthetic data (see README, "Shipped models"). They live in
``egopressdiff/assets/models/<name>/`` as ``config.json`` + safetensors, with a
``model_card.json`` saying what they were trained on and how.
"""

from __future__ import annotations

import json
from pathlib import Path

from egopressdiff.errors import CheckpointError

ASSET_DIR = Path(__file__).resolve().parent / "assets" / "models"

SHIPPED_MODEL_NAMES = ("synthetic-egopressdiff", "synthetic-baseline-cls", "synthetic-baseline-reg",
                       "synthetic-baseline-pressureformer")


def shipped_models() -> dict[str, Path]:
    """Name -> folder of every shipped model present in this installation."""
    out = {}
    if ASSET_DIR.is_dir():
        for d in sorted(ASSET_DIR.iterdir()):
            if (d / "config.json").is_file():
                out[d.name] = d
    return out


def model_card(path: Path) -> dict:
    card = Path(path) / "model_card.json"
    if card.is_file():
        try:
            return json.loads(card.read_text())
        except (OSError, ValueError):
            return {}
    return {}


def resolve_checkpoint(spec: str | Path) -> Path:
    """A shipped model name, a ``save_pretrained`` folder, a training run folder, or a
    run's ``checkpoints/step-N`` folder -> the folder holding ``config.json`` + weights."""
    spec_s = str(spec)
    ships = shipped_models()
    if spec_s in ships:
        return ships[spec_s]
    p = Path(spec_s)
    if not p.exists():
        known = ", ".join(ships) or "none installed"
        raise CheckpointError(f"checkpoint {spec_s} not found (not a folder, not a shipped model name; shipped: {known})")
    if p.is_file():
        raise CheckpointError(f"checkpoint {p} is a file; give the folder that holds config.json")
    if (p / "config.json").is_file():
        return p
    if (p / "model" / "config.json").is_file():  # a training run folder: its final/latest model
        return p / "model"
    from egopressdiff.training.checkpoint import latest_checkpoint

    newest = latest_checkpoint(p / "checkpoints")  # numeric order, complete checkpoints only
    if newest is not None and (newest / "model" / "config.json").is_file():
        return newest / "model"
    raise CheckpointError(f"checkpoint folder {p} holds no config.json (nor model/config.json of a training run)")
