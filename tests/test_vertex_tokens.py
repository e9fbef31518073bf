"""Per-vertex (UV region) vertex tokens and the spatially selective vertex cross-attention."""

import copy

import pytest
import torch
from diffusers.models.attention import BasicTransformerBlock

from egopressdiff.data.hand import synthetic_atlas
from egopressdiff.models import EgoPressDiff
from egopressdiff.models.dc_spatial import DCSpatialBlock, FrameContext, latent_uv, uv_distance_bias
from egopressdiff.models.testing import make_dummy_batch
from egopressdiff.models.vertex_encoder import VertexEncoder, uv_regions
from egopressdiff.pipelines import EgoPressDiffPipeline

DIM, D = 32, 24


def test_regions_cover_every_vertex_and_sit_at_their_centres():
    atlas = synthetic_atlas("right")
    weights, centres = uv_regions(atlas, 64)
    assert weights.shape == (64, 778) and centres.shape == (64, 2)
    assert (weights.sum(1) == pytest.approx(1.0)) and ((weights > 0).sum(0) >= 1).all()
    # a region's vertices have UV points near its centre (nearer than the other centres)
    v2uv = {}
    for f in range(len(atlas.faces)):
        for i in range(3):
            v2uv.setdefault(int(atlas.faces[f, i]), set()).add(tuple(atlas.uvs[atlas.uv_faces[f, i]]))
    for k in (0, 17, 63):
        members = (weights[k] > 0).nonzero()[0]
        d_own = min(((torch.tensor(list(v2uv[int(v)])) - torch.tensor(centres[k])) ** 2).sum(1).min() for v in members)
        assert d_own < 1e-2


def test_region_tokens_are_local_and_carry_their_uv():
    torch.manual_seed(0)
    enc = VertexEncoder(64, point_channels=(32, 64), tokens="per_vertex", regions=32).eval()
    v = torch.randn(1, 3, 778, 3) * 0.05 + 0.4
    ref = enc.tokens(v)
    assert ref.shape == (1, 3, 32, 64) and enc.token_uv.shape == (32, 2)
    # move only region 5's vertices: its token changes more than any token far away in UV
    members = enc.region_weights[5] > 0
    v2 = v.clone()
    v2[:, :, members] += torch.randn(int(members.sum()), 3) * 0.01
    change = (enc.tokens(v2) - ref).norm(dim=-1).mean(dim=(0, 1))
    far = (enc.token_uv - enc.token_uv[5]).norm(dim=-1) > 0.3
    assert change[5] > 2 * change[far].max()
    # the same vertex features at two UV places give two different tokens: the UV embedding
    assert (enc.uv_embed(torch.zeros(1, enc.uv_embed.in_features)).norm() > 0)
    with pytest.raises(ValueError, match="778"):
        enc.tokens(torch.randn(1, 2, 100, 3))


def test_latent_grid_uv_follows_the_egopressure_convention():
    uv = latent_uv(4)  # 2 x 2 grid, row-major; row 0 is the top of the map (v = 1)
    torch.testing.assert_close(uv, torch.tensor([[0.25, 0.75], [0.75, 0.75], [0.25, 0.25], [0.75, 0.25]]))
    tokens = torch.tensor([[0.25, 0.25], [0.75, 0.75]])
    bias = uv_distance_bias(4, tokens, torch.tensor(1.0))
    assert bias.shape == (4, 2) and bias[2].argmax() == 0 and bias[1].argmax() == 1
    assert bias.max() == 0 and bias.min() < 0
    with pytest.raises(ValueError, match="square"):
        latent_uv(6)


def _attention_weights(block, h, tokens, token_uv):
    """Softmax weights (rows, heads, HW, K) of the block's vertex cross-attention."""
    attn = block.attn_vtx
    n = block.norm2(block.attn1(block.norm1(h)) + h)
    q = attn.to_q(n).unflatten(-1, (attn.heads, -1)).transpose(1, 2)
    k = attn.to_k(tokens).unflatten(-1, (attn.heads, -1)).transpose(1, 2)
    logits = q @ k.transpose(-1, -2) * attn.scale + uv_distance_bias(h.shape[1], token_uv, block.vtx_locality)
    return logits.softmax(-1)


