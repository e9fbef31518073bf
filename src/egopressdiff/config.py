"""Run configs: presets, YAML files and dotted command-line overrides.

A run config is a nested dict with three sections:

* ``model`` -- ``model_type`` (``egopressdiff`` | ``perframe_baseline`` | ``pressureformer_baseline``,
  or a type added with :func:`egopressdiff.training.registry.register_model_class`) plus either a
  model ``preset`` name, model config fields, or both (fields override the preset's). The model
  class validates its own fields when it is built.
* ``data`` -- how clips are cut (see :data:`DATA_SCHEMA`; a data source added with
  :func:`egopressdiff.training.registry.register_data_source` may bring keys of its own).
  Clip geometry left at ``null`` is taken from the model's ``data_requirements()``; a value
  that contradicts it is an error.
* ``train`` -- optimisation, checkpointing and logging (see :data:`TRAIN_SCHEMA`).

``load_run_config(name_or_path, overrides)`` resolves a preset name or a YAML file (loaded
with ``yaml.safe_load`` only), applies ``key.sub=value`` overrides (values parsed with
``yaml.safe_load``), fills defaults and checks every key and type: an unknown key or a wrong
type is a :class:`~egopressdiff.errors.ConfigError` naming the key and the expected type.
A YAML file may start from a preset with a top-level ``base: <preset>``; :func:`register_preset`
adds presets.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import yaml

from egopressdiff.errors import ConfigError
from egopressdiff.fsutil import atomic_write_text

MIXED_PRECISION = ("no", "fp16", "bf16")
LR_SCHEDULES = ("constant", "linear", "cosine")

# key -> (expected type(s), default, allowed values or None). ``None`` in the types means
# the key may be null. ``float`` keys also accept ints, and strings such as "1e-4" (YAML 1.1,
# which PyYAML speaks, reads ``1e-4`` as a string).
_INT = (int,)
_FLOAT = (float,)
_BOOL = (bool,)
_STR = (str,)

DATA_SCHEMA: dict[str, tuple] = {
    "source": (_STR, "egopressure", None),  # checked against the registry's data sources
    "mesh": (_STR, "annotated", ("annotated", "estimated")),  # mesh source: the annotation or the estimated track
    "clip_length": (_INT + (None,), None, None),
    "stride": (_INT, 8, None),
    "crop_size": (_INT + (None,), None, None),
    "uv_size": (_INT, 224, None),
    "uv_conditioning": (_BOOL + (None,), None, None),
    "uv_cond_size": (_INT + (None,), None, None),
    "augment": (_BOOL, False, None),
    "num_workers": (_INT, 0, None),
    # keep built clips in RAM after first use (no augmentation; see data/memory_cache.py)
    "cache_in_memory": (_BOOL, False, None),
    "train_split": (_STR, "train", None),
    "val_split": (_STR, "val", None),
}
# keys that older versions wrote into every RUN/config.yaml and that mean nothing now:
# dropped on load, so that those runs still resume
RETIRED_KEYS = {"data": ("toy_size",)}

TRAIN_SCHEMA: dict[str, tuple] = {
    "seed": (_INT, 0, None),
    "lr": (_FLOAT, 1e-4, None),
    "weight_decay": (_FLOAT, 0.0, None),
    "adam_beta1": (_FLOAT, 0.9, None),
    "adam_beta2": (_FLOAT, 0.999, None),
    "adam_eps": (_FLOAT, 1e-8, None),
    "batch_size": (_INT, 1, None),  # per process
    "max_steps": (_INT, 1000, None),  # optimizer steps
    "grad_accum": (_INT, 1, None),
    "mixed_precision": (_STR, "no", MIXED_PRECISION),
    "grad_clip": (_FLOAT + (None,), 1.0, None),
    "warmup_steps": (_INT, 0, None),
    "lr_schedule": (_STR, "constant", LR_SCHEDULES),
    "checkpoint_every": (_INT, 100, None),
    "keep_checkpoints": (_INT, 3, None),
    "val_every": (_INT, 100, None),  # 0 = no validation
    "val_batches": (_INT, 4, None),
    "val_seed": (_INT, 1234, None),
    "log_every": (_INT, 10, None),
    "ema": (_FLOAT + (None,), None, None),  # EMA decay of the trainable weights, null = off
    "gradient_checkpointing": (_BOOL, False, None),
    "allow_tf32": (_BOOL, True, None),
    "compile": (_BOOL, False, None),
    "find_unused_parameters": (_BOOL, False, None),
    # frozen-encoder cache (training/cache.py): built once, reused while data and encoders are unchanged
    "cache_encoders": (_BOOL, False, None),
    "cache_dir": (_STR + (None,), None, None),  # null = RUN/cache
}

SECTIONS = ("model", "data", "train")

_TINY_TRAIN = {"lr": 1e-3, "batch_size": 2, "max_steps": 2000, "checkpoint_every": 100, "val_every": 100,
               "val_batches": 2, "log_every": 10}
_FULL_TRAIN = {"lr": 1e-5, "batch_size": 2, "max_steps": 50000, "mixed_precision": "bf16",
               "gradient_checkpointing": True, "warmup_steps": 500, "checkpoint_every": 1000,
               "keep_checkpoints": 3, "val_every": 1000, "val_batches": 16, "log_every": 50}
_BASELINE_TINY_TRAIN = dict(_TINY_TRAIN, batch_size=4, max_steps=1000)
_BASELINE_FULL_TRAIN = dict(_FULL_TRAIN, lr=1e-4, batch_size=8, warmup_steps=200, gradient_checkpointing=False)

PRESETS: dict[str, dict[str, Any]] = {
    # CPU-sized (the model's own tiny preset; lr/batch as its config recommends); tests and the demo.
    "tiny": {"model": {"model_type": "egopressdiff", "preset": "tiny"}, "data": {}, "train": dict(_TINY_TRAIN)},
    # tiny with the conditioning unwrapped into UV space
    "tiny-uv": {"model": {"model_type": "egopressdiff", "preset": "tiny", "cond_space": "uv"}, "data": {},
                "train": dict(_TINY_TRAIN)},
    # The paper's size: SVD-XT U-Net, 16 frames, lr 1e-5, batch 2 per GPU, bf16.
    "svd": {"model": {"model_type": "egopressdiff", "preset": "svd"}, "data": {"num_workers": 4},
            "train": dict(_FULL_TRAIN)},
}
# the per-frame baselines, tiny and full-size, image- or UV-space conditioning
for _kind in ("cls", "reg"):
    for _suffix, _train, _data in (("-tiny", _BASELINE_TINY_TRAIN, {}), ("-tiny-uv", _BASELINE_TINY_TRAIN, {}),
                                   ("", _BASELINE_FULL_TRAIN, {"num_workers": 4})):
        _name = f"baseline-{_kind}{_suffix}"
        PRESETS[_name] = {"model": {"model_type": "perframe_baseline", "preset": _name}, "data": dict(_data),
                          "train": dict(_train)}
# the PressureFormer-style baseline (vertex queries -> UV atlas), the same budgets as the other baselines
for _suffix, _train, _data in (("-tiny", _BASELINE_TINY_TRAIN, {}), ("-tiny-uv", _BASELINE_TINY_TRAIN, {}),
                               ("", _BASELINE_FULL_TRAIN, {"num_workers": 4})):
    _name = f"baseline-pformer{_suffix}"
    PRESETS[_name] = {"model": {"model_type": "pressureformer_baseline", "preset": _name}, "data": dict(_data),
                      "train": dict(_train)}


def _type_name(types: tuple) -> str:
    names = {int: "integer", float: "number", bool: "true/false", str: "string", None: "null"}
    return " or ".join(names[t] for t in types)


def _check_value(section: str, key: str, value: Any, spec: tuple) -> Any:
    types, _default, allowed = spec
    where = f"{section}.{key}"
    if value is None:
        if None in types:
            return None
        raise ConfigError(f"config key {where} must be {_type_name(types)}, got null")
    if float in types:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(f"config key {where} must be {_type_name(types)}, got {value!r}") from None
        if isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"config key {where} must be a finite number, got {value!r}")
    # bool is a subclass of int: refuse `true` for an integer key
    ok = any(t is not None and isinstance(value, t) and not (t is int and isinstance(value, bool)) for t in types)
    if not ok:
        raise ConfigError(f"config key {where} must be {_type_name(types)}, got {value!r}")
    if allowed is not None and value not in allowed:
        raise ConfigError(f"config key {where} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _check_ranges(cfg: dict) -> None:
    t, d = cfg["train"], cfg["data"]
    positive = ["lr", "batch_size", "max_steps", "grad_accum", "checkpoint_every", "keep_checkpoints",
                "log_every", "adam_eps"]
    for k in positive:
        if t[k] <= 0:
            raise ConfigError(f"config key train.{k} must be > 0, got {t[k]!r}")
    for k in ("warmup_steps", "val_every", "val_batches", "weight_decay"):
        if t[k] < 0:
            raise ConfigError(f"config key train.{k} must be >= 0, got {t[k]!r}")
    if t["grad_clip"] is not None and t["grad_clip"] <= 0:
        raise ConfigError(f"config key train.grad_clip must be > 0 or null, got {t['grad_clip']!r}")
    if t["ema"] is not None and not 0.0 < t["ema"] < 1.0:
        raise ConfigError(f"config key train.ema must be a decay in (0, 1) or null, got {t['ema']!r}")
    for k in ("adam_beta1", "adam_beta2"):
        if not 0.0 <= t[k] < 1.0:
            raise ConfigError(f"config key train.{k} must be in [0, 1), got {t[k]!r}")
    for k in ("clip_length", "crop_size", "uv_cond_size", "uv_size", "stride"):
        if d[k] is not None and d[k] <= 0:
            raise ConfigError(f"config key data.{k} must be > 0, got {d[k]!r}")
    if d["num_workers"] < 0:
        raise ConfigError(f"config key data.num_workers must be >= 0, got {d['num_workers']!r}")


def _registered_data_options() -> dict[str, tuple]:
    """Schema entries of the data options that registered data sources bring (typed by their defaults)."""
    from egopressdiff.training.registry import data_source_options

    types = {bool: _BOOL, int: _INT, float: _FLOAT, str: _STR}
    out = {}
    for key, default in data_source_options().items():
        if type(default) not in types:
            raise ConfigError(f"data option {key}: a default must be a boolean, integer, number or string")
        out[key] = (types[type(default)], default, None)
    return out


def validate_run_config(raw: dict, source: str = "config") -> dict:
    """Fill defaults and check keys, types and ranges; returns a new, complete config dict."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a run config must be a mapping with sections {', '.join(SECTIONS)}")
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{source}: unknown config key {unknown[0]!r} (sections are {', '.join(SECTIONS)})")
    out: dict[str, Any] = {}
    model = raw.get("model")
    if not isinstance(model, dict):
        raise ConfigError(f"{source}: config key model must be a mapping with model_type (and preset or fields)")
    for k in model:
        if not isinstance(k, str):
            raise ConfigError(f"{source}: config key model.{k!r} must be a string")
    from egopressdiff.training import registry

    mt = model.get("model_type")
    if mt not in registry.model_types():
        raise ConfigError(f"{source}: config key model.model_type must be one of "
                          f"{', '.join(registry.model_types())}, got {mt!r}")
    if "preset" in model and not isinstance(model["preset"], str):
        raise ConfigError(f"{source}: config key model.preset must be a string, got {model['preset']!r}")
    out["model"] = copy.deepcopy(model)
    schemas = {"data": {**DATA_SCHEMA, **_registered_data_options()}, "train": TRAIN_SCHEMA}
    for section, schema in schemas.items():
        given = raw.get(section) or {}
        if not isinstance(given, dict):
            raise ConfigError(f"{source}: config key {section} must be a mapping, got {given!r}")
        given = {k: v for k, v in given.items() if k in schema or k not in RETIRED_KEYS.get(section, ())}
        unknown = sorted(set(given) - set(schema), key=str)
        if unknown:
            raise ConfigError(f"{source}: unknown config key {section}.{unknown[0]} "
                              f"(known: {', '.join(sorted(schema))})")
        sec = {}
        for key, spec in schema.items():
            sec[key] = _check_value(section, key, given.get(key, spec[1]), spec) if key in given else spec[1]
        out[section] = sec
    if out["data"]["source"] not in registry.data_sources():
        raise ConfigError(f"{source}: config key data.source must be one of {', '.join(registry.data_sources())}, "
                          f"got {out['data']['source']!r}")
    _check_ranges(out)
    return out


