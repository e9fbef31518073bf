import torch

from egopressdiff.models.vertex_encoder import VertexEncoder


def _enc(**kw):
    torch.manual_seed(0)
    return VertexEncoder(64, point_channels=(32, 64), temporal_blocks=2, kernel_size=3, **kw).eval()


def test_shapes_any_vertex_count():
    enc = _enc()
    assert enc(torch.randn(2, 3, 778, 3)).shape == (2, 3, 64)
    assert enc(torch.randn(1, 5, 100, 3)).shape == (1, 5, 64)


def test_invariant_to_per_frame_translation_scale_and_vertex_order():
    enc = _enc()
    v = torch.randn(2, 4, 778, 3) * 0.05 + 0.4
    t = torch.randn(2, 4, 1, 3)
    s = torch.rand(2, 4, 1, 1) + 0.5
    ref = enc(v)
    torch.testing.assert_close(enc(v * s + t), ref, atol=2e-3, rtol=0)  # float32 rounding
    perm = torch.randperm(778)
    torch.testing.assert_close(enc(v[:, :, perm]), ref, atol=1e-5, rtol=1e-5)
    # but the shape of the hand matters
    v2 = v.clone()
    v2[..., :300, 2] += 0.1
    assert (enc(v2) - ref).abs().max() > 5e-2


def test_temporal_mixing_is_local():
    enc = _enc()
    v = torch.randn(1, 8, 200, 3)
    ref = enc(v)
    v2 = v.clone()
    v2[:, 5] = torch.randn(200, 3)
    out = enc(v2)
    diff = (out - ref).abs().amax(-1)[0]
    assert diff[4] > 1e-4 and diff[6] > 1e-4  # neighbours see frame 5
    assert diff[0] < 1e-6 and diff[1] < 1e-6  # two k=3 blocks reach +-2 frames only


def test_layernorm_output_and_gradients():
    enc = _enc()
    v = torch.randn(2, 3, 50, 3, requires_grad=True)
    out = enc(v)
    torch.testing.assert_close(out.mean(-1), torch.zeros(2, 3), atol=1e-5, rtol=0)
    (out * torch.randn_like(out)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.point_mlp.parameters())
