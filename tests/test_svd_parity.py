"""A tiny SVD folder written with diffusers/transformers save_pretrained loads through from_svd,
and the untrained EgoPressDiff U-Net computes exactly what the vanilla diffusers U-Net computes."""

import pickle

import pytest
import torch
from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel
from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

from egopressdiff.errors import CheckpointError, MissingAssetError
from egopressdiff.models import EgoPressDiff
from egopressdiff.models.testing import make_dummy_batch
from egopressdiff.pipelines import EgoPressDiffPipeline

D = 32
OVERRIDES = dict(clip_length=2, crop_size=32, uv_size=32, uv_cond_size=32, posenet_channels=[8, 16],
                 vertex_encoder={"point_channels": [16, 32]})


def _write_svd(root, unet_safe=True):
    torch.manual_seed(0)
    unet = UNetSpatioTemporalConditionModel(
        sample_size=16, in_channels=8, out_channels=4, block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"), layers_per_block=1,
        cross_attention_dim=D, num_attention_heads=(2, 4), addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=24, num_frames=2)
    # randomise the zero-initialised parts too, so parity is not trivially 0 == 0
    with torch.no_grad():
        for p in unet.parameters():
            p.add_(0.02 * torch.randn_like(p))
    vae = AutoencoderKLTemporalDecoder(block_out_channels=(32, 32), down_block_types=("DownEncoderBlock2D",) * 2,
                                       layers_per_block=1, latent_channels=4)
    clip = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, projection_dim=D, num_hidden_layers=1, num_attention_heads=2,
        image_size=32, patch_size=8))
    unet.save_pretrained(root / "unet", safe_serialization=unet_safe)
    vae.save_pretrained(root / "vae")
    clip.save_pretrained(root / "image_encoder")
    CLIPImageProcessor(crop_size={"height": 32, "width": 32}, size={"shortest_edge": 32}).save_pretrained(
        root / "feature_extractor")
    return root


@pytest.fixture(scope="module")
def svd_dir(tmp_path_factory):
    return _write_svd(tmp_path_factory.mktemp("svd"))


@pytest.mark.parametrize("vertex_tokens", ["pooled", "per_vertex"])
def test_untrained_unet_equals_vanilla_svd_unet(svd_dir, monkeypatch, vertex_tokens):
    def no_pickle(*a, **k):
        raise AssertionError("unpickling attempted")

    monkeypatch.setattr(pickle, "load", no_pickle)
    monkeypatch.setattr(torch, "load", no_pickle)
    over = {**OVERRIDES, "vertex_tokens": vertex_tokens,
            "vertex_encoder": {**OVERRIDES["vertex_encoder"], "uv_atlas": "synthetic"}}
    model = EgoPressDiff.from_svd(svd_dir, **over)
    assert model.config.vertex_tokens == vertex_tokens
    vanilla = UNetSpatioTemporalConditionModel.from_pretrained(svd_dir / "unet", use_safetensors=True)
    assert model.latent_channels == 4 and model.latent_size == (16, 16)
    torch.manual_seed(1)
    b, n = 2, 2
    sample = torch.randn(b, n, 8, 16, 16)
    t = torch.tensor([0.3, -0.2])
    context = torch.randn(b, 1, D)
    time_ids = torch.tensor([[6.0, 127.0, 0.02]]).expand(b, -1)
    with torch.no_grad():
        ref = vanilla(sample, t, encoder_hidden_states=context, added_time_ids=time_ids).sample
        pose = model.posenet(torch.rand(b * n, 3, 32, 32), latent_size=(16, 16))
        assert pose.shape == (b * n, 32, 16, 16)
        vertex = model.vertex_encoder.tokens(torch.randn(b, n, 778, 3))  # (b, n, 1 or 64, D)
        assert vertex.shape[2] == (1 if vertex_tokens == "pooled" else 64)
        ours = model.denoiser(sample, t, context[:, None].expand(b, n, 1, D), time_ids, vertex_tokens=vertex,
                              pose_features=pose, vertex_uv=model.vertex_encoder.token_uv)
    assert ours.shape == ref.shape == (b, n, 4, 16, 16)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    # the encoders are the ones in the folder
    ref_vae = AutoencoderKLTemporalDecoder.from_pretrained(svd_dir / "vae")
    for k, v in ref_vae.state_dict().items():
        assert torch.equal(model.codec.vae.state_dict()[k], v)
    ref_clip = CLIPVisionModelWithProjection.from_pretrained(svd_dir / "image_encoder")
    x = torch.rand(3, 3, 32, 32)
    torch.testing.assert_close(model.image_encoder(x), ref_clip(pixel_values=model.image_encoder.preprocess(x)).image_embeds)


def test_svd_model_trains_predicts_and_round_trips(svd_dir, tmp_path):
    torch.manual_seed(0)
    model = EgoPressDiff.from_svd(svd_dir, **OVERRIDES)
    batch = make_dummy_batch(1, 2, crop_size=32)
    loss = model.training_loss(batch)
    loss.backward()
    assert torch.isfinite(loss)
    out = EgoPressDiffPipeline(model).sample(batch, num_inference_steps=2, seed=0)["pressure_kpa"]
    assert out.shape == (1, 2, 224, 224)
    model.save_pretrained(tmp_path / "ckpt")
    loaded = EgoPressDiff.from_pretrained(tmp_path / "ckpt")
    assert loaded.config.unet["block_out_channels"] == [32, 64]
    assert out.max() > 1.0  # zero-centred targets: the random model's sample is not all clipped to 0
    for k, v in model.state_dict().items():  # identical weights, key by key
        assert torch.equal(loaded.state_dict()[k], v), k
    # the reloaded U-Net differs from the from_svd one by ~1e-6 per output (kernel choice), which the
    # sampler carries to ~1e-4 kPa: float tolerance, not bit identity
    again = EgoPressDiffPipeline(loaded).sample(batch, num_inference_steps=2, seed=0)["pressure_kpa"]
    torch.testing.assert_close(again, out, rtol=1e-4, atol=1e-3)


def test_missing_parts_and_pickle_weights_are_refused(tmp_path):
    with pytest.raises(MissingAssetError):
        EgoPressDiff.from_svd(tmp_path / "nope")
    (tmp_path / "partial" / "unet").mkdir(parents=True)
    with pytest.raises(MissingAssetError, match="vae"):
        EgoPressDiff.from_svd(tmp_path / "partial")
    root = _write_svd(tmp_path / "pickled", unet_safe=False)  # unet as a pickle .bin
    with pytest.raises(CheckpointError, match="safetensors"):
        EgoPressDiff.from_svd(root, **OVERRIDES)