def _deep_update(base: dict, new: dict) -> dict:
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _deep_update(base[k], v)
        else:
            base[k] = copy.deepcopy(v)
    return base


def apply_overrides(cfg: dict, overrides: list[str] | None) -> dict:
    """Apply ``section.key=value`` overrides (value parsed by ``yaml.safe_load``) to a copy of ``cfg``."""
    cfg = copy.deepcopy(cfg)
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value (e.g. train.lr=1e-4)")
        dotted, text = item.split("=", 1)
        parts = dotted.strip().split(".")
        if len(parts) < 2 or not all(parts) or parts[0] not in SECTIONS:
            raise ConfigError(f"override {item!r}: the key must be section.key with section one of "
                              f"{', '.join(SECTIONS)}")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as e:
            raise ConfigError(f"override {item!r}: cannot parse the value ({e.__class__.__name__})") from None
        node = cfg.setdefault(parts[0], {})
        for p in parts[1:-1]:
            if not isinstance(node.get(p), dict):
                node[p] = {}
            node = node[p]
        node[parts[-1]] = value
    return cfg


def register_preset(name: str, cfg: dict) -> None:
    """Add a run-config preset (a mapping of sections, as in :data:`PRESETS`) under ``name``.

    Registering an equal preset again is a no-op; another one under a taken name is a ConfigError.
    """
    if name in PRESETS and PRESETS[name] != cfg:
        raise ConfigError(f"preset {name!r} already exists")
    PRESETS[name] = copy.deepcopy(cfg)


