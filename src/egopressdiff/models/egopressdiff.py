"""EgoPressDiff: the conditional video diffusion model (one ``nn.Module`` holding every part).

Data flow for a clip batch (see docs/architecture.md for the keys):

* target: ``pressure`` (B, N, 224, 224) kPa -> area-resized to ``uv_size`` -> normalised and
  encoded as ``config.target_transform`` says (models/codecs.py; zero pressure = latent 0)
  -> (B, N, C, h, w);
* conditions: CLIP embedding of each RGB crop (one image token per frame); the Vertex
  Encoder's token(s) per frame (``vertex_tokens``: one pooled token, or UV region tokens);
  in ``cond_space="image"`` the depth crop resized to ``uv_size`` and encoded by the same
  codec (its latent is concatenated to the noisy latent, C + C input channels) and the pose
  map for PoseNet; in ``cond_space="uv"`` ``batch["uv_cond"]`` goes
  through a small conv encoder to C latent channels (taking the depth latent's slot) and
  through PoseNet. Image-space maps are resized to the latent grid of the UV targets: the
  paper adds pose features to the latent and concatenates depth latents, which needs one grid;
* EDM training loss and Euler/Heun sampling (egopressdiff.diffusion);
* prediction: latents -> codec decode -> kPa -> bilinear resize to 224 -> clip at 0 -> x UV mask.
  The resize pair (area down, bilinear up, in kPa) is the only lossy step of the tiny codec;
  its round-trip error is the floor of the tiny model's MAE (benchmarks/bench_model.py).

Ablation switches: ``use_depth`` (zero condition latents / zeroed observed-depth channel of
uv_cond), ``use_vertices`` (no vertex branch), ``use_dc_calibration`` (plain sum),
``use_posenet`` (no PoseNet), ``use_uv_mask_weight`` (loss weight 1 everywhere).

``model(batch)`` is ``model.training_loss(batch)`` so that DDP wraps the whole model.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from egopressdiff.data.processor import UV_COND_OBSERVED_DEPTH
from egopressdiff.diffusion.edm import edm_loss, latent_mask
from egopressdiff.diffusion.scheduling_edm import EDMScheduler
from egopressdiff.errors import CheckpointError, ConfigError, DataError
from egopressdiff.models.clip_encoder import ClipImageEncoder
from egopressdiff.models.codecs import PressureTargets, build_codec, resize_maps
from egopressdiff.models.config import EgoPressDiffConfig
from egopressdiff.models.posenet import ConditionEncoder, PoseNet
from egopressdiff.models.unet import ConditionedUNet
from egopressdiff.models.vertex_encoder import VertexEncoder

CONFIG_NAME = "config.json"
CLASS_NAME = "EgoPressDiff"
MODEL_TYPE = "egopressdiff"  # what training.registry reads from config.json
COMPONENTS = ("unet", "posenet", "vertex_encoder", "uv_encoder", "codec", "image_encoder")
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"  # what diffusers' save_pretrained writes per component


def _to_config(spec) -> EgoPressDiffConfig:
    if isinstance(spec, EgoPressDiffConfig):
        return EgoPressDiffConfig.from_dict(spec.to_dict())
    if isinstance(spec, dict):
        return EgoPressDiffConfig.from_dict(spec)
    if isinstance(spec, (str, Path)):
        if str(spec) in ("tiny", "svd"):
            return EgoPressDiffConfig.preset(str(spec))
        p = Path(spec)
        if p.is_dir():
            p = p / CONFIG_NAME
        if not p.exists():
            raise ConfigError(f"model config {spec!s} is neither a preset ('tiny', 'svd') nor an existing file")
        data = json.loads(p.read_text())
        data.pop("model_type", None)
        return EgoPressDiffConfig.from_dict(data)
    raise ConfigError(f"cannot build a model config from {type(spec).__name__}")


class EgoPressDiff(nn.Module):
    """The EgoPressDiff model (see module doc). Build with :meth:`from_config`, :meth:`from_pretrained`
    or :meth:`from_svd`."""

    def __init__(self, config: EgoPressDiffConfig, unet: nn.Module | None = None, vae: nn.Module | None = None,
                 clip_model: nn.Module | None = None):
        super().__init__()
        config.validate()
        self.config = config
        self.codec = build_codec(config.codec, vae)
        self.targets = PressureTargets(self.codec, config.target_transform, config.pressure_scale_kpa,
                                       config.pressure_max_kpa)
        self.image_encoder = ClipImageEncoder(config.clip, config.clip_image_mean, config.clip_image_std,
                                              clip_model=clip_model)
        per_vertex = config.vertex_tokens == "per_vertex" and config.use_vertices
        self.denoiser = ConditionedUNet(config.unet, calibrate=config.use_dc_calibration, eps=config.dc_eps,
                                        spatial_vertex=per_vertex, unet_model=unet)
        if config.vertex_gate_init:  # only the initial value: saved weights overwrite it when loaded
            with torch.no_grad():
                for blk in self.denoiser.dc_blocks:
                    blk.vtx_gate.fill_(float(config.vertex_gate_init))
        unet = self.denoiser.unet
        c_lat = self.codec.latent_channels
        if unet.config.in_channels != 2 * c_lat or unet.config.out_channels != c_lat:
            raise ConfigError(f"U-Net in/out channels ({unet.config.in_channels}/{unet.config.out_channels}) must be "
                              f"{2 * c_lat}/{c_lat} for a codec with {c_lat} latent channels")
        if config.uv_size % self.codec.downsample_factor:
            raise ConfigError(f"uv_size {config.uv_size} must be a multiple of the codec factor "
                              f"{self.codec.downsample_factor}")
        width = unet.config.block_out_channels[0]
        cad = unet.config.cross_attention_dim
        d = cad if isinstance(cad, int) else cad[0]
        if self.image_encoder.embed_dim != d:
            raise ConfigError(f"CLIP projection_dim {self.image_encoder.embed_dim} != U-Net cross_attention_dim {d}")
        cond_ch = 3 if config.cond_space == "image" else config.uv_cond_channels
        self.posenet = (PoseNet(cond_ch, width, self.codec.downsample_factor, config.posenet_channels)
                        if config.use_posenet else None)
        ve = config.vertex_encoder
        self.vertex_encoder = (VertexEncoder(d, ve["point_channels"], ve["temporal_blocks"], ve["kernel_size"],
                                             tokens=config.vertex_tokens, regions=ve["regions"], atlas=ve["uv_atlas"],
                                             image_features=ve.get("image_features", 0))
                               if config.use_vertices else None)
        self.uv_encoder = (ConditionEncoder(config.uv_cond_channels, c_lat, self.codec.downsample_factor,
                                            config.uv_encoder_channels)
                           if config.cond_space == "uv" else None)
        # the diffusion constants training and sampling share (not a module: it has no weights)
        self.scheduler = EDMScheduler.from_edm_config(config.edm)
        self.codec.requires_grad_(bool(config.train_codec))
        self.image_encoder.requires_grad_(bool(config.train_image_encoder))

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, spec="tiny", device=None, **overrides) -> EgoPressDiff:
        """Random-weight model from a preset name, a config JSON path, a dict or a config.

        ``device="meta"`` builds it without allocating weights (for parameter counts of ``svd``).
        """
        cfg = _to_config(spec)
        if overrides:
            cfg = cfg.replace(**overrides)
        if device is not None:
            with torch.device(device):
                return cls(cfg)
        return cls(cfg)

    @classmethod
    def from_svd(cls, svd_dir, **overrides) -> EgoPressDiff:
        """Build around a local diffusers-format SVD folder (see :mod:`egopressdiff.models.svd_loading`)."""
        from egopressdiff.models.svd_loading import from_svd

        return from_svd(cls, svd_dir, **overrides)

    def components(self) -> dict[str, nn.Module | None]:
        """The networks by name (diffusers ``ModelMixin``s; None where a switch leaves one out)."""
        return {"unet": self.denoiser, "posenet": self.posenet, "vertex_encoder": self.vertex_encoder,
                "uv_encoder": self.uv_encoder, "codec": self.codec, "image_encoder": self.image_encoder}

    def save_pretrained(self, directory, overwrite: bool = True) -> Path:
        """Write a diffusers-style folder, atomically::

            config.json                     this model's EgoPressDiffConfig (+ _class_name, model_type)
            <component>/config.json         each network's own config (ConfigMixin)
            <component>/diffusion_pytorch_model.safetensors   its weights (none for weightless ones)
            scheduler/scheduler_config.json the EDM scheduler
        """
        from egopressdiff.fsutil import atomic_dir

        directory = Path(directory)
        with atomic_dir(directory, overwrite=overwrite) as tmp:
            names = []
            for name, module in self.components().items():
                if module is None:
                    continue
                module.save_pretrained(tmp / name, safe_serialization=True)
                names.append(name)
            self.scheduler.save_pretrained(tmp / "scheduler")
            meta = {"_class_name": CLASS_NAME, "model_type": MODEL_TYPE, "_components": names,
                    **self.config.to_dict()}
            (tmp / CONFIG_NAME).write_text(json.dumps(meta, indent=2))
        return directory

    @classmethod
    def from_pretrained(cls, directory, device=None) -> EgoPressDiff:
        """Load a folder written by :meth:`save_pretrained` (safetensors only, nothing is unpickled).

        Also reads the earlier flat layout (``<component>.safetensors`` beside ``config.json``).
        """
        directory = Path(directory)
        cfg_path = directory / CONFIG_NAME
        if not cfg_path.is_file():
            raise CheckpointError(f"{directory} is not an EgoPressDiff checkpoint: {cfg_path} is missing")
        try:
            meta = json.loads(cfg_path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise CheckpointError(f"cannot read {cfg_path}: {e}") from e
        if (not isinstance(meta, dict) or meta.get("_class_name") != CLASS_NAME
                or meta.get("model_type", MODEL_TYPE) != MODEL_TYPE):
            found = (meta.get("_class_name"), meta.get("model_type")) if isinstance(meta, dict) else None
            raise CheckpointError(f"{cfg_path} describes a {found!r} model, not an EgoPressDiff one")
        try:
            cfg = EgoPressDiffConfig.from_dict({k: v for k, v in meta.items() if k != "model_type"})
        except ConfigError as e:
            raise CheckpointError(f"bad model config in {cfg_path}: {e}") from e
        model = cls(cfg)
        for name, module in model.components().items():
            if module is not None and module.state_dict():
                _load_component(module, directory, name)
        if device is not None:
            model.to(device)
        return model

    # ------------------------------------------------------------------ facts
    @property
    def latent_size(self) -> tuple[int, int]:
        h = self.config.uv_size // self.codec.downsample_factor
        return (h, h)

    @property
    def latent_channels(self) -> int:
        return self.codec.latent_channels

    def data_requirements(self) -> dict:
        """The ClipDataset options this model needs."""
        c = self.config
        return {"clip_length": c.clip_length, "crop_size": c.crop_size, "uv_conditioning": c.cond_space == "uv",
                "uv_cond_size": c.uv_cond_size}

    def trainable_parameters(self) -> list[nn.Parameter]:
        """U-Net (with DC blocks), PoseNet, Vertex Encoder, UV condition encoder (+ codec / CLIP if configured)."""
        mods = [self.denoiser, self.posenet, self.vertex_encoder, self.uv_encoder]
        if self.config.train_codec:
            mods.append(self.codec)
        if self.config.train_image_encoder:
            mods.append(self.image_encoder)
        return [p for m in mods if m is not None for p in m.parameters()]

    def parameter_counts(self) -> dict[str, int]:
        """Parameters per component, the DC additions inside the U-Net, trainable and total."""
        counts = {name: (0 if m is None else sum(p.numel() for p in m.parameters()))
                  for name, m in self.components().items()}
        blocks = self.denoiser.dc_blocks
        counts["unet_dc_added"] = (sum(p.numel() for b in blocks for p in b.attn_vtx.parameters())
                                   + sum(b.vtx_gate.numel() for b in blocks))
        counts["trainable"] = sum(p.numel() for p in self.trainable_parameters())
        counts["total"] = sum(p.numel() for p in self.parameters())
        return counts

    def train(self, mode: bool = True):
        super().train(mode)
        # frozen encoders stay in eval mode
        if not self.config.train_codec:
            self.codec.eval()
        if not self.config.train_image_encoder:
            self.image_encoder.eval()
        return self

    # ------------------------------------------------------------------ encoders
    def _grad(self, trainable: bool):
        return torch.enable_grad() if (trainable and torch.is_grad_enabled()) else torch.no_grad()

    def encode_targets(self, batch: dict) -> dict:
        """{"target_latents": (B, N, C, h, w)} from ``batch["pressure"]`` (kPa)."""
        kpa = batch["pressure"]
        b, n = kpa.shape[:2]
        c = self.config
        with self._grad(c.train_codec):
            # resize in kPa (area average), then normalise: measured to lose less than resizing
            # the normalised map (benchmarks/bench_model.py, codec floor)
            small = resize_maps(kpa.float().reshape(b * n, 1, *kpa.shape[-2:]), c.uv_size)
            z = self.targets.encode(small)
        return {"target_latents": z.reshape(b, n, *z.shape[1:]).float()}

    def encode_conditions(self, batch: dict) -> dict:
        """Outputs of the frozen encoders: {"clip_embeds": (B, N, D), "depth_latents": (B, N, C, h, w)}.

        ``depth_latents`` only in ``cond_space="image"`` with ``use_depth``.
        """
        c = self.config
        rgb = batch["rgb"]
        b, n = rgb.shape[:2]
        out = {}
        with self._grad(c.train_image_encoder):
            emb = self.image_encoder(rgb.flatten(0, 1))
        out["clip_embeds"] = emb.reshape(b, n, -1).float()
        if c.cond_space == "image" and c.use_depth:
            depth = batch["depth"]
            with self._grad(c.train_codec):
                z = self.codec.encode(resize_maps(depth.flatten(0, 1).float(), c.uv_size))
            out["depth_latents"] = z.reshape(b, n, *z.shape[1:]).float()
        return out

    def prepare_conditions(self, batch: dict) -> dict:
        """Everything the denoiser needs that does not change over sampling steps."""
        c = self.config
        needed = ["clip_embeds"] + (["depth_latents"] if c.cond_space == "image" and c.use_depth else [])
        frozen = {k: batch[k] for k in needed if k in batch}
        if len(frozen) < len(needed):
            frozen = {**self.encode_conditions(batch), **frozen}
        clip = frozen["clip_embeds"]
        b, n = clip.shape[:2]
        device = clip.device
        h, w = self.latent_size
        prep = {"image_tokens": clip.unsqueeze(2), "vertex_tokens": None, "vertex_uv": None, "pose_features": None}
        if self.vertex_encoder is not None:
            image = vertex_px = None
            if self.vertex_encoder.image_features > 0:  # image evidence at every vertex (vertex_encoder.py)
                missing = [k for k in ("rgb", "depth", "depth_valid", "vertex_px") if k not in batch]
                if missing:
                    raise DataError(f"the Vertex Encoder samples image features but the batch has no {missing}")
                depth = batch["depth"] if c.use_depth else torch.zeros_like(batch["depth"])
                valid = batch["depth_valid"] if c.use_depth else torch.zeros_like(batch["depth_valid"])
                image = torch.cat([batch["rgb"], depth, valid], dim=2).to(device)
                vertex_px = batch["vertex_px"].to(device)
            prep["vertex_tokens"] = self.vertex_encoder.tokens(batch["vertices"].to(device), image,
                                                               vertex_px)  # (B, N, T, D)
            prep["vertex_uv"] = self.vertex_encoder.token_uv  # (T, 2) for region tokens, else None
        if c.cond_space == "image":
            if c.use_depth:
                prep["cond_latents"] = frozen["depth_latents"]
            else:
                prep["cond_latents"] = torch.zeros(b, n, self.latent_channels, h, w, device=device)
            pose_in = batch.get("pose_map") if c.use_posenet else None
        else:
            if "uv_cond" not in batch:
                raise DataError("the model uses UV-space conditioning but the batch has no 'uv_cond' "
                                "(build the ClipDataset with uv_conditioning=True)")
            uv = batch["uv_cond"].to(device).float()
            if not c.use_depth:
                uv = uv.clone()
                uv[:, :, UV_COND_OBSERVED_DEPTH] = 0
            z = self.uv_encoder(uv.flatten(0, 1), (h, w))
            prep["cond_latents"] = z.reshape(b, n, *z.shape[1:])
            pose_in = uv
        if self.posenet is not None and pose_in is not None:
            prep["pose_features"] = self.posenet(pose_in.to(device).float().flatten(0, 1), latent_size=(h, w))
        tid = torch.tensor(c.added_time_ids, dtype=torch.float32, device=device)
        prep["added_time_ids"] = tid.unsqueeze(0).expand(b, -1)
        return prep

    # ------------------------------------------------------------------ diffusion
    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, prep: dict) -> torch.Tensor:
        """D(x; sigma) for latents (B, N, C, h, w) and sigma (B,)."""
        b = x.shape[0]
        sigma = sigma.reshape(-1).expand(b).to(x.device, torch.float32)
        c_skip, c_out, c_in, c_noise = self.scheduler.precondition(sigma)
        s = (-1, 1, 1, 1, 1)
        inp = torch.cat([x * c_in.view(s), prep["cond_latents"].to(x.dtype)], dim=2)
        f = self.denoiser(inp, c_noise, prep["image_tokens"], prep["added_time_ids"],
                          vertex_tokens=prep["vertex_tokens"], pose_features=prep["pose_features"],
                          vertex_uv=prep.get("vertex_uv"))
        return c_skip.view(s) * x + c_out.view(s) * f.float()

    def training_loss(self, batch: dict) -> torch.Tensor:
        """EDM loss of one batch; uses cached ``target_latents`` / ``clip_embeds`` / ``depth_latents`` if present.

        Noise and sigmas come from torch's global RNG (so RNG checkpointing reproduces training).
        """
        z = batch["target_latents"] if "target_latents" in batch else self.encode_targets(batch)["target_latents"]
        z = z.float()
        prep = self.prepare_conditions(batch)
        sigma = self.scheduler.sample_training_sigmas(z.shape[0], device=z.device)
        noise = torch.randn_like(z)
        den = self.denoise(z + sigma.view(-1, 1, 1, 1, 1) * noise, sigma, prep)
        mask = latent_mask(batch["uv_mask"].to(z.device), self.latent_size) if self.config.use_uv_mask_weight else None
        return edm_loss(z, den, sigma, mask, self.scheduler.preconditioning, self.scheduler.config.loss_weighting)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.training_loss(batch)

    def decode_to_kpa(self, z: torch.Tensor, uv_mask: torch.Tensor | None) -> torch.Tensor:
        """Latents (B, N, C, h, w) -> (B, N, 224, 224) kPa, clipped at 0, masked by ``uv_mask`` (B, 224, 224)."""
        b, n = z.shape[:2]
        out_size = 224 if uv_mask is None else uv_mask.shape[-1]
        kpa = resize_maps(self.targets.decode(z.flatten(0, 1), num_frames=n), out_size).clamp(min=0)
        kpa = kpa.reshape(b, n, out_size, out_size)
        if uv_mask is not None:
            kpa = kpa * uv_mask.to(kpa.device).float().unsqueeze(1)
        return kpa


def _load_component(module: nn.Module, directory: Path, name: str) -> None:
    """Weights of one component: ``<name>/diffusion_pytorch_model.safetensors``, or the flat layout's
    ``<name>.safetensors`` (where the U-Net file holds the diffusers U-Net inside our wrapper)."""
    from safetensors.torch import load_model

    path, target = directory / name / WEIGHTS_NAME, module
    if not path.is_file() and (directory / f"{name}.safetensors").is_file():
        path = directory / f"{name}.safetensors"
        target = module.unet if name == "unet" else module
    if not path.is_file():
        raise CheckpointError(f"checkpoint {directory} lacks {name}/{WEIGHTS_NAME}")
    try:
        load_model(target, str(path), strict=True)
    except Exception as e:  # safetensors raises several types on corrupt / mismatching files
        raise CheckpointError(f"cannot load {path}: {' '.join(str(e).split())[:300]}") from e
