"""The held-out split (validation and test codes never coincide), robust discovery on hand-made response matrices,
and the held-out evaluation of an export."""

import json

import pytest
import torch
from click.testing import CliRunner
from conftest import tiny_config

from stylediscover.assessment import assess_heldout, assess_test_set, combine_test_sets
from stylediscover.cli import main
from stylediscover.heldout import (
    MAX_VALIDATION_SETS,
    ROBUST_MARGIN,
    factor_margins,
    heldout_seeds,
    robust_summary,
    robust_table,
    sets_needed,
    validation_seeds,
)
from stylediscover.metrics import MetricsConfig, codes, n_discovered
from stylediscover.trainer import train

NAMES = ["a", "b", "c"]


@pytest.mark.parametrize("validation_seed", [MetricsConfig().seed, 0, 1, -3, 2**40])
def test_validation_and_test_codes_never_overlap(validation_seed):
    seeds = heldout_seeds(validation_seed, 5)
    assert seeds == heldout_seeds(validation_seed, 5) and len(set(seeds)) == 5
    assert not {validation_seed, validation_seed + 1} & set(seeds)  # the validation and calibration seeds
    validation = codes(128, 200, validation_seed)
    test = torch.cat([codes(128, 1000, s) for s in seeds])
    rows = {tuple(r) for r in validation.tolist()}
    assert len({tuple(r) for r in test.tolist()}) == len(test) and not rows & {tuple(r) for r in test.tolist()}


@pytest.mark.parametrize("validation_seed", [MetricsConfig().seed, 0, -3, 2**40])
def test_validation_sets_start_at_the_validation_seed_and_never_meet_test_or_calibration_codes(validation_seed):
    every = validation_seeds(validation_seed, MAX_VALIDATION_SETS)
    assert every[0] == validation_seed and validation_seeds(validation_seed, 5) == every[:5]
    assert len(set(every)) == MAX_VALIDATION_SETS and validation_seed + 1 not in every
    assert not set(every) & set(heldout_seeds(validation_seed, 50))
    with pytest.raises(ValueError, match="validation sets must be 1 to 20"):
        validation_seeds(validation_seed, MAX_VALIDATION_SETS + 1)


def test_test_seeds_are_those_every_committed_heldout_figure_used():
    """Adding the validation stream left the test seeds as they were (evaluation/results/*.md cite these)."""
    assert heldout_seeds(12345, 5) == [4177813879, 465846854, 4109670850, 339546679, 168481453]


def test_a_validation_seed_equal_to_another_splits_test_seed_gets_other_test_seeds():
    taken = heldout_seeds(12345, 5)[0]
    assert taken not in heldout_seeds(taken, 5) and taken + 1 not in heldout_seeds(taken, 5)


def test_factor_margins_by_hand():
    r = torch.tensor([[0.8, 0.2, 0.0],    # wins a, margin 0.75
                      [0.1, 0.5, 0.5],    # ties b and c at its maximum: both discovered, margin 0
                      [0.0, 0.0, 0.0],    # no response: counts for nothing
                      [0.4, 0.0, 0.1]])   # wins a too, margin 0.75: the larger of a's winners is kept
    margins, winners = factor_margins(r)
    assert margins.tolist() == pytest.approx([0.75, 0.0, 0.0])
    assert winners.tolist() == [0, 1, 1]
    margins, winners = factor_margins(torch.tensor([[0.2, 0.1, 0.0], [0.0, 0.0, 0.0]]))
    assert margins[0] == pytest.approx(0.5) and margins[1:].isnan().all() and winners.tolist() == [0, -1, -1]


def test_discovered_margins_are_n_discovered():
    torch.manual_seed(0)
    for _ in range(50):
        r = torch.rand(6, 4) * (torch.rand(6, 1) > 0.2)
        assert int((~factor_margins(r)[0].isnan()).sum()) == n_discovered(r)


def sets_with(margin_of_a: list[float | None]) -> list[torch.Tensor]:
    """One response matrix per set: direction 0 wins a with the given margin (None: a is not won), direction 1
    wins b cleanly."""
    out = []
    for m in margin_of_a:
        first = [1.0, 1 - m, 0.0] if m is not None else [0.0, 0.0, 0.5]
        out.append(torch.tensor([first, [0.0, 1.0, 0.0]]))
    return out


