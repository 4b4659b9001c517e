"""score and n_discovered on hand-computed response matrices, with the authors' edge cases."""

import pytest
import torch

from stylediscover.metrics import SUMMARISED, n_discovered, normalised, score


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
