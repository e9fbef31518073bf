"""Per-frame baselines: classification (PressureVision style) and regression.

Both are fed the same inputs as EgoPressDiff, one frame at a time: a clip batch
(B, N, ...) is treated as B·N independent frames. Two input layouts, as for
EgoPressDiff (``cond_space``):

* ``image`` (the paper's inputs): RGB crop + depth + pose map, 7 channels at the
  crop size S. The output lives on the UV atlas, a different spatial layout, so
  the network must learn the image→UV remapping: a conv encoder down to 4x4,
  flatten, a dense bottleneck, a dense layer to a coarse ``uv_grid``² UV grid,
  then a conv decoder (nearest upsampling ×2 + conv) up to ``uv_out_size``.
* ``uv`` (ours): ``batch["uv_cond"]`` (7 channels at U×U, already aligned with the
  output) plus the UV mask and two UV-coordinate channels (so the fully
  convolutional net knows where on the hand it is) → a small U-Net at U×U.

Vertex input (``use_vertices``): the frame's camera-frame vertices, centred on
their centroid and scaled by 1/0.1 m, flattened together with the centroid
(metres), go through a two-layer MLP whose output is *added* to the bottleneck
features (the dense bottleneck in ``image`` mode; broadcast over positions at the
U-Net's bottleneck in ``uv`` mode).

Ablation switches zero inputs rather than change the architecture: ``use_depth``
(``image``: the depth channel; ``uv``: channels 3 (observed depth) and 5
(visibility against the depth map)), ``use_pose`` (the pose-map channels; ``uv``
has none).

Heads, both predicted at the internal resolution and bilinearly resized to 224:

* ``classification``: 9 classes with thresholds [0, 0.5, 1, 2, 4, 8, 16, 32, 64]
  kPa (a pixel takes the highest bin whose threshold it reaches). Soft
  cross-entropy: the target puts 1 − 2ε on the true bin and ε on each
  neighbouring bin; at the two end bins the missing neighbour's ε stays on the
  true bin (so every target sums to 1). Decoding: ``argmax`` to the bin midpoint
  (0, 0.75, 1.5, 3, 6, 12, 24, 48, 80 kPa; the paper's baseline, default) or
  ``expectation`` (Σ softmax · midpoints).
* ``regression``: predicts y = log1p(kPa / s) with an L1 loss. L1 estimates the
  median, and log1p is monotone, so the decoded expm1(y)·s is the median in kPa —
  what MAE rewards — while the log keeps the loss from being ruled by the few
  high-pressure texels.

The loss is weighted by (1 + UV mask) like EgoPressDiff's (``use_uv_mask_weight``).
Predictions are clipped at 0 and multiplied by the UV mask.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from egopressdiff.data.layout import NUM_VERTICES, UV_SIZE
from egopressdiff.errors import CheckpointError, ConfigError

MODEL_TYPE = "perframe_baseline"
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"  # diffusers' ModelMixin file name
LEGACY_WEIGHTS_NAME = "model.safetensors"  # folders saved before the baseline was a ModelMixin
CONFIG_NAME = "config.json"

PRESSURE_THRESHOLDS_KPA = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
BIN_MIDPOINTS_KPA = (0.0, 0.75, 1.5, 3.0, 6.0, 12.0, 24.0, 48.0, 80.0)
NUM_CLASSES = len(PRESSURE_THRESHOLDS_KPA)
VERTEX_SCALE_M = 0.1  # hand-sized: centred vertices / 0.1 m are O(1)


# ---------------------------------------------------------------------------------------------
# quantisation / targets / decoding


def quantize_pressure(kpa: torch.Tensor) -> torch.Tensor:
    """kPa -> class index 0..8: the highest bin whose threshold the value reaches (negatives -> 0)."""
    bounds = torch.tensor(PRESSURE_THRESHOLDS_KPA[1:], dtype=kpa.dtype, device=kpa.device)
    # right=True: boundaries[i-1] <= x < boundaries[i]  ->  x == threshold falls in the bin it starts
    return torch.bucketize(kpa.contiguous(), bounds, right=True)


def soft_targets(classes: torch.Tensor, eps: float = 0.1) -> torch.Tensor:
    """Class indices (...) -> soft targets (..., 9): 1-2ε on the class, ε on each neighbour.

    At the end bins the missing neighbour's ε stays on the class, so each target sums to 1.
    """
    onehot = F.one_hot(classes, NUM_CLASSES).to(torch.float32)
    if eps <= 0:
        return onehot
    left = torch.roll(onehot, -1, dims=-1)  # mass on class-1
    left[..., -1] = 0
    right = torch.roll(onehot, 1, dims=-1)  # mass on class+1
    right[..., 0] = 0
    target = (1 - 2 * eps) * onehot + eps * (left + right)
    # give the end bins' missing neighbour mass back to the class itself
    missing = eps * (onehot[..., :1] + onehot[..., -1:])
    return target + missing * onehot


def decode_classes(logits: torch.Tensor, mode: str = "argmax", dim: int = 1) -> torch.Tensor:
    """Class logits -> kPa: ``argmax`` to the bin midpoint, or ``expectation`` over the midpoints."""
    mids = torch.tensor(BIN_MIDPOINTS_KPA, dtype=logits.dtype, device=logits.device)
    if mode == "argmax":
        # max(dim).indices, not argmax(dim): the same index (ties aside) and ~5x faster on CPU for a
        # class axis that is not the innermost one (measured on (4, 9, 224, 224), torch 2.13)
        return mids[logits.max(dim=dim).indices]
    if mode == "expectation":
        p = logits.softmax(dim=dim)
        shape = [1] * logits.ndim
        shape[dim] = NUM_CLASSES
        return (p * mids.view(shape)).sum(dim=dim)
    raise ValueError(f"decode mode must be 'argmax' or 'expectation', got {mode!r}")


# ---------------------------------------------------------------------------------------------
# config


@dataclass
class PerFrameBaselineConfig:
    """Sizes and switches of a per-frame baseline (see module doc)."""

    name: str = "baseline-cls-tiny"
    kind: str = "classification"  # "classification" | "regression"
    cond_space: str = "image"  # "image" | "uv"
    clip_length: int = 4  # frames per training clip (each is treated independently)
    crop_size: int = 64
    uv_cond_size: int = 64
    uv_cond_channels: int = 7
    width: int = 32  # channels of the first conv level
    hidden_dim: int = 256  # dense bottleneck (image mode)
    uv_grid: int = 7  # coarse UV grid the dense layer writes (image mode)
    uv_out_size: int = 112  # internal output resolution (image mode); resized to 224
    use_depth: bool = True
    use_pose: bool = True
    use_vertices: bool = True
    use_uv_mask_weight: bool = True
    vertex_hidden: int = 128
    soft_label_eps: float = 0.1
    decode: str = "argmax"  # "argmax" | "expectation" (classification)
    regression_scale_kpa: float = 1.0  # s in y = log1p(kPa / s)

    PRESETS = ("baseline-cls-tiny", "baseline-reg-tiny", "baseline-cls-tiny-uv", "baseline-reg-tiny-uv",
               "baseline-cls", "baseline-reg")

    @classmethod
    def preset(cls, name: str) -> PerFrameBaselineConfig:
        """Presets: ``baseline-{cls,reg}-tiny[-uv]`` (CPU-sized, same inputs as EgoPressDiff ``tiny``)
        and ``baseline-{cls,reg}`` (crop 256, UV conditioning 224, like ``svd``)."""
        if name not in cls.PRESETS:
            raise ConfigError(f"unknown baseline preset {name!r} (known: {', '.join(cls.PRESETS)})")
        kind = "classification" if "-cls" in name else "regression"
        cfg = cls(name=name, kind=kind, cond_space="uv" if name.endswith("-uv") else "image")
        if "tiny" not in name:
            cfg.crop_size, cfg.uv_cond_size, cfg.width, cfg.hidden_dim = 256, 224, 64, 512
            cfg.uv_out_size, cfg.clip_length = 224, 8
        return cfg

    def to_dict(self) -> dict:
        return copy.deepcopy(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict) -> PerFrameBaselineConfig:
        """From a dict of fields; missing fields come from the preset named by ``name``.

        ``model_type`` (if present) must be ``perframe_baseline``; ``preset`` is a synonym
        of ``name``; any other unknown key is a ConfigError.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"baseline config must be a mapping, got {type(data).__name__}")
        data = dict(data)
        mt = data.pop("model_type", MODEL_TYPE)
        if mt != MODEL_TYPE:
            raise ConfigError(f"config is for model_type {mt!r}, not {MODEL_TYPE!r}")
        if "preset" in data:
            data.setdefault("name", data.pop("preset"))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown baseline config key {unknown[0]!r} (known: {', '.join(sorted(known))})")
        name = data.get("name", cls.name)
        base = cls.preset(name) if name in cls.PRESETS else cls(name=str(name))
        out = base.to_dict()
        for k, v in data.items():
            default = out[k]
            ok = type(v) is type(default) or (isinstance(default, float) and type(v) is int)
            if not ok:
                raise ConfigError(f"baseline config key {k} must be {type(default).__name__}, got {v!r}")
            out[k] = float(v) if isinstance(default, float) else v
        cfg = cls(**out)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.kind not in ("classification", "regression"):
            raise ConfigError(f"baseline kind must be 'classification' or 'regression', got {self.kind!r}")
        if self.cond_space not in ("image", "uv"):
            raise ConfigError(f"cond_space must be 'image' or 'uv', got {self.cond_space!r}")
        if self.decode not in ("argmax", "expectation"):
            raise ConfigError(f"decode must be 'argmax' or 'expectation', got {self.decode!r}")
        for k in ("clip_length", "crop_size", "uv_cond_size", "uv_cond_channels", "width", "hidden_dim",
                  "uv_grid", "uv_out_size", "vertex_hidden"):
            if getattr(self, k) < 1:
                raise ConfigError(f"baseline config {k} must be >= 1")
        ups = math.log2(self.uv_out_size / self.uv_grid)
        if self.cond_space == "image" and (ups < 0 or ups != int(ups)):
            raise ConfigError(f"uv_out_size ({self.uv_out_size}) must be uv_grid ({self.uv_grid}) times a power of 2")
        if self.cond_space == "uv" and self.uv_cond_size % 4:
            raise ConfigError(f"uv_cond_size ({self.uv_cond_size}) must be divisible by 4")
        if not 0 <= self.soft_label_eps < 0.5:
            raise ConfigError("soft_label_eps must be in [0, 0.5)")
        if self.regression_scale_kpa <= 0:
            raise ConfigError("regression_scale_kpa must be > 0")

    def replace(self, **overrides) -> PerFrameBaselineConfig:
        data = self.to_dict()
        data.update(overrides)
        return type(self).from_dict(data)


