"""``model_type: toy`` -- a few-hundred-parameter model, an in-memory clip dataset and a run preset.

They exist to test the training machinery (checkpoints, exact resume, DDP, signals)
in seconds, through the same code path and CLI as the real models. :func:`register`
makes them known to the package (model_type ``toy``, ``data.source: toy`` with its
``data.toy_size``, the run preset ``toy``); conftest.py calls it, and so does
train_launcher.py for the subprocess tests.

The toy model has the model interface of EgoPressDiff (``from_config``, ``save_pretrained``,
``from_pretrained``, ``data_requirements``, ``training_loss``, ``trainable_parameters``,
``predict``) and, like it, draws noise from torch's global RNG in ``training_loss`` and
has a frozen part. It predicts nothing useful.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from egopressdiff.errors import CheckpointError, ConfigError

WEIGHTS_NAME = "model.safetensors"


@dataclass
class ToyConfig:
    """Sizes of the toy model (and of the clips it asks for)."""

    model_type: str = "toy"
    clip_length: int = 2
    crop_size: int = 8
    map_size: int = 8  # side of its (tiny) pressure maps
    hidden: int = 16
    dropout: float = 0.1

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ToyConfig:
        data = {k: v for k, v in data.items() if k not in ("preset", "name")}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown toy model config key {unknown[0]!r} (known: {', '.join(sorted(known))})")
        for k, v in data.items():
            default = getattr(cls, k)
            if type(v) is not type(default) and not (isinstance(default, float) and type(v) is int):
                raise ConfigError(f"toy model config key {k} must be {type(default).__name__}, got {v!r}")
        return cls(**data)


class ToyModel(nn.Module):
    """Frozen conv encoder -> trainable MLP denoiser of a small pressure map."""

    def __init__(self, config: ToyConfig):
        super().__init__()
        self.config = config
        c, h, m = 3, config.hidden, config.map_size
        self.encoder = nn.Conv2d(c, 4, 3, padding=1)  # frozen, like the VAE/CLIP of the real model
        self.encoder.requires_grad_(False)
        self.net = nn.Sequential(nn.Linear(4 + m * m + 1, h), nn.SiLU(), nn.Dropout(config.dropout),
                                 nn.Linear(h, m * m))

    # -- construction / persistence -------------------------------------------------
    @classmethod
    def from_config(cls, config) -> ToyModel:
        """``config``: the preset name ``"toy"``, a dict of :class:`ToyConfig` fields, or a folder/JSON path."""
        if isinstance(config, ToyConfig):
            return cls(config)
        if isinstance(config, dict):
            return cls(ToyConfig.from_dict(config))
        if config == "toy":
            return cls(ToyConfig())
        p = Path(config)
        if p.is_dir():
            p = p / "config.json"
        if not p.is_file():
            raise ConfigError(f"unknown toy model config {config!r}")
        return cls(ToyConfig.from_dict(json.loads(p.read_text())))

    def save_pretrained(self, directory) -> None:
        """Write ``config.json`` and ``model.safetensors`` into ``directory``."""
        from safetensors.torch import save_file

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.json").write_text(json.dumps(self.config.to_dict(), indent=1))
        save_file({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}, str(d / WEIGHTS_NAME))

    @classmethod
    def from_pretrained(cls, directory) -> ToyModel:
        from safetensors.torch import load_file

        d = Path(directory)
        if not (d / WEIGHTS_NAME).is_file():
            raise CheckpointError(f"toy model folder {d} has no {WEIGHTS_NAME}")
        model = cls.from_config(d)
        model.load_state_dict(load_file(str(d / WEIGHTS_NAME)))
        return model

    # -- the model interface ---------------------------------------------------------
    def data_requirements(self) -> dict:
        c = self.config
        return {"clip_length": c.clip_length, "crop_size": c.crop_size, "uv_conditioning": False,
                "uv_cond_size": None}

    def trainable_parameters(self) -> list[nn.Parameter]:
        return list(self.net.parameters())

    def _denoise(self, batch, noisy, sigma):
        rgb = batch["rgb"]  # (B, N, 3, S, S)
        b, n = rgb.shape[:2]
        feat = self.encoder(rgb.flatten(0, 1)).mean(dim=(2, 3))  # (B*N, 4)
        x = torch.cat([feat, noisy.flatten(0, 1).flatten(1), sigma.repeat_interleave(n)[:, None].log()], dim=1)
        return self.net(x).view_as(noisy)

    def training_loss(self, batch) -> torch.Tensor:
        """UV-mask-weighted denoising loss; sigma and noise come from torch's global RNG."""
        target = batch["pressure"] / 10.0  # (B, N, m, m)
        sigma = torch.exp(torch.randn(target.shape[0], device=target.device))
        noisy = target + sigma.view(-1, 1, 1, 1) * torch.randn_like(target)
        denoised = self._denoise(batch, noisy, sigma)
        w = 1.0 + batch["uv_mask"][:, None]
        return (((denoised - target) * w) ** 2).mean()

    def forward(self, batch) -> torch.Tensor:
        return self.training_loss(batch)

    @torch.no_grad()
    def predict(self, batch, steps: int = 2, seed: int = 0, num_samples: int = 1) -> torch.Tensor:
        """(num_samples, B, N, m, m) pressure in kPa, from a few crude denoising steps."""
        g = torch.Generator(device="cpu").manual_seed(seed)
        shape = batch["pressure"].shape if "pressure" in batch else (
            batch["rgb"].shape[0], batch["rgb"].shape[1], self.config.map_size, self.config.map_size)
        outs = []
        for _ in range(num_samples):
            x = torch.randn(shape, generator=g).to(batch["rgb"].device) * 4.0
            for sigma in torch.linspace(4.0, 0.1, steps):
                x = self._denoise(batch, x, sigma.expand(shape[0]).to(x.device))
            outs.append((x * 10.0).clamp_min(0))
        return torch.stack(outs)


