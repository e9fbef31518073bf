"""Model classes by ``model_type`` and dataset builders by ``data.source``.

Every model class shares one interface (``from_config``, ``save_pretrained``,
``from_pretrained``, ``data_requirements``, ``training_loss``, ``trainable_parameters``,
``predict``) and writes its ``model_type`` into the ``config.json`` of a saved folder,
which is how :func:`load_model` knows what it is opening. The built-in classes are imported
lazily so that importing this module stays cheap.

Other model types and data sources (a user's own, or the tests' few-parameter model) are
added at run time with :func:`register_model_class` and :func:`register_data_source`;
the run config then accepts them as ``model.model_type`` and ``data.source``.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from pathlib import Path

from egopressdiff.errors import CheckpointError, ConfigError

# model_type -> (module, class name) of the built-in models
BUILTIN_MODELS: dict[str, tuple[str, str]] = {
    "egopressdiff": ("egopressdiff.models", "EgoPressDiff"),
    "perframe_baseline": ("egopressdiff.baselines", "PerFrameBaseline"),
    "pressureformer_baseline": ("egopressdiff.baselines", "PressureFormerBaseline"),
}
_registered_models: dict[str, type] = {}
# diffusers-style ``_class_name`` in config.json -> model_type (for folders that carry only that)
CLASS_NAMES = {"EgoPressDiff": "egopressdiff", "PerFrameBaseline": "perframe_baseline",
               "PressureFormerBaseline": "pressureformer_baseline"}

# data.source -> (build(data_opts, model, split, data_root) -> Dataset, {extra data option: default})
_data_sources: dict[str, tuple[Callable, dict]] = {}
BUILTIN_DATA_SOURCES = ("egopressure",)


def register_model_class(model_type: str, cls: type) -> None:
    """Make ``cls`` the class of ``model_type`` (for run configs and saved folders).

    ``cls`` needs the model interface named in the module doc. Registering the same class
    again is a no-op; replacing a built-in or another class is a ConfigError.
    """
    current = _registered_models.get(model_type)
    if model_type in BUILTIN_MODELS or (current is not None and current is not cls):
        raise ConfigError(f"model_type {model_type!r} is already registered")
    _registered_models[model_type] = cls
    CLASS_NAMES.setdefault(cls.__name__, model_type)


def model_types() -> list[str]:
    """Every model_type a run config may name."""
    return [*BUILTIN_MODELS, *_registered_models]


def model_class(model_type: str):
    """The class implementing ``model_type`` (ConfigError if unknown)."""
    if model_type in _registered_models:
        return _registered_models[model_type]
    if model_type not in BUILTIN_MODELS:
        raise ConfigError(f"unknown model_type {model_type!r} (known: {', '.join(model_types())})")
    module, name = BUILTIN_MODELS[model_type]
    return getattr(importlib.import_module(module), name)


def register_data_source(name: str, build: Callable, options: dict | None = None) -> None:
    """Make ``data.source=name`` train on ``build(data_opts, model, split, data_root)`` datasets.

    ``data_opts`` is the resolved ``data`` section, ``split`` its ``train_split`` or
    ``val_split``, ``data_root`` the ``--data`` folder (None when not given). ``options`` maps
    extra ``data.*`` keys of this source to their defaults (the default's type is the key's type).
    """
    current = _data_sources.get(name)
    if name in BUILTIN_DATA_SOURCES or (current is not None and current[0] is not build):
        raise ConfigError(f"data source {name!r} is already registered")
    _data_sources[name] = (build, dict(options or {}))


def data_sources() -> list[str]:
    """Every data.source a run config may name."""
    return [*BUILTIN_DATA_SOURCES, *_data_sources]


def data_source_options() -> dict:
    """The extra ``data.*`` keys of the registered sources, with their defaults."""
    return {k: v for _build, opts in _data_sources.values() for k, v in opts.items()}


def data_source_builder(name: str) -> Callable:
    """``build(data_opts, model, split, data_root)`` of a registered data source."""
    if name not in _data_sources:
        raise ConfigError(f"unknown data source {name!r} (known: {', '.join(data_sources())})")
    return _data_sources[name][0]


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
    if mt not in model_types():
        raise CheckpointError(f"{cfg_path}: unknown model_type {mt!r} (known: {', '.join(model_types())})")
    return mt


def load_model(path: str | Path):
    """Load a ``save_pretrained`` folder with the class its ``config.json`` names."""
    return model_class(read_model_type(path)).from_pretrained(path)
