import torch
from diffusers.models.attention import BasicTransformerBlock

from egopressdiff.models.dc_spatial import DCSpatialBlock, FrameContext, calibrate, swap_in_dc_spatial_blocks

DIM, D = 32, 24


def _block(calib=True, seed=0):
    torch.manual_seed(seed)
    base = BasicTransformerBlock(DIM, 2, DIM // 2, cross_attention_dim=D)
    ctx = FrameContext()
    return base, DCSpatialBlock(base, ctx, calibrate=calib), ctx


def test_calibrated_vertex_output_carries_image_statistics_per_token_over_channels():
    torch.manual_seed(0)
    z_img = torch.randn(6, 10, DIM) * 3 + 1.5
    z_vtx = torch.randn(6, 10, DIM) * 0.05 - 2  # a different scale and offset
    out = calibrate(z_vtx, z_img, eps=1e-12)
    var, mean = torch.var_mean(z_img, dim=-1, correction=0)
    torch.testing.assert_close(out.mean(-1), mean, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out.std(-1, correction=0), var.sqrt(), atol=1e-3, rtol=1e-3)
    # the direction of each token comes from the vertex branch
    cos = torch.nn.functional.cosine_similarity(out - mean[..., None], z_vtx - z_vtx.mean(-1, keepdim=True), dim=-1)
    assert cos.min() > 0.999


def test_single_token_branch_is_constant_over_positions_yet_keeps_gradient():
    # one token per frame: each cross-attention output is the same at every position (the trap);
    # statistics over channels stay informative and pass gradients to the vertex branch
    z_img = torch.randn(2, 1, DIM).expand(2, 16, DIM)
    z_vtx = torch.randn(2, 1, DIM, requires_grad=True)
    out = calibrate(z_vtx.expand(2, 16, DIM), z_img)
    assert torch.allclose(out.std(dim=1), torch.zeros(2, DIM), atol=1e-6)  # constant over positions
    assert out.std(dim=-1).min() > 0.1  # but not over channels
    (out * torch.randn_like(out)).sum().backward()
    assert z_vtx.grad.abs().sum() > 0


def test_all_zero_branch_is_well_defined():
    z_vtx = torch.zeros(3, 4, DIM, requires_grad=True)
    z_img = torch.randn(3, 4, DIM)
    out = calibrate(z_vtx, z_img)
    torch.testing.assert_close(out, z_img.mean(-1, keepdim=True).expand_as(out))
    (out * torch.randn_like(out)).sum().backward()
    assert torch.isfinite(z_vtx.grad).all() and z_vtx.grad.abs().sum() > 0


def test_zero_variance_branches_have_finite_gradients():
    # constant over channels (variance 0) in the image branch, all-zero vertex branch: the square
    # roots of both variances would have infinite derivatives without eps inside them
    eps = 1e-5
    z_img = torch.full((3, 4, DIM), 0.7, requires_grad=True)
    z_vtx = torch.randn(3, 4, DIM, requires_grad=True)
    out = calibrate(z_vtx, z_img, eps=eps)
    normed = torch.nn.functional.layer_norm(z_vtx.detach(), (DIM,), eps=eps)
    torch.testing.assert_close(out.detach(), 0.7 + eps**0.5 * normed)
    (out * torch.randn_like(out)).sum().backward()
    assert torch.isfinite(z_img.grad).all() and torch.isfinite(z_vtx.grad).all()
    assert z_img.grad.abs().sum() > 0 and z_vtx.grad.abs().sum() > 0
    zero_vtx = torch.zeros(3, 4, DIM, requires_grad=True)
    flat_img = torch.full((3, 4, DIM), -1.0, requires_grad=True)
    (calibrate(zero_vtx, flat_img, eps=eps) * torch.randn(3, 4, DIM)).sum().backward()
    assert torch.isfinite(zero_vtx.grad).all() and torch.isfinite(flat_img.grad).all()


def test_untrained_dc_block_equals_original_block():
    base, dc, ctx = _block()
    base_copy = BasicTransformerBlock(DIM, 2, DIM // 2, cross_attention_dim=D)
    base_copy.load_state_dict({k: v for k, v in dc.state_dict().items() if not k.startswith(("attn_vtx", "vtx_"))})
    h = torch.randn(4, 9, DIM)
    img = torch.randn(4, 1, D)
    vtx = torch.randn(4, 1, D)
    with ctx.use(img, vtx):
        out = dc(h)
    torch.testing.assert_close(out, base_copy(h, encoder_hidden_states=img), atol=1e-6, rtol=1e-6)
    # without a context it falls back to the encoder_hidden_states diffusers passes
    torch.testing.assert_close(dc(h, encoder_hidden_states=img), out, atol=1e-6, rtol=1e-6)


def test_gradients_reach_vertex_cross_attention_after_the_gate_opens():
    _, dc, ctx = _block()
    h = torch.randn(4, 9, DIM)
    img, target = torch.randn(4, 1, D), torch.randn(4, 9, DIM)
    vtx = torch.randn(4, 1, D, requires_grad=True)

    def loss():
        with ctx.use(img, vtx):
            return (dc(h) - target).pow(2).mean()

    loss().backward()
    assert dc.vtx_gate.grad.abs().sum() > 0  # the gate learns from step one
    torch.optim.SGD([dc.vtx_gate], lr=1.0).step()
    assert dc.vtx_gate.abs().sum() > 0
    dc.zero_grad()
    vtx.grad = None
    loss().backward()
    grads = [p.grad for p in dc.attn_vtx.parameters()]
    assert all(g is not None for g in grads)
    assert dc.attn_vtx.to_v.weight.grad.abs().sum() > 0 and dc.attn_vtx.to_out[0].weight.grad.abs().sum() > 0
    assert vtx.grad.abs().sum() > 0


def test_plain_sum_without_calibration():
    _, dc, ctx = _block(calib=False)
    with torch.no_grad():
        dc.vtx_gate.fill_(0.5)
    h = torch.randn(2, 5, DIM)
    img, vtx = torch.randn(2, 1, D), torch.randn(2, 1, D)
    with ctx.use(img, vtx):
        out = dc(h)
    h1 = dc.attn1(dc.norm1(h)) + h
    n = dc.norm2(h1)
    h2 = dc.attn2(n, encoder_hidden_states=img) + 0.5 * dc.attn_vtx(n, encoder_hidden_states=vtx) + h1
    torch.testing.assert_close(out, dc.ff(dc.norm3(h2)) + h2, atol=1e-6, rtol=1e-6)


def test_frame_f_does_not_depend_on_frame_g_tokens():
    _, dc, ctx = _block()
    with torch.no_grad():
        dc.vtx_gate.normal_()
    h = torch.randn(3, 9, DIM)  # B*N = 3 frames
    img, vtx = torch.randn(3, 1, D), torch.randn(3, 1, D)
    with ctx.use(img, vtx):
        ref = dc(h)
    img2, vtx2 = img.clone(), vtx.clone()
    img2[2] += 5.0
    vtx2[2] -= 5.0
    with ctx.use(img2, vtx2):
        out = dc(h)
    torch.testing.assert_close(out[:2], ref[:2], atol=0, rtol=0)
    assert (out[2] - ref[2]).abs().max() > 1e-3


def test_swap_replaces_only_spatial_blocks_and_keeps_weights():
    from diffusers import UNetSpatioTemporalConditionModel
    from diffusers.models.attention import TemporalBasicTransformerBlock

    torch.manual_seed(0)
    unet = UNetSpatioTemporalConditionModel(
        sample_size=8, in_channels=8, out_channels=4, block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"), layers_per_block=1,
        cross_attention_dim=D, num_attention_heads=(2, 4), addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=24)
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    n_spatial = sum(isinstance(m, BasicTransformerBlock) and not isinstance(m, TemporalBasicTransformerBlock)
                    for m in unet.modules())
    n_temporal = sum(isinstance(m, TemporalBasicTransformerBlock) for m in unet.modules())
    blocks = swap_in_dc_spatial_blocks(unet, FrameContext())
    assert len(blocks) == n_spatial == 4  # down 1, mid 1, up 2 (layers_per_block + 1)
    assert sum(isinstance(m, TemporalBasicTransformerBlock) for m in unet.modules()) == n_temporal
    assert not any(type(m) is BasicTransformerBlock for m in unet.modules())
    after = unet.state_dict()
    for k, v in before.items():  # the diffusers keys and weights are untouched
        assert torch.equal(after[k], v)
    assert {k for k in after if k not in before} and all(".attn_vtx." in k or k.endswith("vtx_gate")
                                                         for k in after if k not in before)