class ToyClipDataset(torch.utils.data.Dataset):
    """``size`` deterministic clips with the keys of the clip batch, at toy sizes.

    Every item is a pure function of (split, index), so data order alone decides what a
    training step sees -- the property exact resume relies on.
    """

    def __init__(self, size: int = 24, clip_length: int = 2, crop_size: int = 8, map_size: int = 8,
                 split: str = "train"):
        self.size, self.n, self.s, self.m, self.split = size, clip_length, crop_size, map_size, split
        self._offset = {"train": 0, "val": 10_000, "test": 20_000}.get(split, 30_000)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.size:
            raise IndexError(i)
        g = torch.Generator().manual_seed(self._offset + i)
        rgb = torch.rand(self.n, 3, self.s, self.s, generator=g)
        # pressure is a simple function of the image so there is something to learn
        level = rgb.mean(dim=(1, 2, 3))  # (N,)
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, self.m), torch.linspace(-1, 1, self.m), indexing="ij")
        blob = torch.exp(-(xx**2 + yy**2) * 3.0)
        pressure = 20.0 * level[:, None, None] * blob[None]
        return {
            "rgb": rgb,
            "pressure": pressure.float(),
            "uv_mask": (blob > 0.3).float(),
            "frame": torch.arange(self.n, dtype=torch.int64) + 1 + i * self.n,
            "participant": "toy",
            "sequence": f"{self.split}_{i:03d}",
            "hand_side": "right",
        }


def build_toy_dataset(data_opts: dict, model, split: str, data_root=None) -> ToyClipDataset:
    """The ``data.source: toy`` builder (``data_root`` is not used)."""
    if not isinstance(model, ToyModel):
        raise ConfigError("config key data.source=toy only works with model_type toy")
    return ToyClipDataset(size=data_opts["toy_size"], clip_length=data_opts["clip_length"],
                          crop_size=data_opts["crop_size"], map_size=model.config.map_size, split=split)


TOY_PRESET = {
    "model": {"model_type": "toy", "preset": "toy"},
    "data": {"source": "toy"},
    "train": {"lr": 1e-2, "batch_size": 2, "max_steps": 20, "checkpoint_every": 5, "val_every": 10,
              "val_batches": 2, "log_every": 5},
}


def register() -> None:
    """Make model_type ``toy``, data source ``toy`` and the run preset ``toy`` known (idempotent)."""
    from egopressdiff.config import register_preset
    from egopressdiff.training.registry import register_data_source, register_model_class

    register_model_class("toy", ToyModel)
    register_data_source("toy", build_toy_dataset, options={"toy_size": 24})
    register_preset("toy", TOY_PRESET)
