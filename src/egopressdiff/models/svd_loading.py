"""Build EgoPressDiff around a local, diffusers-format Stable Video Diffusion folder.

Expected layout (what ``StableVideoDiffusionPipeline.save_pretrained`` writes, or a snapshot of
``stabilityai/stable-video-diffusion-img2vid-xt`` the user downloaded themselves)::

    <svd_dir>/unet/              UNetSpatioTemporalConditionModel   (config.json + *.safetensors)
    <svd_dir>/vae/               AutoencoderKLTemporalDecoder
    <svd_dir>/image_encoder/     CLIPVisionModelWithProjection
    <svd_dir>/feature_extractor/ CLIPImageProcessor (preprocessor_config.json: mean / std)

Nothing is fetched from the network (``local_files_only``) and only safetensors weights are
read (``use_safetensors=True``), so no pickle is ever loaded. The new parts start neutral: the
PoseNet's final conv and the DC blocks' vertex gates are zero, so before training the U-Net
computes what the SVD U-Net computed (for identical image tokens in every frame).
"""

from __future__ import annotations

from pathlib import Path

from egopressdiff.errors import CheckpointError, MissingAssetError
from egopressdiff.models.clip_encoder import clip_config_dict
from egopressdiff.models.config import EgoPressDiffConfig

SUBFOLDERS = ("unet", "vae", "image_encoder", "feature_extractor")
_PRIVATE = ("_class_name", "_diffusers_version", "_name_or_path", "_use_default_values")


def _diffusers_config(model) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(model.config).items()
            if not k.startswith("_")}


def from_svd(cls, svd_dir, variant: str | None = None, **overrides):
    """``cls(config, unet=..., vae=..., clip_model=...)`` from the SVD folder; ``overrides`` are config fields."""
    import torch
    from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    root = Path(svd_dir)
    if not root.is_dir():
        raise MissingAssetError(f"SVD folder {root} does not exist")
    missing = [s for s in SUBFOLDERS if not (root / s).is_dir()]
    if missing:
        raise MissingAssetError(f"SVD folder {root} lacks {', '.join(s + '/' for s in missing)}")
    kw = {"local_files_only": True, "use_safetensors": True, "torch_dtype": torch.float32}
    try:
        unet = UNetSpatioTemporalConditionModel.from_pretrained(root / "unet", variant=variant, **kw)
        vae = AutoencoderKLTemporalDecoder.from_pretrained(root / "vae", variant=variant, **kw)
    except (OSError, ValueError) as e:
        raise CheckpointError(f"cannot load the SVD U-Net/VAE from {root} (safetensors weights required): {e}") from e
    try:
        clip = CLIPVisionModelWithProjection.from_pretrained(root / "image_encoder", variant=variant, **kw)
        proc = CLIPImageProcessor.from_pretrained(root / "feature_extractor", local_files_only=True)
    except (OSError, ValueError) as e:
        raise CheckpointError(f"cannot load the SVD image encoder from {root} (safetensors weights required): "
                              f"{e}") from e

    cfg = EgoPressDiffConfig.preset("svd").to_dict()
    cfg["unet"] = _diffusers_config(unet)
    vae_cfg = _diffusers_config(vae)
    cfg["codec"] = {"type": "vae", "vae": vae_cfg}
    cfg["clip"] = clip_config_dict(clip)
    cfg["clip_image_mean"] = [float(v) for v in proc.image_mean]
    cfg["clip_image_std"] = [float(v) for v in proc.image_std]
    cfg.update(overrides)
    config = EgoPressDiffConfig.from_dict(cfg)
    return cls(config, unet=unet, vae=vae, clip_model=clip)
