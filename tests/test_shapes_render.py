"""The embedded domain's renderer: determinism, factor ranges, and independence of the factors."""

import torch

from stylediscover.shapes.domain import DOMAIN as SHAPES
from stylediscover.shapes.factors import FACTOR_NAMES, FACTORS
from stylediscover.shapes.render import FLOOR_LINE, HORIZON, render


def test_deterministic_from_seed():
    a_img, a_f = SHAPES.render_seeded(16, seed=5)
    b_img, b_f = SHAPES.render_seeded(16, seed=5)
    c_img, _ = SHAPES.render_seeded(16, seed=6)
    assert torch.equal(a_img, b_img) and torch.equal(a_f, b_f)
    assert not torch.equal(a_img, c_img)
    assert a_img.shape == (16, 3, 32, 32) and a_img.min() >= -1 and a_img.max() <= 1


def test_factor_ranges_and_sample_independence():
    f = SHAPES.sample(20_000, torch.Generator().manual_seed(0))
    for i, factor in enumerate(FACTORS):
        if factor.kind == "categorical":
            counts = torch.bincount(f[:, i].long(), minlength=len(factor.classes)).float() / len(f)
            assert (counts - 1 / len(factor.classes)).abs().max() < 0.02
        else:
            assert f[:, i].min() >= factor.low and f[:, i].max() <= factor.high
    corr = torch.corrcoef(f.T)
    off_diagonal = corr - torch.diag(torch.diag(corr))
    assert off_diagonal.abs().max() < 0.03


def change(factors: torch.Tensor, name: str, value: float) -> torch.Tensor:
    out = factors.clone()
    out[:, FACTOR_NAMES.index(name)] = value
    return out


def changed_pixels(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[B, H, W] mask of pixels that differ."""
    return (a - b).abs().amax(dim=1) > 1e-4


def test_each_factor_changes_only_its_own_region():
    base = SHAPES.sample(32, torch.Generator().manual_seed(1))
    img = render(base)
    rows = torch.arange(32).view(1, 32, 1).float() + 0.5
    wall_rows = rows < HORIZON * 32 - 1
    floor_rows = rows > HORIZON * 32 + 1
    # wall hue: nothing below the horizon changes
    moved = changed_pixels(img, render(change(base, "wall_hue", 0.123)))
    assert not (moved & floor_rows).any() and moved.any()
    # floor hue: nothing above the horizon changes
    moved = changed_pixels(img, render(change(base, "floor_hue", 0.321)))
    assert not (moved & wall_rows).any() and moved.any()
    # object hue: wall and floor pixels away from the object keep their colour
    object_moved = changed_pixels(img, render(change(base, "object_hue", 0.777)))
    background_moved = changed_pixels(img, render(change(change(base, "wall_hue", 0.5), "floor_hue", 0.9)))
    assert (object_moved & background_moved).float().mean() < (object_moved.float().mean() * 0.35)
    # geometry factors never reach the upper wall (objects are at most 0.51 of the side tall)
    above_objects = rows < (FLOOR_LINE - 0.52) * 32
    for name, value in (("object_x", 0.3), ("object_scale", 0.3), ("object_shape", 2.0)):
        moved = changed_pixels(img, render(change(base, name, value)))
        assert moved.any() and not (moved & above_objects).any()


def test_shapes_have_distinct_silhouettes():
    base = SHAPES.sample(1, torch.Generator().manual_seed(2)).repeat(4, 1)
    base[:, FACTOR_NAMES.index("object_shape")] = torch.arange(4).float()
    base[:, FACTOR_NAMES.index("object_scale")] = 0.45
    img = render(base, resolution=64)
    for i in range(4):
        for j in range(i + 1, 4):
            assert changed_pixels(img[i:i + 1], img[j:j + 1]).float().mean() > 0.01
