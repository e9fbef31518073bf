import json
import pickle

import pytest
import torch

from egopressdiff.errors import CheckpointError, ConfigError, DataError
from egopressdiff.models import EgoPressDiff, EgoPressDiffConfig
from egopressdiff.models.codecs import (
    PixelUnshuffleCodec,
    denormalize_pressure,
    normalize_pressure,
)
from egopressdiff.models.testing import make_dummy_batch
from egopressdiff.pipelines import EgoPressDiffPipeline


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return EgoPressDiff.from_config("tiny", clip_length=2)


def test_config_presets_roundtrip_and_unknown_keys(tmp_path):
    for name in ("tiny", "svd"):
        cfg = EgoPressDiffConfig.preset(name)
        assert EgoPressDiffConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    svd = EgoPressDiffConfig.preset("svd")
    assert svd.clip_length == 16 and "training" not in svd.to_dict()  # training facts: the run config's
    assert svd.unet["block_out_channels"] == [320, 640, 1280, 1280] and svd.clip["projection_dim"] == 1024
    with pytest.raises(ConfigError, match="bogus"):
        EgoPressDiffConfig.from_dict({"bogus": 1})
    # config.json of older versions carried a training entry: ignored on load
    assert EgoPressDiffConfig.from_dict({"training": {"lr": 1e-3}, "use_depth": False}).use_depth is False
    with pytest.raises(ConfigError):
        EgoPressDiffConfig.preset("huge")
    with pytest.raises(ConfigError):
        EgoPressDiffConfig.from_dict({"cond_space": "voxels"})
    p = tmp_path / "m.json"
    p.write_text(json.dumps({"name": "tiny", "use_depth": False}))
    assert EgoPressDiff.from_config(p).config.use_depth is False


def test_pressure_normalisation_is_invertible_on_0_to_pmax():
    kpa = torch.linspace(0, 200, 20001, dtype=torch.float64)
    y = normalize_pressure(kpa, 2.0, 200.0)
    assert y.min() == -1 and y.max() == 1 and (y.diff() > 0).all()  # strictly increasing
    torch.testing.assert_close(denormalize_pressure(y, 2.0, 200.0), kpa, atol=1e-9, rtol=1e-9)
    assert normalize_pressure(torch.tensor([500.0]), 2.0, 200.0).item() == 1.0  # clipped above p_max


def test_tiny_codec_is_exact_and_the_uv_resize_floor_is_small(tiny):
    codec = PixelUnshuffleCodec(4)
    x = torch.rand(3, 1, 56, 56) * 2 - 1
    z = codec.encode(x)
    assert z.shape == (3, 16, 14, 14)
    assert torch.equal(codec.decode(z), x)
    # the model's own target path: 224 -> 56 (kPa, area) -> codec -> 56 -> 224 (kPa, bilinear)
    b = make_dummy_batch(2, 2)
    back = tiny.decode_to_kpa(tiny.encode_targets(b)["target_latents"], b["uv_mask"])
    mae = (back - b["pressure"]).abs().mean().item()
    assert 0 < mae < 0.1, mae
    # at full resolution the only loss left is float rounding of the normalisation
    full = EgoPressDiff.from_config("tiny", clip_length=2, uv_size=224, unet={**tiny.config.unet, "sample_size": 56})
    back = full.decode_to_kpa(full.encode_targets(b)["target_latents"], b["uv_mask"])
    assert (back - b["pressure"]).abs().max() < 1e-3


def test_shapes_end_to_end_and_masked_non_negative_output(tiny):
    b = make_dummy_batch(2, 2)
    loss = tiny.training_loss(b)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in tiny.denoiser.unet.parameters())
    tiny.zero_grad()
    out = EgoPressDiffPipeline(tiny).sample(b, num_inference_steps=2, seed=0, num_samples=2)
    assert out["pressure_kpa"].shape == (2, 2, 224, 224) and out["pressure_kpa"].dtype == torch.float32
    assert out["pressure_std_kpa"].shape == (2, 2, 224, 224)
    assert (out["pressure_kpa"] >= 0).all()
    assert (out["pressure_kpa"][:, :, b["uv_mask"][0] == 0] == 0).all()
    assert "pressure_std_kpa" not in EgoPressDiffPipeline(tiny).sample(b, num_inference_steps=1)
    assert tiny.data_requirements() == {"clip_length": 2, "crop_size": 64, "uv_conditioning": False,
                                        "uv_cond_size": 56}


def test_same_seed_same_sample_other_seed_differs(tiny):
    b = make_dummy_batch(1, 2)
    a = EgoPressDiffPipeline(tiny).sample(b, num_inference_steps=2, seed=3)["pressure_kpa"]
    assert torch.equal(a, EgoPressDiffPipeline(tiny).sample(b, num_inference_steps=2, seed=3)["pressure_kpa"])
    assert not torch.equal(a, EgoPressDiffPipeline(tiny).sample(b, num_inference_steps=2, seed=4)["pressure_kpa"])