def test_robust_needs_four_of_five_sets_at_the_margin():
    at = [0.25, 0.25, 0.25, 0.25, None]  # 1 − 0.75 is exactly 0.25: a margin at the threshold counts
    summary = robust_summary(sets_with(at), NAMES, margin=0.25)
    a, b, c = summary["factors"]
    assert a["share"] == pytest.approx(0.8) and a["sets_with_margin"] == 4 and a["robust"]
    assert b["robust"] and b["margins"] == [1.0] * 5 and not c["robust"] and c["share"] == pytest.approx(0.2)
    assert summary["robust_n_discovered"] == 2 and summary["robust_sets"] == 4 == sets_needed(5)
    below = robust_summary(sets_with(at), NAMES, margin=0.25 + 1e-6)["factors"][0]
    assert below["share"] == pytest.approx(0.8) and below["sets_with_margin"] == 0 and not below["robust"]
    three = robust_summary(sets_with([0.5, 0.5, 0.5, None, None]), NAMES)["factors"][0]
    assert three["sets_with_margin"] == 3 and not three["robust"]


def test_margin_at_share_and_weakest_margin_by_hand():
    """a's margins 0.6, 0.3, −, 0.2, 0.5: sorted 0.6, 0.5, 0.3, 0.2, 0 (not won), the 4th of 5 is 0.2; b's is 1;
    c is won on one set only (direction 0's row [0, 0, 0.5] there, margin 1), so its 4th is 0: the weakest."""
    summary = robust_summary(sets_with([0.6, 0.3, None, 0.2, 0.5]), NAMES)
    a, b, c = summary["factors"]
    assert a["margin_at_share"] == pytest.approx(0.2) and a["robust"] == (0.2 >= ROBUST_MARGIN)
    assert b["margin_at_share"] == 1.0 and c["margin_at_share"] == 0.0 and summary["weakest_margin"] == 0.0
    ab = robust_summary([s[:, :2] for s in sets_with([0.6, 0.3, 0.1, 0.2, 0.5])], NAMES[:2])
    assert ab["weakest_margin"] == pytest.approx(0.2) and ab["robust_n_discovered"] == 2
    for f in ab["factors"] + [a, b, c]:
        assert f["robust"] == (f["margin_at_share"] >= ROBUST_MARGIN)


def test_pooled_margins_replace_the_per_set_margins_of_validation_sets():
    """Validation: a wins 4 of 5 small sets with margin 0.4, but on their codes together its winner's runner-up
    reaches 0.9 of it: margin 0.1, not robust; b, found on every set and pooled at margin 0.5, is robust at 0.5; c,
    found on 1 set, counts 0 whatever its pooled margin."""
    pooled = torch.tensor([[1.0, 0.0, 0.9], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    per_set = sets_with([0.4, 0.4, 0.4, 0.4, None])
    summary = robust_summary(per_set, NAMES, pooled=pooled)
    a, b, c = summary["factors"]
    assert a["sets_with_margin"] == 4 and a["margin_at_share"] == pytest.approx(0.1) and not a["robust"]
    assert b["margin_at_share"] == pytest.approx(0.5) and b["robust"]
    assert c["share"] == pytest.approx(0.2) and c["margin_at_share"] == 0.0 and not c["robust"]
    assert summary["robust_n_discovered"] == 1 and summary["weakest_margin"] == 0.0
    assert robust_summary(per_set, NAMES)["factors"][0]["robust"]  # the per-set rule, as for test sets, passes a
    b_lost = robust_summary(per_set, NAMES, pooled=torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.5, 0.0]]))["factors"][1]
    assert b_lost["share"] == 1.0 and b_lost["margin_at_share"] == 0.0 and not b_lost["robust"]  # pooled: b not won
    assert not robust_summary(per_set, NAMES, margin=0.0, pooled=pooled)["factors"][2]["robust"]  # c: too few sets


def test_ties_and_silent_directions_are_not_robust():
    tied = robust_summary(sets_with([0.0] * 5), NAMES)
    assert tied["factors"][0]["share"] == 1.0 and not tied["factors"][0]["robust"]
    silent = [torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])] * 5
    summary = robust_summary(silent, NAMES)
    assert summary["factors"][0]["share"] == 0 and summary["directions"][0]["margin"] is None
    assert summary["directions"][0]["dominant"] == [None] * 5


