"""score and n_discovered on hand-computed response matrices, with the authors' edge cases."""

import pytest
import torch

from stylediscover.metrics import (
    SUMMARISED,
    MetricsConfig,
    attribute_responses,
    codes,
    head_changes,
    head_responses,
    mean_changes,
    n_discovered,
    normalised,
    responses_of,
    score,
)


def test_hand_computed_case():
    r = torch.tensor([[0.8, 0.2, 0.0], [0.1, 0.5, 0.25], [0.0, 0.3, 0.6]])
    assert score(r) == pytest.approx(((1 - 0.25) + (1 - 0.5) + (1 - 0.5)) / 3)
    assert n_discovered(r) == 3


def test_every_attribute_tied_at_the_maximum_counts():
    r = torch.tensor([[0.4, 0.4, 0.1], [0.4, 0.0, 0.1]])
    assert n_discovered(r) == 2
    assert score(r) == pytest.approx(((1 - 1.0) + (1 - 0.25)) / 2)


def test_a_direction_without_response_is_nan_and_counts_for_nothing():
    r = torch.tensor([[0.0, 0.0, 0.0], [0.2, 0.1, 0.0]])
    assert normalised(r)[0].isnan().all()
    assert n_discovered(r) == 1
    assert score(r) == pytest.approx(0.5)
    assert score(torch.zeros(2, 3)) == 0.0 and n_discovered(torch.zeros(2, 3)) == 0


def test_only_the_first_thirty_directions_are_summarised():
    r = torch.zeros(SUMMARISED + 1, 3)
    r[:SUMMARISED, 0] = 1.0
    r[SUMMARISED] = torch.tensor([0.0, 1.0, 0.0])
    assert n_discovered(r) == 1
    assert score(r) == pytest.approx(1.0)


def test_changes_and_responses_by_hand():
    """head_changes in response units and responses_of on hand-made readings: a linear head of range 2, a hue that
    wraps across 0 (0.95 → 0.05 is +0.1 turn), a 3-class head (total variation of the mean change)."""
    from stylediscover.predictor import AttributePredictor, Head, PredictorConfig

    heads = [Head(name="size", kind="linear", low=-1.0, high=1.0), Head(name="hue", kind="hue"),
             Head(name="kind", kind="categorical", classes=("a", "b", "c"))]
    predictor = AttributePredictor(PredictorConfig(heads=heads))
    readings = {"plus": {"size": torch.tensor([0.5, 0.1]), "hue": torch.tensor([0.05, 0.30]),
                         "kind": torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])},
                "minus": {"size": torch.tensor([-0.5, 0.3]), "hue": torch.tensor([0.95, 0.20]),
                          "kind": torch.tensor([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])}}
    predictor.read = lambda raw: readings[raw]
    changes = head_changes(predictor, "plus", "minus")
    want = torch.tensor([[0.5, 0.2, 0.5, -0.5, 0.0], [-0.1, 0.2, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(changes, want)
    responses = responses_of(predictor, changes.mean(dim=0))
    torch.testing.assert_close(responses, torch.tensor([0.2, 0.2, 0.5]))  # kind: mean change (0.5, −0.5, 0) of p
    torch.testing.assert_close(head_responses(predictor, "plus", "minus"), responses)


def reference_responses(generator, navigator, k_dirs, predictor, cfg, scales):
    """The definition, one direction and one pass of all codes at a time (the code before the batched passes)."""
    z = torch.randn(cfg.samples, generator.z_dim, generator=torch.Generator().manual_seed(cfg.seed))
    ws = generator.mapping(z, truncation_psi=cfg.truncation_psi)
    rows = []
    for k in range(k_dirs):
        d = float(scales[k]) * navigator(ws, torch.full((len(ws),), k, dtype=torch.long))
        rows.append(head_responses(predictor, predictor(generator.synthesis(ws + d, noise_mode="const")),
                                   predictor(generator.synthesis(ws - d, noise_mode="const"))))
    return torch.stack(rows)


@pytest.mark.parametrize("batch, threads", [(1, 1), (5, 2), (100, 2)])
def test_batched_passes_give_the_reference_responses(tiny_world, batch, threads):
    from conftest import tiny_config

    from stylediscover.trainer import Trial

    trial = Trial(tiny_config(tiny_world, navigator={"num_directions": 3, "direction": "adaptive",
                                                     "attention": "softmax"}))
    cfg = MetricsConfig(samples=7, batch=batch, seed=3)
    scales = torch.tensor([0.5, 1.0, 2.0])
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad():
            got = attribute_responses(trial.generator, trial.navigator, 3, trial.predictor, cfg, scales)
            want = reference_responses(trial.generator, trial.navigator, 3, trial.predictor, cfg, scales)
    finally:
        torch.set_num_threads(before)
    assert torch.get_num_threads() == before
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_mean_changes_of_equal_sets_average_into_their_union(tiny_world):
    """Two sets of 5 codes: their mean changes averaged are the changes of the 10 codes in one pass, whose responses
    are head_responses' over the 10; each set's own responses are attribute_responses'."""
    from conftest import tiny_config

    from stylediscover.trainer import Trial

    trial = Trial(tiny_config(tiny_world, navigator={"num_directions": 2, "direction": "adaptive"}))
    g, p, nav = trial.generator, trial.predictor, trial.navigator
    sets = [MetricsConfig(samples=5, batch=3, seed=s) for s in (4, 9)]
    with torch.no_grad():
        averaged = torch.stack([mean_changes(g, nav, 2, p, cfg) for cfg in sets]).mean(dim=0)
        ws = g.mapping(torch.cat([codes(g.z_dim, 5, cfg.seed) for cfg in sets]), truncation_psi=0.5)
        union, responses = [], []
        for k in range(2):
            d = nav(ws, torch.full((10,), k))
            raw = p(g.synthesis(torch.cat([ws + d, ws - d]), noise_mode="const"))
            union.append(head_changes(p, raw[:10], raw[10:]).mean(dim=0))
            responses.append(head_responses(p, raw[:10], raw[10:]))
        torch.testing.assert_close(averaged, torch.stack(union), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(responses_of(p, averaged), torch.stack(responses), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(responses_of(p, mean_changes(g, nav, 2, p, sets[0])),
                                   attribute_responses(g, nav, 2, p, sets[0]))
