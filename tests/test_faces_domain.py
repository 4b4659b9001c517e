"""The faces domain: independent factors, local factors confined to their regions, deterministic anti-aliased
renders, the domain interface and its command group."""

import json

import pytest
import torch
from click.testing import CliRunner

from stylediscover.cli import main
from stylediscover.domains import NAMES, get_domain
from stylediscover.faces.factors import FACTORS, GLASSES

FACES = get_domain("faces")


def test_factor_table():
    assert len(FACTORS) >= 12 and len({f.name for f in FACTORS}) == len(FACTORS)
    local = [f for f in FACTORS if f.region]
    assert len(local) >= 5
    assert {f.region for f in local} <= {"mouth", "eyes", "brows", "glasses", "fringe", "beard"}
    assert [f.classes for f in FACTORS if f.kind == "categorical"] == [GLASSES]


def test_factors_are_sampled_independently_within_their_ranges():
    values = FACES.sample(20_000, torch.Generator().manual_seed(1))
    for i, f in enumerate(FACTORS):
        column = values[:, i]
        if f.kind == "categorical":
            counts = torch.bincount(column.long(), minlength=len(f.classes)).float() / len(column)
            assert torch.allclose(counts, torch.full_like(counts, 1 / len(f.classes)), atol=0.02), f.name
        else:
            assert column.min() >= f.low and column.max() <= f.high, f.name
    corr = torch.corrcoef(values.T)
    off_diagonal = corr - torch.eye(len(FACTORS))
    assert off_diagonal.abs().max() < 0.04


def test_renders_are_deterministic_in_range_and_anti_aliased():
    images, factors = FACES.render_seeded(8, seed=3)
    again, factors_again = FACES.render_seeded(8, seed=3)
    assert torch.equal(images, again) and torch.equal(factors, factors_again)
    assert images.shape == (8, 3, 64, 64) and images.min() >= -1 and images.max() <= 1
    levels = torch.unique((images[:, 0] * 127.5).round())
    assert len(levels) > 64  # supersampled edges give intermediate values
    assert not torch.equal(images, FACES.render_seeded(8, seed=4)[0])


@pytest.mark.parametrize("index", [i for i, f in enumerate(FACTORS) if f.region])
def test_a_local_factor_changes_only_its_region(index):
    factor = FACTORS[index]
    base = FACES.sample(24, torch.Generator().manual_seed(10 + index))
    other = FACES.sample(24, torch.Generator().manual_seed(100 + index))
    changed_values = base.clone()
    changed_values[:, index] = other[:, index]
    before, after = FACES.render(base, 64), FACES.render(changed_values, 64)
    changed = (after - before).abs().amax(dim=1) > 1e-4
    region = FACES.region_mask(base, factor.region, 64)
    assert not (changed & ~region).any(), f"{factor.name} changed pixels outside {factor.region}"
    moved = (base[:, index] - other[:, index]).abs() > 0.25 * (factor.high - factor.low)
    if factor.kind == "categorical":
        moved = base[:, index] != other[:, index]
    assert changed[moved].flatten(1).sum(1).min() >= 3, f"{factor.name} barely changes the image"
    assert region.float().mean() < 0.15


@pytest.mark.parametrize("index", [i for i, f in enumerate(FACTORS) if not f.region])
def test_a_global_factor_changes_pixels_outside_every_local_region(index):
    base = FACES.sample(16, torch.Generator().manual_seed(7))
    low, high = base.clone(), base.clone()
    low[:, index], high[:, index] = FACTORS[index].low, FACTORS[index].low + 0.45 * (FACTORS[index].high
                                                                                      - FACTORS[index].low)
    changed = (FACES.render(high, 64) - FACES.render(low, 64)).abs().amax(dim=1) > 1e-3
    local = torch.zeros_like(changed)
    for region in {f.region for f in FACTORS if f.region}:
        local |= FACES.region_mask(base, region, 64)
    assert (changed & ~local).flatten(1).sum(1).min() >= 30, FACTORS[index].name


def test_every_domain_has_the_interface():
    for name in NAMES:
        domain = get_domain(name)
        images, values = domain.render_seeded(2, seed=0)
        assert images.shape == (2, 3, domain.resolution, domain.resolution)
        assert values.shape == (2, len(domain.factors)) and domain.factor_names[0] == domain.factors[0].name
    with pytest.raises(ValueError, match="unknown domain 'cars'"):
        get_domain("cars")


def test_faces_render_command(tmp_path):
    out = tmp_path / "faces.png"
    result = CliRunner().invoke(main, ["faces", "render", "--n", "4", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = json.loads(out.with_suffix(".json").read_text())
    assert len(rows) == 4 and set(rows[0]) == {f.name for f in FACTORS}
    for bad in (["--n", "0"], ["--n", "100001"], ["--resolution", "48"], ["--seed", "-1"]):
        result = CliRunner().invoke(main, ["faces", "render", *bad, "--out", str(tmp_path / "bad.png")])
        assert result.exit_code == 2 and "Traceback" not in result.output, bad
    assert not (tmp_path / "bad.png").exists()
