import pytest
import torch
from torch import nn

from egopressdiff.models.posenet import ConditionEncoder, PoseNet


def test_output_at_latent_resolution_and_width():
    net = PoseNet(3, 32, downsample_factor=4, channels=(16, 32))
    out = net(torch.rand(2, 3, 64, 64))
    assert out.shape == (2, 32, 16, 16)
    # an input of another size is resized to the latent grid first
    assert net(torch.rand(2, 3, 48, 40), latent_size=(16, 16)).shape == (2, 32, 16, 16)
    assert PoseNet(7, 320, 8, (16, 32, 64, 128))(torch.rand(1, 7, 64, 64)).shape == (1, 320, 8, 8)


def test_only_conv_and_silu_gaussian_init_zero_final():
    torch.manual_seed(0)
    net = PoseNet(3, 32, 4, (16, 32))
    kinds = {type(m) for m in net.modules()} - {PoseNet, nn.Sequential}
    assert kinds == {nn.Conv2d, nn.SiLU}
    assert torch.count_nonzero(net.final.weight) == 0 and torch.count_nonzero(net.final.bias) == 0
    w = net.body[2].weight  # 16 -> 16 conv, fan_in 144: He-normal std sqrt(2/144)
    assert abs(w.std().item() - (2 / 144) ** 0.5) < 0.02
    assert abs(w.mean().item()) < 0.01
    # untrained: adds exactly nothing, whatever the pose map
    assert torch.count_nonzero(net(torch.rand(2, 3, 64, 64))) == 0


def test_gradient_reaches_the_zero_conv_and_after_a_step_the_body():
    torch.manual_seed(0)
    net = PoseNet(3, 8, 2, (8,))
    x = torch.rand(2, 3, 16, 16)
    target = torch.randn(2, 8, 8, 8)
    loss = (net(x) - target).pow(2).mean()
    loss.backward()
    assert net.final.weight.grad.abs().sum() > 0
    assert net.body[0].weight.grad.abs().sum() == 0  # blocked by the zero conv at init
    torch.optim.SGD(net.parameters(), lr=0.1).step()
    net.zero_grad()
    (net(x) - target).pow(2).mean().backward()
    assert net.body[0].weight.grad.abs().sum() > 0


def test_condition_encoder_is_not_zero():
    enc = ConditionEncoder(7, 16, 4, (16, 32))
    out = enc(torch.rand(2, 7, 64, 64))
    assert out.shape == (2, 16, 16, 16) and out.abs().sum() > 0


def test_rejects_non_power_of_two():
    with pytest.raises(ValueError):
        PoseNet(3, 8, 3)
