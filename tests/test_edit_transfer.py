"""Directions discovered on generated samples edit a projected render, which the generator never saw (issue 6)."""

from pathlib import Path

import pytest
import torch
import yaml

from stylediscover.builtin import resolve_builtin
from stylediscover.config import TrainConfig
from stylediscover.directions import load_directions
from stylediscover.edit import ProjectionConfig, edit_response, project
from stylediscover.features import FeatureConfig, load_features
from stylediscover.generators import load_generator
from stylediscover.metrics import normalised
from stylediscover.predictor import load_predictor
from stylediscover.shapes.render import render_seeded
from stylediscover.trainer import train

CONFIG = Path(__file__).parents[1] / "configs" / "shapes-binary.yaml"
UNSEEN_SEED = 987_654


@pytest.fixture(scope="module")
def shapes_directions(tmp_path_factory) -> Path:
    """A shortened ContraFeat binary run on builtin:shapes; its exported directions."""
    data = yaml.safe_load(CONFIG.read_text()) | {"steps": 300, "threads": 2}
    data["eval"] |= {"every": 300, "metrics": data["eval"]["metrics"] | {"samples": 100}}
    run = tmp_path_factory.mktemp("contrafeat")
    train(TrainConfig.model_validate(data), run)
    return run / "directions.safetensors"


def test_direction_changes_its_dominant_attribute_most_on_a_projected_render(shapes_directions):
    generator = load_generator("builtin:shapes")
    predictor = load_predictor(resolve_builtin("builtin:shapes", "predictor"))
    directions = load_directions(shapes_directions, generator)
    manifest = directions.manifest
    responses = torch.tensor([e["responses"] for e in manifest["directions"]])
    clear = [e for e, second in zip(manifest["directions"], normalised(responses).topk(2).values[:, 1])
             if second < 0.5]
    assert len(clear) >= 3, f"too few disentangled directions to test: {manifest['metrics']}"
    target, _ = render_seeded(1, UNSEEN_SEED, generator.resolution)
    projection = project(generator, load_features(FeatureConfig()), target, ProjectionConfig(steps=300),
                         progress=False)
    names = manifest["attributes"]
    for entry in clear:
        delta = entry["scale"] * directions.delta(projection["ws"], torch.tensor([entry["index"]]))
        changed = edit_response(generator, predictor, projection["ws"], projection["noise"], delta)
        assert names[int(changed.argmax())] == entry["dominant_attribute"], (entry, changed.tolist())