def test_posenet_at_init_changes_nothing(tiny):
    b = make_dummy_batch(1, 2)
    prep = tiny.prepare_conditions(b)
    assert prep["pose_features"] is not None
    x, sigma = torch.randn(1, 2, 16, 14, 14), torch.tensor([1.3])
    with torch.no_grad():
        with_pose = tiny.denoise(x, sigma, prep)
        without = tiny.denoise(x, sigma, {**prep, "pose_features": None})
        assert torch.equal(with_pose, without)
        tiny.posenet.final.bias.add_(0.1)  # a trained PoseNet does change the output
        try:
            changed = tiny.denoise(x, sigma, tiny.prepare_conditions(b))
        finally:
            tiny.posenet.final.bias.sub_(0.1)
    assert (changed - without).abs().max() > 1e-4


def test_gradients_reach_vertex_branch_and_encoder_after_one_step():
    torch.manual_seed(1)
    model = EgoPressDiff.from_config("tiny", clip_length=2)
    params = model.trainable_parameters()
    clip_ids = {id(p) for p in model.image_encoder.parameters()}
    assert params and not any(id(p) in clip_ids for p in params)
    assert not any(p.requires_grad for p in model.image_encoder.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    b = make_dummy_batch(1, 2)
    model.training_loss(b).backward()
    gates = [blk.vtx_gate for blk in model.denoiser.dc_blocks]
    assert all(g.grad.abs().sum() > 0 for g in gates)
    opt.step()
    opt.zero_grad()
    model.training_loss(b).backward()
    for blk in model.denoiser.dc_blocks:
        assert blk.attn_vtx.to_v.weight.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.vertex_encoder.parameters())


def test_cached_frozen_outputs_give_the_same_loss_without_running_encoders(tiny, monkeypatch):
    b = make_dummy_batch(1, 2)
    torch.manual_seed(7)
    ref = tiny.training_loss(b)
    cached = {**b, **tiny.encode_conditions(b), **tiny.encode_targets(b)}
    assert cached["clip_embeds"].shape == (1, 2, 64) and cached["target_latents"].shape == (1, 2, 16, 14, 14)
    assert cached["depth_latents"].shape == (1, 2, 16, 14, 14)

    def boom(*a, **k):
        raise AssertionError("frozen encoder ran")

    monkeypatch.setattr(tiny.image_encoder, "forward", boom)
    monkeypatch.setattr(tiny.codec, "encode", boom)
    torch.manual_seed(7)
    torch.testing.assert_close(tiny.training_loss(cached), ref)


def test_save_and_load_give_identical_outputs_and_never_unpickle(tiny, tmp_path, monkeypatch):
    b = make_dummy_batch(1, 2)
    ref = EgoPressDiffPipeline(tiny).sample(b, num_inference_steps=2, seed=1)["pressure_kpa"]
    out_dir = tiny.save_pretrained(tmp_path / "ckpt")
    names = sorted(p.name for p in out_dir.iterdir())
    # diffusers' layout: one folder per component (+ the scheduler); the weightless codec has only a config
    assert names == ["codec", "config.json", "image_encoder", "posenet", "scheduler", "unet", "vertex_encoder"]
    assert json.loads((out_dir / "config.json").read_text())["model_type"] == "egopressdiff"
    for name in ("image_encoder", "posenet", "unet", "vertex_encoder"):
        assert (out_dir / name / "diffusion_pytorch_model.safetensors").is_file()
    assert not (out_dir / "codec" / "diffusion_pytorch_model.safetensors").exists()
    assert (out_dir / "scheduler" / "scheduler_config.json").is_file()
    # each component is a diffusers ModelMixin that reloads on its own, with the same weights
    from egopressdiff.models.posenet import PoseNet
    from egopressdiff.models.unet import ConditionedUNet

    for cls, name in ((PoseNet, "posenet"), (ConditionedUNet, "unet")):
        alone = cls.from_pretrained(out_dir / name)
        mine = getattr(tiny, "denoiser" if name == "unet" else name).state_dict()
        assert alone.state_dict().keys() == mine.keys()
        assert all(torch.equal(alone.state_dict()[k], v) for k, v in mine.items())

    def no_pickle(*a, **k):
        raise AssertionError("unpickling attempted")

    monkeypatch.setattr(pickle, "load", no_pickle)
    monkeypatch.setattr(pickle, "loads", no_pickle)
    monkeypatch.setattr(torch, "load", no_pickle)
    loaded = EgoPressDiff.from_pretrained(out_dir)
    assert torch.equal(EgoPressDiffPipeline(loaded).sample(b, num_inference_steps=2, seed=1)["pressure_kpa"], ref)
    # errors: missing file, wrong type, not a checkpoint
    (out_dir / "posenet" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="posenet"):
        EgoPressDiff.from_pretrained(out_dir)
    cfg = json.loads((out_dir / "config.json").read_text())
    cfg["_class_name"] = "UNet2DModel"
    (out_dir / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="UNet2DModel"):
        EgoPressDiff.from_pretrained(out_dir)
    with pytest.raises(CheckpointError):
        EgoPressDiff.from_pretrained(tmp_path / "nothing")