# ---------------------------------------------------------------------------------------------
# network pieces


def _groups(ch: int) -> int:
    return math.gcd(8, ch)


def _conv_block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    # GroupNorm, not BatchNorm: batch statistics would make predictions depend on the batch
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.GroupNorm(_groups(cout), cout), nn.SiLU(),
        nn.Conv2d(cout, cout, 3, padding=1), nn.GroupNorm(_groups(cout), cout), nn.SiLU(),
    )


class _VertexMLP(nn.Module):
    """Camera-frame vertices (M, V, 3) -> (M, out_dim): centred/scaled coordinates + centroid, MLP."""

    def __init__(self, out_dim: int, hidden: int, num_vertices: int = NUM_VERTICES):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(num_vertices * 3 + 3, hidden), nn.SiLU(), nn.Linear(hidden, out_dim))

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        c = v.mean(dim=1, keepdim=True)
        x = torch.cat([((v - c) / VERTEX_SCALE_M).flatten(1), c.flatten(1)], dim=1)
        return self.net(x)


class _ImageToUV(nn.Module):
    """Image-space inputs -> UV-space output via a dense bottleneck (learns the remapping)."""

    def __init__(self, cfg: PerFrameBaselineConfig, in_ch: int, out_ch: int):
        super().__init__()
        w = cfg.width
        chans = [w, 2 * w, 2 * w, 4 * w]
        layers, c = [], in_ch
        for i, ch in enumerate(chans):
            layers.append(_conv_block(c, ch, stride=1 if i == 0 else 2))
            c = ch
        self.encoder = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4))
        self.dense_in = nn.Sequential(nn.Flatten(), nn.Linear(c * 16, cfg.hidden_dim), nn.SiLU())
        self.grid, self.grid_ch = cfg.uv_grid, 2 * w
        self.dense_out = nn.Linear(cfg.hidden_dim, self.grid_ch * cfg.uv_grid**2)
        n_up = int(round(math.log2(cfg.uv_out_size / cfg.uv_grid)))
        layers, c = [_conv_block(self.grid_ch, self.grid_ch)], self.grid_ch
        for i in range(n_up):
            ch = 2 * w if i < n_up // 2 else w
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), _conv_block(c, ch)]
            c = ch
        self.decoder = nn.Sequential(*layers)
        self.head = nn.Conv2d(c, out_ch, 1)
        self.bottleneck_dim = cfg.hidden_dim

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
        h = self.dense_in(self.encoder(x))
        if extra is not None:
            h = h + extra
        g = self.dense_out(h).view(-1, self.grid_ch, self.grid, self.grid)
        return self.head(self.decoder(g))