def _load_raw(name_or_path: str | Path) -> tuple[dict, str]:
    name = str(name_or_path)
    if name in PRESETS:
        return copy.deepcopy(PRESETS[name]), f"preset {name}"
    path = Path(name)
    if path.suffix.lower() not in (".yaml", ".yml") and not path.exists():
        raise ConfigError(f"unknown config {name!r}: not a preset ({', '.join(PRESETS)}) and no such YAML file")
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {path} is not valid YAML: {' '.join(str(e).split())}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping with sections {', '.join(SECTIONS)}")
    base = raw.pop("base", None)
    if base is not None:
        if base not in PRESETS:
            raise ConfigError(f"config file {path}: base {base!r} is not a preset ({', '.join(PRESETS)})")
        raw = _deep_update(copy.deepcopy(PRESETS[base]), raw)
    return raw, f"config file {path}"


def load_run_config(name_or_path: str | Path, overrides: list[str] | None = None) -> dict:
    """Resolve a preset name or YAML file plus dotted overrides into a complete, checked run config."""
    raw, source = _load_raw(name_or_path)
    return validate_run_config(apply_overrides(raw, overrides), source)


def save_run_config(cfg: dict, path: str | Path) -> None:
    """Write ``cfg`` as YAML, atomically."""
    atomic_write_text(path, yaml.safe_dump(cfg, sort_keys=False))


def resolve_data_options(cfg: dict, requirements: dict) -> dict:
    """Merge the model's ``data_requirements()`` into the config's ``data`` section.

    Clip geometry left at null takes the model's value; an explicit value that differs from
    what the model needs is a ConfigError (a model built for 16-frame clips cannot train on 8).
    """
    data = dict(cfg["data"])
    for key, need in requirements.items():
        if key not in data:
            continue
        if data[key] is None:
            data[key] = need
        elif need is not None and data[key] != need:
            raise ConfigError(f"config key data.{key}={data[key]!r} contradicts the model, which needs {need!r}")
    return data