def test_a_query_learns_to_attend_to_the_vertices_at_its_uv_position():
    # toy: four vertex tokens at four places of a 6 x 6 latent grid; the target is what the same
    # block computes with sharp locality (a teacher). The student starts with no locality (beta = 0)
    # and an open gate; a few Adam steps must make a query at a token's UV position attend to
    # that token more than to the farthest one.
    torch.manual_seed(0)
    ctx = FrameContext()
    student = DCSpatialBlock(BasicTransformerBlock(DIM, 2, DIM // 2, cross_attention_dim=D), ctx,
                             spatial_vertex=True)
    with torch.no_grad():
        student.vtx_gate.fill_(1.0)
        student.vtx_locality.zero_()
    teacher = copy.deepcopy(student)
    teacher.context = ctx
    with torch.no_grad():
        teacher.vtx_locality.fill_(20.0)
    token_uv = torch.tensor([[0.15, 0.2], [0.8, 0.3], [0.3, 0.85], [0.75, 0.7]])
    h, tokens, img = torch.randn(8, 36, DIM), torch.randn(8, 4, D), torch.randn(8, 1, D)
    with torch.no_grad(), ctx.use(img, tokens, token_uv):
        target = teacher(h)
    pos = latent_uv(36)
    near = [int(((pos - t) ** 2).sum(1).argmin()) for t in token_uv]  # the query at each token's place
    far = [int(((token_uv - t) ** 2).sum(1).argmax()) for t in token_uv]  # the token farthest from it

    def selectivity():
        with torch.no_grad():
            w = _attention_weights(student, h, tokens, token_uv).mean(dim=(0, 1))  # (HW, K)
        return min(float(w[near[i], i] / w[near[i], far[i]]) for i in range(4))

    before = selectivity()
    opt = torch.optim.Adam(student.parameters(), lr=0.05)
    for _ in range(40):
        opt.zero_grad()
        with ctx.use(img, tokens, token_uv):
            loss = (student(h) - target).pow(2).mean()
        loss.backward()
        opt.step()
    after = selectivity()
    assert student.vtx_locality.item() > 0.3
    assert after > 2.0 and after > 2 * before, (before, after)


def test_untrained_spatial_block_equals_the_original_block():
    torch.manual_seed(0)
    base = BasicTransformerBlock(DIM, 2, DIM // 2, cross_attention_dim=D)
    ref = copy.deepcopy(base)
    ctx = FrameContext()
    dc = DCSpatialBlock(base, ctx, spatial_vertex=True)
    h, img = torch.randn(3, 16, DIM), torch.randn(3, 1, D)
    with ctx.use(img, torch.randn(3, 5, D), torch.rand(5, 2)):
        out = dc(h)
    torch.testing.assert_close(out, ref(h, encoder_hidden_states=img), atol=1e-6, rtol=1e-6)


def test_per_vertex_model_trains_uses_the_bias_and_round_trips(tmp_path):
    torch.manual_seed(0)
    model = EgoPressDiff.from_config("tiny", clip_length=2)
    assert model.config.vertex_tokens == "per_vertex" and model.vertex_encoder.token_uv.shape == (64, 2)
    b = make_dummy_batch(1, 2)
    with torch.no_grad():
        for blk in model.denoiser.dc_blocks:
            blk.vtx_gate.fill_(0.5)
    model.training_loss(b).backward()
    assert all(blk.vtx_locality.grad.abs() > 0 for blk in model.denoiser.dc_blocks)
    assert model.vertex_encoder.uv_embed.weight.grad.abs().sum() > 0
    # the UV bias is part of the prediction: without the token positions the output changes
    prep = model.prepare_conditions(b)
    x = torch.randn(1, 2, model.latent_channels, *model.latent_size)
    with torch.no_grad():
        with_uv = model.denoise(x, torch.tensor([0.5]), prep)
        without = model.denoise(x, torch.tensor([0.5]), {**prep, "vertex_uv": None})
    assert (with_uv - without).abs().max() > 1e-4
    out = EgoPressDiffPipeline(model).sample(b, num_inference_steps=2, seed=0)["pressure_kpa"]
    model.save_pretrained(tmp_path / "m")
    loaded = EgoPressDiff.from_pretrained(tmp_path / "m")
    assert loaded.config.vertex_tokens == "per_vertex"
    assert torch.equal(loaded.vertex_encoder.region_weights, model.vertex_encoder.region_weights)
    torch.testing.assert_close(EgoPressDiffPipeline(loaded).sample(b, num_inference_steps=2, seed=0)["pressure_kpa"], out, atol=1e-4, rtol=1e-4)


def test_pooled_option_is_the_papers_single_token():
    model = EgoPressDiff.from_config("tiny", clip_length=2, vertex_tokens="pooled")
    assert model.vertex_encoder.token_uv is None
    assert not any(hasattr(blk, "vtx_locality") for blk in model.denoiser.dc_blocks)
    prep = model.prepare_conditions(make_dummy_batch(1, 2))
    assert prep["vertex_tokens"].shape[2] == 1 and prep["vertex_uv"] is None