class _UVUNet(nn.Module):
    """UV-aligned inputs -> UV output: a three-level fully convolutional U-Net."""

    def __init__(self, cfg: PerFrameBaselineConfig, in_ch: int, out_ch: int):
        super().__init__()
        w = cfg.width
        self.enc0 = _conv_block(in_ch, w)
        self.enc1 = _conv_block(w, 2 * w, stride=2)
        self.enc2 = _conv_block(2 * w, 4 * w, stride=2)
        self.mid = _conv_block(4 * w, 4 * w)
        self.dec1 = _conv_block(4 * w + 2 * w, 2 * w)
        self.dec0 = _conv_block(2 * w + w, w)
        self.head = nn.Conv2d(w, out_ch, 1)
        self.bottleneck_dim = 4 * w

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None) -> torch.Tensor:
        e0 = self.enc0(x)
        e1 = self.enc1(e0)
        e2 = self.enc2(e1)
        if extra is not None:
            e2 = e2 + extra[:, :, None, None]
        m = self.mid(e2)
        d1 = self.dec1(torch.cat([F.interpolate(m, size=e1.shape[-2:], mode="nearest"), e1], dim=1))
        d0 = self.dec0(torch.cat([F.interpolate(d1, size=e0.shape[-2:], mode="nearest"), e0], dim=1))
        return self.head(d0)


