"""Model classes by ``model_type``: build one from a run config's ``model`` section, or load a saved one.

Every model class shares one interface (``from_config``, ``save_pretrained``,
``from_pretrained``, ``data_requirements``, ``training_loss``, ``trainable_parameters``,
``predict``) and writes its ``model_type`` into the ``config.json`` of a saved folder,
which is how :func:`load_model` knows what it is opening. Classes are imported lazily so
that importing this module stays cheap.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from egopressdiff.errors import CheckpointError, ConfigError

# model_type -> (module, class name)
MODEL_CLASSES: dict[str, tuple[str, str]] = {
    "egopressdiff": ("egopressdiff.models", "EgoPressDiff"),
    "perframe_baseline": ("egopressdiff.baselines", "PerFrameBaseline"),
    "toy": ("egopressdiff.training.toy", "ToyModel"),
}

# diffusers-style ``_class_name`` in config.json -> model_type (for folders that carry only that)
CLASS_NAMES = {"EgoPressDiff": "egopressdiff", "PerFrameBaseline": "perframe_baseline", "ToyModel": "toy"}


def model_class(model_type: str):
    """The class implementing ``model_type`` (ConfigError if unknown)."""
    if model_type not in MODEL_CLASSES:
        raise ConfigError(f"unknown model_type {model_type!r} (known: {', '.join(MODEL_CLASSES)})")
    module, name = MODEL_CLASSES[model_type]
    return getattr(importlib.import_module(module), name)


def _from_config_arg(model_cfg: dict):
    """What to pass to ``Cls.from_config``: the preset name alone, or a dict of fields.

    With both a preset and fields, the preset is named in the dict under ``name`` (the
    model configs start from the preset named there and apply the fields on top).
    """
    fields = {k: v for k, v in model_cfg.items() if k not in ("model_type", "preset")}
    preset = model_cfg.get("preset")
    if preset is not None and not fields:
        return preset
    if preset is not None:
        fields = {"name": preset, **fields}
    if model_cfg["model_type"] == "toy":
        fields.pop("name", None)
    return fields


def build_model(model_cfg: dict):
    """A fresh model from a run config's ``model`` section (``model_type`` + ``preset`` and/or fields)."""
    if not isinstance(model_cfg, dict) or "model_type" not in model_cfg:
        raise ConfigError("the model section of the config needs a model_type")
    cls = model_class(model_cfg["model_type"])
    return cls.from_config(_from_config_arg(model_cfg))


def read_model_type(path: str | Path) -> str:
    """``model_type`` from ``path/config.json``; CheckpointError if missing, unreadable or unknown."""
    cfg_path = Path(path) / "config.json"
    if not cfg_path.is_file():
        raise CheckpointError(f"model folder {path} has no config.json")
    try:
        data = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"cannot read {cfg_path}: {' '.join(str(e).split())}") from None
    mt = data.get("model_type") if isinstance(data, dict) else None
    if mt is None and isinstance(data, dict):
        mt = CLASS_NAMES.get(data.get("_class_name"))
    if mt is None:
        raise CheckpointError(f"{cfg_path} has no model_type: not an egopressdiff model folder")
    if mt not in MODEL_CLASSES:
        raise CheckpointError(f"{cfg_path}: unknown model_type {mt!r} (known: {', '.join(MODEL_CLASSES)})")
    return mt


def load_model(path: str | Path):
    """Load a ``save_pretrained`` folder with the class its ``config.json`` names."""
    return model_class(read_model_type(path)).from_pretrained(path)
