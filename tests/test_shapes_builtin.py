"""The shipped networks of the embedded domain load by name and do their job."""

import pytest

from stylediscover.builtin import resolve_builtin
from stylediscover.errors import InputError
from stylediscover.predictor import load_predictor
from stylediscover.shapes.render import render_seeded
from stylediscover.shapes.train_predictor import evaluate


def test_shipped_predictor_on_fresh_held_out_renders():
    predictor = load_predictor(resolve_builtin("builtin:shapes", "predictor"))
    images, factors = render_seeded(600, seed=2026)
    quality = evaluate(predictor, images, factors)
    for name, value in quality.items():
        assert value >= (0.98 if name.endswith("accuracy") else 0.95), (name, value)


def test_unknown_builtin_is_named():
    with pytest.raises(InputError, match="builtin:faces: unknown built-in; known: builtin:shapes"):
        resolve_builtin("builtin:faces", "generator")