# ---------------------------------------------------------------------------------------------
# the model


class PerFrameBaseline(ModelMixin, ConfigMixin):
    """Per-frame pressure baseline with the model interface of EgoPressDiff (see module doc).

    A diffusers ``ModelMixin``: ``save_pretrained`` writes ``config.json`` (the registered
    ``settings``, i.e. the :class:`PerFrameBaselineConfig` fields, and ``model_type``) and
    ``diffusion_pytorch_model.safetensors``. ``model.config`` is the typed
    :class:`PerFrameBaselineConfig` (presets, validation); diffusers' own registered dict is
    ``model._internal_dict``.
    """

    config_name = CONFIG_NAME

    @register_to_config
    def __init__(self, settings: dict | None = None, model_type: str = MODEL_TYPE):
        super().__init__()
        if model_type != MODEL_TYPE:
            raise ConfigError(f"config is for model_type {model_type!r}, not {MODEL_TYPE!r}")
        config = settings if isinstance(settings, PerFrameBaselineConfig) else \
            PerFrameBaselineConfig.from_dict(dict(settings or {}))
        config.validate()
        self._settings = config
        if isinstance(settings, PerFrameBaselineConfig):  # register plain JSON, not the object
            self.register_to_config(settings=config.to_dict())
        out_ch = NUM_CLASSES if config.kind == "classification" else 1
        if config.cond_space == "image":
            self.net = _ImageToUV(config, 7, out_ch)
        else:
            self.net = _UVUNet(config, config.uv_cond_channels + 3, out_ch)
        self.vertex_mlp = (_VertexMLP(self.net.bottleneck_dim, config.vertex_hidden)
                           if config.use_vertices else None)

    @property
    def config(self) -> PerFrameBaselineConfig:
        return self._settings

    @property
    def model_type(self) -> str:
        return MODEL_TYPE

    # -- construction / persistence ------------------------------------------------------
    @classmethod
    def from_config(cls, config=None, **kwargs) -> PerFrameBaseline:
        """A fresh model from a preset name, a dict of config fields, a config object, or a
        path to a ``config.json`` / YAML file (or a folder holding ``config.json``).

        A dict in diffusers' form (``{"settings": {...}}``, as in a saved ``config.json``) goes
        through ``ConfigMixin.from_config``.
        """
        if isinstance(config, dict) and ("settings" in config or "_class_name" in config):
            return super().from_config(config, **kwargs)
        if isinstance(config, PerFrameBaselineConfig):
            return cls(config)
        if isinstance(config, dict):
            return cls(PerFrameBaselineConfig.from_dict(config))
        if isinstance(config, str) and config in PerFrameBaselineConfig.PRESETS:
            return cls(PerFrameBaselineConfig.preset(config))
        p = Path(config)
        if p.is_dir():
            p = p / CONFIG_NAME
        if not p.is_file():
            raise ConfigError(f"{config!r} is neither a baseline preset "
                              f"({', '.join(PerFrameBaselineConfig.PRESETS)}) nor a config file")
        try:
            if p.suffix in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(p.read_text(encoding="utf-8"))
            else:
                data = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigError(f"cannot read baseline config {p}: {' '.join(str(e).split())}") from None
        if isinstance(data, dict) and "settings" in data:
            data = data["settings"]
        return cls(PerFrameBaselineConfig.from_dict(data))

    def save_pretrained(self, directory, overwrite: bool = True) -> Path:
        """diffusers' ``save_pretrained`` (config.json + safetensors), into a folder that appears atomically."""
        from egopressdiff.fsutil import atomic_dir

        directory = Path(directory)
        with atomic_dir(directory, overwrite=overwrite) as tmp:
            super().save_pretrained(tmp, safe_serialization=True)
        return directory

    @classmethod
    def from_pretrained(cls, directory, **kwargs) -> PerFrameBaseline:
        """Load a ``save_pretrained`` folder (safetensors only); anything else is a CheckpointError.

        Folders written before the baseline was a ModelMixin (flat ``config.json`` with ``model_type``
        and ``model.safetensors``) load too.
        """
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        d = Path(directory)
        cfg_path = d / CONFIG_NAME
        if not cfg_path.is_file():
            raise CheckpointError(f"model folder {d} has no {CONFIG_NAME}")
        try:
            data = json.loads(cfg_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise CheckpointError(f"cannot read {cfg_path}: {' '.join(str(e).split())}") from None
        mt = data.get("model_type") if isinstance(data, dict) else None
        if mt != MODEL_TYPE:
            raise CheckpointError(f"{d} holds a model of type {mt!r}, not a per-frame baseline ({MODEL_TYPE})")
        w_path = d / WEIGHTS_NAME if (d / WEIGHTS_NAME).is_file() else d / LEGACY_WEIGHTS_NAME
        if not w_path.is_file():
            raise CheckpointError(f"model folder {d} has no {WEIGHTS_NAME}")
        try:
            settings = data["settings"] if "settings" in data else {k: v for k, v in data.items()
                                                                     if not k.startswith("_")}
            model = cls(PerFrameBaselineConfig.from_dict(settings))
        except ConfigError as e:
            raise CheckpointError(f"{cfg_path}: {e}") from None
        try:
            state = load_file(str(w_path))
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"cannot read weights {w_path}: {' '.join(str(e).split())}") from None
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            raise CheckpointError(f"weights {w_path} do not fit the config: {str(e).splitlines()[0]}") from None
        return model

    # -- the model interface ---------------------------------------------------------------
    def data_requirements(self) -> dict:
        """What the clip dataset must deliver for this model."""
        c = self.config
        uv = c.cond_space == "uv"
        return {"clip_length": c.clip_length, "crop_size": c.crop_size, "uv_conditioning": uv,
                "uv_cond_size": c.uv_cond_size if uv else None}

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def parameter_counts(self) -> dict:
        counts = {"total": sum(p.numel() for p in self.parameters()),
                  "trainable": sum(p.numel() for p in self.trainable_parameters()),
                  "network": sum(p.numel() for p in self.net.parameters())}
        counts["vertex_mlp"] = sum(p.numel() for p in self.vertex_mlp.parameters()) if self.vertex_mlp else 0
        return counts

    def _device_dtype(self):
        p = next(self.parameters())
        return p.device, p.dtype

    def _inputs(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor | None, int, int]:
        """Frames as (B*N, C, H, W) network input, vertex features, B and N."""
        dev, dt = self._device_dtype()
        c = self.config
        if c.cond_space == "image":
            rgb = batch["rgb"]
            b, n = rgb.shape[:2]
            depth = batch["depth"].to(dev, dt)
            pose = batch["pose_map"].to(dev, dt)
            if not c.use_depth:
                depth = torch.zeros_like(depth)
            if not c.use_pose:
                pose = torch.zeros_like(pose)
            x = torch.cat([rgb.to(dev, dt), depth, pose], dim=2).flatten(0, 1)
        else:
            if "uv_cond" not in batch:
                raise ConfigError("this baseline uses UV conditioning (cond_space='uv'): the batch has no uv_cond; "
                                  "build the dataset with uv_conditioning=True")
            cond = batch["uv_cond"].to(dev, dt)
            b, n, _, u, _ = cond.shape
            if not c.use_depth:
                cond = cond.clone()
                cond[:, :, 3] = 0
                cond[:, :, 5] = 0
            mask = F.interpolate(batch["uv_mask"].to(dev, dt)[:, None], size=(u, u), mode="area")
            mask = mask[:, None].expand(b, n, 1, u, u)
            lin = torch.linspace(-1.0, 1.0, u, device=dev, dtype=dt)
            yy, xx = torch.meshgrid(lin, lin, indexing="ij")
            coords = torch.stack([xx, yy])[None, None].expand(b, n, 2, u, u)
            x = torch.cat([cond, mask, coords], dim=2).flatten(0, 1)
        extra = None
        if self.vertex_mlp is not None:
            extra = self.vertex_mlp(batch["vertices"].to(dev, dt).flatten(0, 1))
        return x, extra, b, n

    def _outputs(self, batch: dict) -> tuple[torch.Tensor, int, int]:
        """Raw head output at 224x224: (B*N, 9, 224, 224) logits or (B*N, 1, 224, 224) y."""
        x, extra, b, n = self._inputs(batch)
        out = self.net(x, extra)
        if out.shape[-1] != UV_SIZE:
            out = F.interpolate(out, size=(UV_SIZE, UV_SIZE), mode="bilinear", align_corners=False)
        return out, b, n

    def training_loss(self, batch: dict) -> torch.Tensor:
        """Mean per-pixel loss over the B·N frames, weighted by (1 + UV mask) if configured."""
        out, b, n = self._outputs(batch)
        dev = out.device
        target = batch["pressure"].to(dev, torch.float32).flatten(0, 1)  # (M, 224, 224)
        if self.config.use_uv_mask_weight:
            w = 1.0 + batch["uv_mask"].to(dev, torch.float32)[:, None].expand(b, n, -1, -1).flatten(0, 1)
        else:
            w = torch.ones_like(target)
        if self.config.kind == "classification":
            soft = soft_targets(quantize_pressure(target), self.config.soft_label_eps)  # (M, H, W, 9)
            logp = F.log_softmax(out.float(), dim=1).permute(0, 2, 3, 1)
            per_pixel = -(soft * logp).sum(dim=-1)
        else:
            y = torch.log1p(target.clamp_min(0) / self.config.regression_scale_kpa)
            per_pixel = (out[:, 0].float() - y).abs()
        return (per_pixel * w).sum() / w.sum()

    def forward(self, batch: dict) -> torch.Tensor:
        """The training loss (so DDP wrappers call the model itself)."""
        return self.training_loss(batch)

    def decode(self, out: torch.Tensor) -> torch.Tensor:
        """Head output (M, C, H, W) -> kPa (M, H, W), >= 0."""
        if self.config.kind == "classification":
            return decode_classes(out.float(), self.config.decode, dim=1)
        return (torch.expm1(out[:, 0].float().clamp_min(0)) * self.config.regression_scale_kpa)

    @torch.no_grad()
    def predict(self, batch: dict, steps: int | None = None, seed: int = 0, num_samples: int = 1,
                frame_ids=None) -> dict:
        """``{"pressure_kpa": (B, N, 224, 224)}``, masked by the UV mask and >= 0.

        ``steps``, ``seed``, ``num_samples`` and ``frame_ids`` exist for interface parity with the
        diffusion model and are ignored: the baseline is deterministic (it has no
        sample spread, so no ``pressure_std_kpa`` is returned).
        """
        was_training = self.training
        self.eval()
        try:
            out, b, n = self._outputs(batch)
            kpa = self.decode(out).view(b, n, UV_SIZE, UV_SIZE)
            mask = batch["uv_mask"].to(kpa.device, kpa.dtype)[:, None]
            kpa = kpa.clamp_min(0) * mask
        finally:
            self.train(was_training)
        return {"pressure_kpa": kpa}
