"""EgoPressDiffConfig: every size and switch of the model, with the presets ``tiny`` and ``svd``.

One code path serves both presets; they differ only in numbers:

* ``tiny`` -- CPU-sized (trains in minutes on 2 cores). UV maps are handled at 56x56
  internally; its target codec is an exactly invertible pixel-unshuffle (space-to-depth,
  factor 4: 16 latent channels at 14x14) instead of a trained VAE, and its
  CLIP is a small *randomly initialised, frozen* ``CLIPVisionModelWithProjection``: its
  image embeddings are random (but fixed) features of the RGB crop, not semantic ones.
* ``svd`` -- the paper's size: SVD-XT U-Net (block_out_channels 320/640/1280/1280,
  cross-attention 1024), the SVD ``AutoencoderKLTemporalDecoder`` and CLIP ViT-H/14 with a
  1024-d projection; 16 frames (how it is trained is the run preset ``svd``'s business). Real
  weights come from a local SVD folder through :meth:`EgoPressDiff.from_svd`; ``from_config("svd")`` gives random weights.

Nested dictionaries (``unet``, ``codec``, ``clip``) hold the keyword arguments of the
diffusers / transformers classes, so a model built around an SVD folder can be rebuilt
from its saved ``config.json`` alone.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from egopressdiff.errors import ConfigError

# OpenAI CLIP normalisation (CLIPImageProcessor's defaults, also what SVD's feature_extractor uses).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# SVD's constants (what the models shipped before the zero-centred targets were trained with).
SVD_EDM: dict[str, Any] = {
    # sigma_data of EDM; SVD's v-parameterisation is EDM with sigma_data = 1.
    "sigma_data": 1.0,
    # SVD fine-tuning recipes sample log(sigma) ~ N(0.7, 1.6^2).
    "p_mean": 0.7,
    "p_std": 1.6,
    # Sign of c_out. SVD was trained with c_out = -sigma*sigma_d/sqrt(sigma^2+sigma_d^2)
    # (diffusers' EulerDiscreteScheduler, v_prediction); keeping -1 lets pretrained SVD
    # weights start from the parameterisation they were trained with.
    "c_out_sign": -1.0,
    # "edm": lambda(sigma) = (sigma^2+sigma_d^2)/(sigma*sigma_d)^2; "none": lambda = 1.
    "loss_weighting": "edm",
    # Karras schedule for sampling.
    "sigma_min": 0.002,
    "sigma_max": 80.0,
    "rho": 7.0,
    "sampler": "euler",  # "euler" | "heun"
}

# tiny: measured, not SVD's. `python scripts/target_stats.py --config tiny-uv --data DATA` on the
# synthetic benchmark (`egopressdiff synth DATA --participants 8 --sequences 8 --frames 64 --seed 1`),
# training participants p_001-p_005, 2,240 frames, zero-centred targets: mean 0.011, std 0.081,
# RMS 0.0815, max |z| 1.67, 94% exact zeros. sigma_data = the RMS; sigma_max = 2.5 x max |z|,
# sigma_min = sigma_data / 50, p_mean = ln sigma_data, p_std = ln(sigma_max / sigma_min) / 5
# (the reasons: egopressdiff.diffusion.target_stats). SVD's sigma_data = 1 is 12x this RMS: at
# sigma ~ 1 its c_out is ~0.7, so the network's output errors reach the denoised estimate ~9x
# larger than with the matched value (c_out <= sigma_data).
TINY_EDM: dict[str, Any] = {**SVD_EDM, "sigma_data": 0.081, "p_mean": -2.5, "p_std": 1.6,
                            "sigma_min": 0.0016, "sigma_max": 4.2}

# svd: PROVISIONAL. SVD's VAE weights are not on this project's machines, so its latents of
# pressure maps could not be measured. These apply the same rules to a guess: the tiny codec's
# figures times ~2, the latent/pixel gain SVD's VAE scaling factor gives natural images (unit
# latent std for pixel std ~0.5): sigma_data ~0.16, max |z| ~3.3. Measure before training at
# this size: `python scripts/target_stats.py --config svd --pretrained-svd SVD_DIR --data DATA`
# prints the --set flags. Kept from SVD: c_out_sign (the pretrained U-Net's v-parameterisation),
# the EDM loss weighting, rho and the Euler sampler (parameterisation, not data statistics).
SVD_PRESET_EDM: dict[str, Any] = {**SVD_EDM, "sigma_data": 0.16, "p_mean": -1.8, "p_std": 1.6,
                                  "sigma_min": 0.0032, "sigma_max": 8.4}
EDM_DEFAULTS = TINY_EDM

# Keys added to the model config after models were shipped: a *saved* config.json (it carries
# ``_class_name``) that lacks one was written before it existed and loads with this value, so
# old checkpoints predict exactly as before. A config built from a preset takes the preset's.
LEGACY_VALUES: dict[str, Any] = {
    "target_transform": "legacy_minus1",
    "vertex_tokens": "pooled",
}

VERTEX_ENCODER_DEFAULTS: dict[str, Any] = {
    "point_channels": [64, 128, 256],
    "temporal_blocks": 2,
    "kernel_size": 3,
    # vertex_tokens="per_vertex": this many UV regions (tokens) per frame, from this atlas
    # ("synthetic": the built-in hand; "mano": MANO's UV layout, for real data).
    "regions": 64,
    "uv_atlas": "synthetic",
    # channels of image evidence sampled where each vertex projects into the hand crop (0: none;
    # models/vertex_encoder.py) -- the image -> UV correspondence for cond_space="image"
    "image_features": 0,
}

TINY_UNET: dict[str, Any] = {
    "sample_size": 14,
    "in_channels": 32,
    "out_channels": 16,
    "down_block_types": ["CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"],
    "up_block_types": ["UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"],
    "block_out_channels": [32, 64],
    "addition_time_embed_dim": 16,
    "projection_class_embeddings_input_dim": 48,
    "layers_per_block": 1,
    "cross_attention_dim": 64,
    "transformer_layers_per_block": 1,
    "num_attention_heads": [2, 4],
    "num_frames": 16,
}

# SVD-XT (stabilityai/stable-video-diffusion-img2vid-xt) U-Net; num_frames only documents the clip length.
SVD_UNET: dict[str, Any] = {
    "sample_size": 96,
    "in_channels": 8,
    "out_channels": 4,
    "down_block_types": ["CrossAttnDownBlockSpatioTemporal"] * 3 + ["DownBlockSpatioTemporal"],
    "up_block_types": ["UpBlockSpatioTemporal"] + ["CrossAttnUpBlockSpatioTemporal"] * 3,
    "block_out_channels": [320, 640, 1280, 1280],
    "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 768,
    "layers_per_block": 2,
    "cross_attention_dim": 1024,
    "transformer_layers_per_block": 1,
    "num_attention_heads": [5, 10, 20, 20],
    "num_frames": 16,
}

SVD_VAE: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "latent_channels": 4,
    "sample_size": 768,
    "scaling_factor": 0.18215,
    "force_upcast": True,
}

# CLIP ViT-H/14 vision tower with 1024-d projection (SVD's image_encoder).
SVD_CLIP: dict[str, Any] = {
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "projection_dim": 1024,
    "num_hidden_layers": 32,
    "num_attention_heads": 16,
    "num_channels": 3,
    "image_size": 224,
    "patch_size": 14,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-5,
}

TINY_CLIP: dict[str, Any] = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "projection_dim": 64,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_channels": 3,
    "image_size": 32,
    "patch_size": 8,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-5,
}


@dataclass
class EgoPressDiffConfig:
    """All sizes, switches and hyper-parameters of an EgoPressDiff model (see module doc)."""

    name: str = "tiny"
    clip_length: int = 16
    crop_size: int = 64
    # Internal pixel resolution of the UV-pressure maps: 224x224 maps (kPa) are area-resized to
    # uv_size before encoding and bilinearly resized back after decoding (a no-op at 224).
    # tiny: 56 = 224/4 (exact 4x4 pooling; measured round-trip floor lower than at 64).
    uv_size: int = 56
    # "image": depth latents + pose map in image space (the paper); "uv": batch["uv_cond"]
    # (image inputs unwrapped to UV space) encoded to latent resolution (ours).
    cond_space: str = "image"
    uv_cond_size: int = 56
    uv_cond_channels: int = 7
    # Ablation switches.
    use_depth: bool = True
    use_vertices: bool = True
    use_dc_calibration: bool = True
    use_posenet: bool = True
    use_uv_mask_weight: bool = True
    # Pressure normalisation: y = clip(log1p(kPa/s)/log1p(p_max/s), 0, 1)*2-1 (models/codecs.py).
    pressure_scale_kpa: float = 2.0
    pressure_max_kpa: float = 200.0
    # Target latents: "zero_centered" (zero pressure = latent 0) or "legacy_minus1" (background -1;
    # models shipped before the change). models/codecs.py, PressureTargets.
    target_transform: str = "zero_centered"
    # Vertex tokens of the DC layers' vertex cross-attention: "pooled" (the paper: one token per
    # frame, no spatial selectivity) or "per_vertex" (region tokens with their UV position, which
    # each latent position attends to by UV distance; models/vertex_encoder.py, dc_spatial.py).
    vertex_tokens: str = "per_vertex"
    # DC spatial layer: eps of the per-token channel statistics.
    dc_eps: float = 1e-5
    # Initial value of the DC layers' per-channel vertex gates. 0 (default) keeps a pretrained SVD
    # U-Net exactly where it was (from_svd parity); a U-Net trained from scratch has nothing to keep,
    # and with a zero gate the vertex branch gets a gradient only through the gate itself (measured:
    # the gates stayed at |g| ~ 0.01 in 1,500 CPU steps), so a non-zero start lets it be used at once.
    vertex_gate_init: float = 0.0
    # SVD's added time ids (fps-1, motion_bucket_id, noise_aug_strength): fixed values, since
    # the product has no use for the knobs; these are SVD's usual inference defaults.
    added_time_ids: list = field(default_factory=lambda: [6.0, 127.0, 0.02])
    unet: dict = field(default_factory=lambda: copy.deepcopy(TINY_UNET))
    codec: dict = field(default_factory=lambda: {"type": "pixel_unshuffle", "factor": 4})
    clip: dict = field(default_factory=lambda: copy.deepcopy(TINY_CLIP))
    clip_image_mean: list = field(default_factory=lambda: list(CLIP_MEAN))
    clip_image_std: list = field(default_factory=lambda: list(CLIP_STD))
    posenet_channels: list = field(default_factory=lambda: [16, 32])
    uv_encoder_channels: list = field(default_factory=lambda: [32, 64])
    vertex_encoder: dict = field(default_factory=lambda: dict(VERTEX_ENCODER_DEFAULTS))
    edm: dict = field(default_factory=lambda: dict(EDM_DEFAULTS))
    sample_steps: int = 8
    # Post-processing of the final estimate: values below this many kPa are set to 0 (0 = off).
    # A small model leaves low-amplitude residue (~1-3 kPa) over the whole UV atlas, which the
    # field's 1 kPa contact threshold reads as contact; the shipped model's value is chosen on
    # the validation participants (README, "Results"), never on the test set.
    output_floor_kpa: float = 0.0
    train_codec: bool = False
    train_image_encoder: bool = False

    # ------------------------------------------------------------------ presets
    @classmethod
    def preset(cls, name: str) -> EgoPressDiffConfig:
        """The ``tiny`` or ``svd`` preset (see module doc)."""
        if name == "tiny":
            return cls()
        if name == "svd":
            edm = dict(SVD_PRESET_EDM)
            return cls(
                name="svd",
                clip_length=16,
                crop_size=256,
                uv_size=224,
                uv_cond_size=224,
                unet=copy.deepcopy(SVD_UNET),
                codec={"type": "vae", "vae": copy.deepcopy(SVD_VAE)},
                clip=copy.deepcopy(SVD_CLIP),
                posenet_channels=[16, 32, 64, 128],
                uv_encoder_channels=[64, 128, 256, 256],
                vertex_encoder={**VERTEX_ENCODER_DEFAULTS, "point_channels": [64, 128, 512], "uv_atlas": "mano"},
                vertex_tokens="pooled",  # the paper-faithful configuration (per_vertex: an option)
                edm=edm,
            )
        raise ConfigError(f"unknown model preset {name!r} (expected 'tiny' or 'svd')")

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict:
        return copy.deepcopy(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict) -> EgoPressDiffConfig:
        """Build from a dict; unknown keys (also inside ``edm``/``vertex_encoder``) raise ConfigError.

        Missing keys take the defaults of the preset named by ``data["name"]`` (``tiny`` if absent),
        except in a saved config (one with ``_class_name``), where the keys of
        :data:`LEGACY_VALUES` take their legacy values. A ``training`` entry (written by older
        versions; training settings live in the run config) is ignored.
        """
        if not isinstance(data, dict):
            raise ConfigError(f"model config must be a mapping, got {type(data).__name__}")
        if "_class_name" in data:  # a saved config: keys it lacks did not exist when it was written
            data = {**LEGACY_VALUES, **data}
        data = {k: v for k, v in data.items() if not k.startswith("_") and k != "training"}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown model config key(s): {', '.join(unknown)}")
        base_name = data.get("name", "tiny")
        try:
            base = cls.preset(base_name)
        except ConfigError:
            base = cls()
        out = base.to_dict()
        for key, value in data.items():
            if key in ("edm", "vertex_encoder"):
                if not isinstance(value, dict):
                    raise ConfigError(f"model config key {key!r} must be a mapping")
                bad = sorted(set(value) - set(out[key]))
                if bad:
                    raise ConfigError(f"unknown key(s) in model config {key!r}: {', '.join(bad)}")
                out[key].update(copy.deepcopy(value))
            else:
                out[key] = copy.deepcopy(value)
        cfg = cls(**out)
        cfg.validate()
        return cfg

    @classmethod
    def load(cls, path: str | Path) -> EgoPressDiffConfig:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError as e:
            raise ConfigError(f"model config file {path} does not exist") from e
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"cannot read model config {path}: {e}") from e
        return cls.from_dict(data)

    def replace(self, **overrides) -> EgoPressDiffConfig:
        """A copy with top-level fields replaced (unknown names raise ConfigError)."""
        data = self.to_dict()
        data.update(overrides)
        return type(self).from_dict(data)

    def validate(self) -> None:
        if self.cond_space not in ("image", "uv"):
            raise ConfigError(f"cond_space must be 'image' or 'uv', got {self.cond_space!r}")
        if self.codec.get("type") not in ("pixel_unshuffle", "vae"):
            raise ConfigError(f"codec type must be 'pixel_unshuffle' or 'vae', got {self.codec.get('type')!r}")
        if self.edm.get("sampler") not in ("euler", "heun"):
            raise ConfigError(f"edm.sampler must be 'euler' or 'heun', got {self.edm.get('sampler')!r}")
        if self.edm.get("loss_weighting") not in ("edm", "none"):
            raise ConfigError("edm.loss_weighting must be 'edm' or 'none'")
        for key in ("clip_length", "crop_size", "uv_size", "uv_cond_size", "sample_steps"):
            if int(getattr(self, key)) < 1:
                raise ConfigError(f"model config {key} must be >= 1")
        if not float(self.output_floor_kpa) >= 0:
            raise ConfigError(f"model config output_floor_kpa must be >= 0, got {self.output_floor_kpa!r}")
        if not abs(float(self.vertex_gate_init)) <= 10:
            raise ConfigError(f"model config vertex_gate_init must be a number in [-10, 10], got "
                              f"{self.vertex_gate_init!r}")
        if self.vertex_tokens not in ("pooled", "per_vertex"):
            raise ConfigError(f"vertex_tokens must be 'pooled' or 'per_vertex', got {self.vertex_tokens!r}")
        if self.vertex_encoder.get("uv_atlas") not in ("synthetic", "mano"):
            raise ConfigError(f"vertex_encoder.uv_atlas must be 'synthetic' or 'mano', got "
                              f"{self.vertex_encoder.get('uv_atlas')!r}")
        if self.target_transform not in ("zero_centered", "legacy_minus1"):
            raise ConfigError(f"target_transform must be 'zero_centered' or 'legacy_minus1', got "
                              f"{self.target_transform!r}")
        if not 0 < self.pressure_scale_kpa < self.pressure_max_kpa:
            raise ConfigError("need 0 < pressure_scale_kpa < pressure_max_kpa")
        proj = self.clip.get("projection_dim")
        cad = self.unet.get("cross_attention_dim")
        if isinstance(cad, int) and proj != cad:
            raise ConfigError(f"clip projection_dim ({proj}) must equal the U-Net cross_attention_dim ({cad})")
