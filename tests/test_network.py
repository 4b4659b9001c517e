"""The generator's W+ API: shapes, truncation, noise modes, gradients and config validation."""

import pytest
import torch
from pydantic import ValidationError

from stylediscover.generators import Generator, GeneratorConfig


def small(resolution: int = 32, **kwargs) -> Generator:
    torch.manual_seed(0)
    config = GeneratorConfig.from_channel_base(resolution, channel_base=256, channel_max=32, z_dim=16, w_dim=16,
                                               mapping_layers=2, **kwargs)
    return Generator(config).eval()


@pytest.mark.parametrize("resolution, num_ws", [(8, 4), (32, 8), (64, 10)])
def test_shapes(resolution, num_ws):
    g = small(resolution)
    ws = g.mapping(torch.randn(3, 16))
    assert g.num_ws == num_ws and ws.shape == (3, num_ws, 16)
    assert g.synthesis(ws).shape == (3, 3, resolution, resolution)


def test_ffhq_config_sizes():
    config = GeneratorConfig.from_channel_base(1024)
    assert config.num_ws == 18
    assert config.channels[4] == 512 and config.channels[1024] == 32


def test_truncation_with_cutoff():
    g = small()
    g.mapping.w_avg.normal_()
    z = torch.randn(2, 16)
    full, trunc = g.mapping(z), g.mapping(z, truncation_psi=0.5, truncation_cutoff=3)
    expected = g.mapping.w_avg + 0.5 * (full[:, :3] - g.mapping.w_avg)
    torch.testing.assert_close(trunc[:, :3], expected)
    torch.testing.assert_close(trunc[:, 3:], full[:, 3:])
    torch.testing.assert_close(g.mapping(z, truncation_psi=0.0), g.mapping.w_avg.expand_as(full))


def test_noise_modes():
    g = small()
    for module in g.modules():
        if hasattr(module, "noise_strength"):
            module.noise_strength.data.fill_(0.5)
    ws = g.mapping(torch.randn(2, 16))
    with torch.no_grad():
        const_a, const_b = g.synthesis(ws, "const"), g.synthesis(ws, "const")
        rand_a, rand_b = g.synthesis(ws, "random"), g.synthesis(ws, "random")
        none = g.synthesis(ws, "none")
    torch.testing.assert_close(const_a, const_b)
    assert not torch.allclose(rand_a, rand_b)
    assert not torch.allclose(none, const_a)


def test_gradients_reach_every_layer_of_w_plus():
    g = small()
    ws = g.mapping(torch.randn(2, 16)).detach().requires_grad_(True)
    g.synthesis(ws).square().mean().backward()
    assert ws.grad is not None and (ws.grad.abs().sum(dim=(0, 2)) > 0).all()


def test_w_avg_tracking():
    g = small()
    z = torch.randn(64, 16)
    g.mapping(z, update_w_avg=True)
    expected = (1 - g.config.w_avg_beta) * g.mapping(z)[:, 0].mean(0)
    torch.testing.assert_close(g.mapping.w_avg, expected)


@pytest.mark.parametrize("bad, field", [
    (dict(resolution=48, channels={}), "resolution"),
    (dict(resolution=16, channels={4: 8, 8: 8}), "channels"),
    (dict(resolution=16, channels={4: 8, 8: 8, 16: 8}, z_dim=0), "z_dim"),
])
def test_config_validation_names_field(bad, field):
    with pytest.raises(ValidationError, match=field):
        GeneratorConfig(**bad)
