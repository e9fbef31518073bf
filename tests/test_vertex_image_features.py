"""Image evidence at every vertex (vertex_encoder.image_features): the Vertex Encoder samples a small CNN's
features of the hand crop where each vertex projects, so image-space models get the image -> UV correspondence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from egopressdiff.errors import ConfigError, DataError
from egopressdiff.models import EgoPressDiff
from egopressdiff.models.config import EgoPressDiffConfig
from egopressdiff.models.testing import make_dummy_batch
from egopressdiff.models.vertex_encoder import VertexEncoder


def _image_model(**kw):
    cfg = EgoPressDiffConfig.preset("tiny")
    ve = {**cfg.vertex_encoder, "image_features": 8}
    return EgoPressDiff.from_config("tiny", clip_length=2, cond_space="image", vertex_encoder=ve, **kw)


def test_features_are_sampled_exactly_where_each_vertex_projects():
    enc = VertexEncoder(32, point_channels=(16, 32), tokens="per_vertex", regions=16, image_features=5)
    enc.image_net = nn.Identity()  # the crop itself as the features: sampling is all that is left
    s = 9
    image = torch.rand(1, 2, 5, s, s)
    cols = torch.randint(0, s, (1, 2, 778))
    rows = torch.randint(0, s, (1, 2, 778))
    px = torch.stack([cols, rows], dim=-1).float() / (s - 1) * 2 - 1  # pixel centres, as the processor writes
    got = enc.sample_image(image, px)  # (1, 2, 778, 5)
    want = image[0][torch.arange(2)[:, None], :, rows[0], cols[0]]  # (2, 778, 5)
    torch.testing.assert_close(got[0], want)
    half = enc.sample_image(image, px + torch.tensor([1.0 / (s - 1), 0.0]))  # half a pixel to the right
    assert not torch.allclose(half, got)


def test_the_processor_gives_each_vertex_its_place_in_the_crop(tmp_path):
    """Sampling the registered depth crop at ``vertex_px`` gives back the depth of every visible vertex."""
    from egopressdiff.data.clips import ClipDataset
    from egopressdiff.data.processor import DEPTH_SCALE_M
    from egopressdiff.data.reader import EgoPressureReader
    from egopressdiff.data.synth import Imperfections, generate_dataset

    generate_dataset(tmp_path, participants=1, sequences=1, frames=6, seed=2, image_size=(320, 240),
                     imperfections=Imperfections.none(), progress=False)
    ds = ClipDataset(tmp_path, clip_length=2, stride=2, crop_size=96)
    item = ds[0]
    px = item["vertex_px"].numpy()
    assert px.shape == (2, 778, 2) and np.abs(px).max() < 1.0  # the crop holds the whole hand, with a margin
    enc = VertexEncoder(32, point_channels=(16, 32), image_features=5)
    enc.image_net = nn.Identity()
    image = torch.cat([item["rgb"], item["depth"], item["depth_valid"]], dim=1)[None]
    sampled = enc.sample_image(image, item["vertex_px"][None])[0]  # (2, 778, 5)
    z = item["vertices"][..., 2]
    d_ref = z.median()
    reader = EgoPressureReader(tmp_path)
    p, s = item["participant"], item["sequence"]
    for i, f in enumerate(item["frame"].tolist()):
        vis = reader.load_annotation(p, s, int(f)).visible_vertices[0] > 0
        ok = vis & (sampled[i, :, 4].numpy() > 0.999)  # visible, with measured depth all around
        assert ok.sum() > 50
        want = ((z[i] - d_ref) / DEPTH_SCALE_M).numpy()[ok]
        err = np.abs(sampled[i, ok, 3].numpy() - want) * DEPTH_SCALE_M
        assert np.median(err) < 0.004  # within a few mm (the depth sensor's own resolution)
        # a wrong correspondence (the crop flipped) does not
        flipped = enc.sample_image(image.flip(-1), item["vertex_px"][None])[0]
        err_f = np.abs(flipped[i, ok, 3].numpy() - want) * DEPTH_SCALE_M
        assert np.median(err_f) > 2 * np.median(err)


def test_gradients_reach_the_image_features_once_the_gates_open():
    torch.manual_seed(3)
    model = _image_model()
    assert model.vertex_encoder.image_features == 8
    for blk in model.denoiser.dc_blocks:
        blk.vtx_gate.data.fill_(0.1)
    b = make_dummy_batch(1, 2)
    model.training_loss(b).backward()
    ve = model.vertex_encoder
    assert ve.image_proj.weight.grad.abs().sum() > 0
    assert ve.image_net[0].weight.grad.abs().sum() > 0
    # the tokens do depend on what the crop shows
    with torch.no_grad():
        p1 = model.prepare_conditions(b)["vertex_tokens"]
        p2 = model.prepare_conditions({**b, "rgb": 1 - b["rgb"]})["vertex_tokens"]
    assert (p1 - p2).abs().max() > 1e-4


def test_a_batch_without_vertex_positions_is_a_clear_error():
    model = _image_model()
    b = make_dummy_batch(1, 2)
    del b["vertex_px"]
    with pytest.raises(DataError, match="vertex_px"):
        model.prepare_conditions(b)


def test_saved_configs_without_the_key_load_with_no_image_features(tmp_path):
    model = EgoPressDiff.from_config("tiny", clip_length=2)
    d = model.config.to_dict()
    d["_class_name"] = "EgoPressDiff"
    del d["vertex_encoder"]["image_features"]
    cfg = EgoPressDiffConfig.from_dict(d)
    assert cfg.vertex_encoder["image_features"] == 0
    assert EgoPressDiff(cfg).vertex_encoder.image_features == 0


def test_encoder_caching_refuses_image_features():
    from egopressdiff.training.cache import check_cacheable

    with pytest.raises(ConfigError, match="image_features"):
        check_cacheable(_image_model())


def test_vertex_gate_init_opens_the_vertex_branch_from_the_start(tmp_path):
    """vertex_gate_init 0 (default) leaves the output independent of the mesh at init (from_svd parity);
    a non-zero start makes the vertex branch count from the first step, and loading keeps the saved gates."""
    b = make_dummy_batch(1, 2)
    x = torch.randn(1, 2, 16, 14, 14)
    sigma = torch.tensor([0.5])
    moved = {**b, "vertices": b["vertices"] + 0.02 * torch.randn_like(b["vertices"])}
    for init, changes in ((0.0, False), (1.0, True)):
        torch.manual_seed(0)
        model = EgoPressDiff.from_config("tiny", clip_length=2, vertex_gate_init=init).eval()
        assert all(torch.all(blk.vtx_gate == init) for blk in model.denoiser.dc_blocks)
        with torch.no_grad():
            d = (model.denoise(x, sigma, model.prepare_conditions(b))
                 - model.denoise(x, sigma, model.prepare_conditions(moved))).abs().max()
        assert (d > 1e-5) == changes, (init, float(d))
    for blk in model.denoiser.dc_blocks:
        blk.vtx_gate.data.fill_(0.3)  # "trained"
    model.save_pretrained(tmp_path / "m")
    back = EgoPressDiff.from_pretrained(tmp_path / "m")
    assert all(torch.allclose(blk.vtx_gate, torch.tensor(0.3)) for blk in back.denoiser.dc_blocks)
    with pytest.raises(ConfigError, match="vertex_gate_init"):
        EgoPressDiff.from_config("tiny", vertex_gate_init=float("nan"))