def test_spread_over_the_sets():
    summary = robust_summary(sets_with([0.5, 0.5, None, 0.5, 0.5]), NAMES)
    assert summary["n_discovered"]["values"] == [2, 2, 2, 2, 2]  # c wins the set where a is not won
    assert summary["n_discovered"]["std"] == 0.0
    assert summary["score"]["mean"] == pytest.approx((0.5 + 1) / 2 * 0.8 + 1.0 * 0.2)
    assert summary["directions"][0]["dominant_attribute"] == "a" and summary["robust_margin"] == ROBUST_MARGIN
    table = "\n".join(robust_table(summary))
    assert "| a | 4 of 5 | 0.500, 0.500, –, 0.500, 0.500 | 0, 0, –, 0, 0 | yes |" in table
    assert "n_discovered 2.00 ± 0.00" in table


def test_heldout_evaluation_of_an_export(tiny_world, tmp_path):
    train(tiny_config(tiny_world, steps=2), tmp_path / "run")
    export = tmp_path / "run" / "directions.safetensors"
    result = assess_heldout(export, sets=2, samples=4)
    assert result["seeds"] == heldout_seeds(12345, 2) and result["validation_seed"] == 12345
    assert len(result["responses"]) == 2 and len(result["factors"]) == 6 and len(result["directions"]) == 3
    with pytest.raises(ValueError, match="test seeds derive from the validation seed"):
        assess_heldout(export, sets=2, samples=4, seed=3)
    parts = [assess_test_set(export, 2, 4, i) for i in (0, 1)]
    assert combine_test_sets(parts) == result  # a sweep's parallel sets
    with pytest.raises(ValueError, match="other options or strengths"):
        combine_test_sets([parts[0], parts[1] | {"samples": 5}])
    calibrated = [parts[0] | {"scales": [1.0, 1.0, 1.0]}, parts[1] | {"scales": [1.0, 1.0, 1.00001]}]
    assert combine_test_sets(calibrated)["scales"] == [1.0, 1.0, 1.0]  # float32 rounding of a GPU's calibration
    with pytest.raises(ValueError, match="other options or strengths"):
        combine_test_sets([calibrated[0], parts[1] | {"scales": [1.0, 1.0, 1.1]}])
    with pytest.raises(ValueError, match="test set 2 of 2 does not exist"):
        assess_test_set(export, 2, 4, 2)
    out = CliRunner().invoke(main, ["evaluate", str(export), "--test-sets", "2", "--samples", "4"])
    assert out.exit_code == 0, out.output
    assert "held-out test: 2 sets of 4 codes" in out.output and "| object_shape |" in out.output
    assert json.dumps(result)  # what a sweep writes to heldout.json


def test_recorded_strengths_are_the_calibrated_ones(tiny_world, tmp_path, monkeypatch):
    """A calibrated export's test set at the strengths its manifest records (what a sweep's test tasks use, without
    calibrating) equals the set with the strengths calibrated again; other networks or calibration options refuse
    them."""
    import stylediscover.assessment as assessment

    train(tiny_config(tiny_world, steps=2, eval={"every": 2, "grid_strengths": 3, "metrics": {
        "samples": 4, "batch": 4, "calibrate": True, "calibration_samples": 3}}), tmp_path / "run")
    export = tmp_path / "run" / "directions.safetensors"
    calibrated = assess_test_set(export, 2, 4, 1)
    with monkeypatch.context() as m:
        m.setattr(assessment, "calibrate_scales", lambda *a, **k: pytest.fail("recorded strengths were recalibrated"))
        recorded = assess_test_set(export, 2, 4, 1, recorded_strengths=True)
        other_predictor = {"predictor_source": str(tiny_world / "p.safetensors")}
        for changes in ({"scale": 2.0}, {"calibration_samples": 5}, other_predictor):
            with pytest.raises(ValueError, match="recorded strengths hold for the export's own"):
                assess_test_set(export, 2, 4, 1, recorded_strengths=True, **changes)
    assert recorded["scales"] != [1.0, 1.0, 1.0]
    torch.testing.assert_close(torch.tensor(recorded["scales"]), torch.tensor(calibrated["scales"]))
    torch.testing.assert_close(torch.tensor(recorded["responses"]), torch.tensor(calibrated["responses"]))
    assert combine_test_sets([calibrated, recorded])["scales"] == calibrated["scales"]


def test_sweep_defaults_are_the_heldout_defaults():
    """settings.py keeps the numbers (it must not import torch through heldout.py)."""
    from stylediscover.heldout import TEST_SAMPLES, TEST_SETS
    from stylediscover.sweep.settings import SelectionConfig

    assert (SelectionConfig().test_sets, SelectionConfig().test_samples) == (TEST_SETS, TEST_SAMPLES)
