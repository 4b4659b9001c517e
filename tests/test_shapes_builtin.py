"""The shipped networks of the embedded domain load by name and do their job."""

import pytest

from stylediscover.builtin import resolve_builtin
from stylediscover.domain_predictor import evaluate
from stylediscover.errors import InputError
from stylediscover.predictor import load_predictor
from stylediscover.shapes.domain import DOMAIN as SHAPES
from stylediscover.shapes.factors import FACTORS


def test_shipped_predictor_on_fresh_held_out_renders():
    predictor = load_predictor(resolve_builtin("builtin:shapes", "predictor"))
    images, factors = SHAPES.render_seeded(600, seed=2026)
    quality = evaluate(predictor, FACTORS, images, factors)
    for name, value in quality.items():
        assert value >= (0.98 if name.endswith("accuracy") else 0.95), (name, value)


def test_unknown_builtin_is_named():
    with pytest.raises(InputError, match="builtin:cars: unknown built-in; known: builtin:shapes, builtin:faces"):
        resolve_builtin("builtin:cars", "generator")


def test_shipped_generator_and_discriminator_load_and_run():
    import torch

    from stylediscover.generators import load_generator
    from stylediscover.generators.native import load_discriminator

    generator = load_generator("builtin:shapes")
    discriminator = load_discriminator(resolve_builtin("builtin:shapes", "discriminator"))
    with torch.no_grad():
        images = generator(torch.randn(4, generator.z_dim), truncation_psi=0.7)
        feats = discriminator.features(images)
    assert images.shape == (4, 3, 32, 32) and images.abs().max() < 3
    assert [f.shape[-1] for f in feats] == [16, 8, 4]