def test_flat_layout_of_earlier_checkpoints_still_loads(tiny, tmp_path):
    """Checkpoints saved before the component folders (``<component>.safetensors`` beside config.json,
    the U-Net file holding the bare diffusers U-Net) load with the same weights."""
    from safetensors.torch import save_model

    b = make_dummy_batch(1, 2)
    ref = EgoPressDiffPipeline(tiny).sample(b, num_inference_steps=2, seed=1)["pressure_kpa"]
    flat = tmp_path / "flat"
    flat.mkdir()
    meta = {"_class_name": "EgoPressDiff", "model_type": "egopressdiff", **tiny.config.to_dict()}
    (flat / "config.json").write_text(json.dumps(meta))
    for name, module in tiny.components().items():
        if module is not None and module.state_dict():
            save_model(module.unet if name == "unet" else module, str(flat / f"{name}.safetensors"))
    loaded = EgoPressDiff.from_pretrained(flat)
    assert torch.equal(EgoPressDiffPipeline(loaded).sample(b, num_inference_steps=2, seed=1)["pressure_kpa"], ref)


@pytest.mark.parametrize("switch", [
    {"use_depth": False}, {"use_vertices": False}, {"use_dc_calibration": False}, {"use_posenet": False},
    {"use_uv_mask_weight": False}, {"cond_space": "uv"}, {"cond_space": "uv", "use_depth": False},
    {"edm": {"sampler": "heun", "loss_weighting": "none"}},
])
def test_ablation_switches_run(switch):
    torch.manual_seed(0)
    model = EgoPressDiff.from_config("tiny", clip_length=2, **switch)
    b = make_dummy_batch(1, 2, uv_cond_size=56)
    loss = model.training_loss(b)
    assert torch.isfinite(loss)
    loss.backward()
    out = EgoPressDiffPipeline(model).sample(b, num_inference_steps=1)
    assert out["pressure_kpa"].shape == (1, 2, 224, 224)
    if switch.get("use_vertices") is False:
        assert model.vertex_encoder is None
    if switch.get("use_posenet") is False:
        assert model.posenet is None
    if switch.get("cond_space") == "uv":
        assert model.data_requirements()["uv_conditioning"] is True
        b.pop("uv_cond")
        with pytest.raises(DataError, match="uv_cond"):
            model.training_loss(b)


def test_uv_mask_weighting_changes_the_loss():
    torch.manual_seed(0)
    model = EgoPressDiff.from_config("tiny", clip_length=2)
    b = make_dummy_batch(1, 2)
    torch.manual_seed(5)
    weighted = model.training_loss(b)
    model.config.use_uv_mask_weight = False
    torch.manual_seed(5)
    plain = model.training_loss(b)
    assert weighted > plain * 1.2  # (1 + M)^2 = 4 on the hand cells


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    model = EgoPressDiff.from_config("tiny", clip_length=2)
    with torch.no_grad():
        for blk in model.denoiser.dc_blocks:
            blk.vtx_gate.normal_()
    b = make_dummy_batch(1, 2)

    def grads():
        model.zero_grad()
        torch.manual_seed(3)
        model.training_loss(b).backward()
        return [p.grad.clone() for p in model.vertex_encoder.parameters()]

    ref = grads()
    model.denoiser.enable_gradient_checkpointing()
    got = grads()
    for r, g in zip(ref, got):
        torch.testing.assert_close(g, r, atol=1e-5, rtol=1e-4)
    assert sum(g.abs().sum() for g in got) > 0


def test_svd_config_instantiates_on_meta_and_reports_counts():
    # 2.3 B parameters: built on the meta device so the test needs no 9 GB of RAM; the
    # architecture (and so the counts) is the same as with random weights.
    model = EgoPressDiff.from_config("svd", device="meta")
    counts = model.parameter_counts()
    assert counts["unet"] - counts["unet_dc_added"] == 1_524_623_082  # the SVD-XT U-Net
    assert counts["image_encoder"] > 600_000_000 and counts["codec"] > 90_000_000
    assert counts["trainable"] == counts["unet"] + counts["posenet"] + counts["vertex_encoder"]
    assert model.latent_size == (28, 28) and model.latent_channels == 4


def test_output_floor_zeroes_low_residue_only():
    """``output_floor_kpa`` sets values below the floor to 0 and leaves the rest unchanged."""
    import torch

    from egopressdiff.models import EgoPressDiff
    from egopressdiff.models.testing import make_dummy_batch

    torch.manual_seed(0)
    model = EgoPressDiff.from_config("tiny", clip_length=2)
    batch = make_dummy_batch(1, 2, crop_size=model.config.crop_size)
    raw = EgoPressDiffPipeline(model).sample(batch, num_inference_steps=2, seed=3)["pressure_kpa"]
    floor = float(raw[raw > 0].median())  # a floor inside the untrained model's output range
    model.config.output_floor_kpa = floor
    floored = EgoPressDiffPipeline(model).sample(batch, num_inference_steps=2, seed=3)["pressure_kpa"]
    keep = raw >= floor
    assert torch.equal(floored[keep], raw[keep])
    assert torch.all(floored[~keep] == 0)
    assert (raw[~keep] > 0).any()  # the floor removed something real
