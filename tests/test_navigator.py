"""Navigator: every direction parameterisation × attention trains; shapes and normalisations hold."""

import itertools

import pytest
import torch

from stylediscover.navigator import Navigator, NavigatorConfig, gaussian_kernel, unit_rms

K, L, D = 5, 6, 16
DIRECTIONS = ["free", "pca", "adaptive", "fixed"]
ATTENTIONS = ["none", "softmax", "softmax_t", "cumax", "adaptive"]


def make(direction: str, attention: str, **kwargs) -> Navigator:
    torch.manual_seed(0)
    cfg = NavigatorConfig(num_directions=K, direction=direction, attention=attention, pca_dim=4, hidden=8, **kwargs)
    basis = {"pca": torch.linalg.qr(torch.randn(D, 4))[0], "fixed": torch.randn(K, D)}.get(direction)
    return Navigator(cfg, L, D, basis)


@pytest.mark.parametrize("direction, attention", list(itertools.product(DIRECTIONS, ATTENTIONS)))
def test_every_combination_trains(direction, attention):
    nav = make(direction, attention)
    ws = torch.randn(3, L, D)
    k = torch.tensor([0, 4, 2])
    deltas = nav(ws, k)
    assert deltas.shape == (3, L, D)
    torch.testing.assert_close(deltas, nav.all_deltas(ws)[torch.arange(3), k])
    params = list(nav.parameters())
    if direction == "fixed" and attention == "none":
        assert not params
        return
    before = [p.detach().clone() for p in params]
    opt = torch.optim.Adam(params, lr=0.1)
    loss = (deltas * torch.randn_like(deltas)).sum()
    loss.backward()
    opt.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, nav.parameters()))


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_directions_have_unit_rms(direction):
    u = make(direction, "softmax").directions(torch.randn(2, L, D))
    torch.testing.assert_close(u.square().mean(-1), torch.ones(u.shape[:-1]), atol=1e-5, rtol=0)


@pytest.mark.parametrize("attention", ["softmax", "softmax_t", "none"])
def test_attention_rows_sum_to_one_without_output_smoothing(attention):
    a = make("free", attention, smoothing="logits").attention()
    assert a.shape == (K, L)
    torch.testing.assert_close(a.sum(-1), torch.ones(K))


def test_cumax_is_a_band_in_unit_interval():
    a = make("free", "cumax").attention()
    assert ((a >= 0) & (a <= 1)).all()


def test_temperature_sharpens_attention():
    soft = make("free", "softmax_t", attention_temperature=5.0, smooth_kernel=0).attention()
    sharp = make("free", "softmax_t", attention_temperature=0.2, smooth_kernel=0).attention()
    assert sharp.amax(-1).mean() > soft.amax(-1).mean()


def test_gaussian_smoothing_of_logits():
    nav = make("free", "softmax", smooth_kernel=3, smooth_sigma=1.0, smoothing="logits")
    kernel = gaussian_kernel(3, 1.0)
    logits = nav.logits.detach()
    padded = torch.cat([logits[:, :1], logits, logits[:, -1:]], dim=1)
    smoothed = sum(kernel[i] * padded[:, i:i + L] for i in range(3))
    torch.testing.assert_close(nav.attention(), smoothed.softmax(-1))


def test_authors_smoothing_of_the_softmax_output_by_hand():
    """The authors' form on a one-hot row: kernel 3, σ 1 is (e^-1/2, 1, e^-1/2) / (1 + 2e^-1/2) = (0.274, 0.452,
    0.274); reflect padding mirrors layer 1 to the left of layer 0, so a row peaked at layer 1 becomes
    (0.548, 0.452, 0.274, 0, 0, 0), summing to 1.27, and one peaked at layer 0 (0.452, 0.274, 0, ...), summing to
    0.73: no layer exceeds 0.55."""
    nav = make("free", "softmax", smooth_kernel=3, smooth_sigma=1.0)
    with torch.no_grad():
        nav.logits.fill_(-1e4)
        nav.logits[0, 1] = 0.0
        nav.logits[1, 0] = 0.0
    side, centre = 0.60653066 / (1 + 2 * 0.60653066), 1 / (1 + 2 * 0.60653066)
    a = nav.attention()
    torch.testing.assert_close(a[0], torch.tensor([2 * side, centre, side, 0, 0, 0]))
    torch.testing.assert_close(a[1], torch.tensor([centre, side, 0, 0, 0, 0]))
    general = make("free", "softmax").attention()
    assert general.amax() <= 2 * side + 1e-6 and not torch.allclose(general.sum(-1), torch.ones(K))


def test_unit_rms():
    x = torch.randn(4, 10) * 7
    torch.testing.assert_close(unit_rms(x).square().mean(-1), torch.ones(4), atol=1e-6, rtol=0)


def test_config_rejects_even_kernel():
    with pytest.raises(ValueError, match="odd"):
        NavigatorConfig(smooth_kernel=2)


def test_layer_bands_fix_each_directions_layers_by_hand():
    bands = [(0, 6), (0, 2), (2, 5), (5, 6), (1, 2)]
    nav = make("fixed", "none", layer_bands=bands)
    expected = torch.tensor([[1 / 6] * 6, [0.5, 0.5, 0, 0, 0, 0], [0, 0, 1 / 3, 1 / 3, 1 / 3, 0],
                             [0, 0, 0, 0, 0, 1.0], [0, 1.0, 0, 0, 0, 0]])
    torch.testing.assert_close(nav.attention(), expected)
    deltas = nav.all_deltas(torch.randn(2, L, D))
    assert deltas[:, 1, 2:].abs().max() == 0 and deltas[:, 1, :2].abs().min() > 0


@pytest.mark.parametrize("changes, message", [
    ({"attention": "softmax"}, "needs attention 'none'"),
    ({"layer_bands": [(0, 2)] * 4}, "4 bands for 5 directions"),
    ({"layer_bands": [(3, 3)] * 5}, "0 <= start < stop"),
])
def test_config_rejects_bad_layer_bands(changes, message):
    with pytest.raises(ValueError, match=message):
        NavigatorConfig(num_directions=K, **({"attention": "none", "layer_bands": [(0, 1)] * K} | changes))


def test_layer_bands_past_the_generators_layers_are_refused():
    with pytest.raises(ValueError, match="past the generator's 6 W\\+ layers"):
        make("fixed", "none", layer_bands=[(0, 7)] * K)
