"""Projection of real images into W+ and edits with exported directions (mechanics on the tiny world)."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import tiny_config
from PIL import Image

from stylediscover.cli import main
from stylediscover.edit import ProjectionConfig, load_image, project
from stylediscover.errors import InputError
from stylediscover.features import FeatureConfig, load_features
from stylediscover.generators import load_generator
from stylediscover.imaging import grid, save_png
from stylediscover.shapes.domain import DOMAIN as SHAPES
from stylediscover.trainer import train


@pytest.fixture(scope="module")
def render_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "render.png"
    save_png(grid(SHAPES.render_seeded(1, seed=7, resolution=16)[0]), path)
    return path


def test_projection_reduces_reconstruction_error_and_restores_noise(tiny_world, render_png):
    generator = load_generator(tiny_world / "g.safetensors")
    features = load_features(FeatureConfig(name="discriminator", weights=str(tiny_world / "d.safetensors")))
    target = load_image(render_png, 16)
    before = [m.noise_const.clone() for m in generator.synthesis.modules() if hasattr(m, "noise_const")]
    with torch.no_grad():
        start = torch.nn.functional.mse_loss(generator.synthesis(
            generator.mapping.w_avg.view(1, 1, -1).repeat(1, generator.num_ws, 1)), target).item()
    result = project(generator, features, target, ProjectionConfig(steps=60), progress=False)
    assert result["pixel_mse"] < 0.7 * start
    assert result["ws"].shape == (1, generator.num_ws, generator.w_dim)
    after = [m.noise_const for m in generator.synthesis.modules() if hasattr(m, "noise_const")]
    assert all(torch.equal(a, b) for a, b in zip(before, after))


def test_cli_project_and_edit(tiny_world, render_png, tmp_path):
    runner = CliRunner()
    latent = tmp_path / "latent.npz"
    result = runner.invoke(main, ["project", str(render_png), "--generator", str(tiny_world / "g.safetensors"),
                                  "--features-weights", str(tiny_world / "d.safetensors"), "--steps", "20",
                                  "--out", str(latent)])
    assert result.exit_code == 0, result.output
    assert Image.open(latent.with_suffix(".png")).size == (2 * 16 + 2, 16)
    assert np.load(latent)["ws"].shape[0] == 6
    train(tiny_config(tiny_world), tmp_path / "run")
    directions = tmp_path / "run" / "directions.safetensors"
    strip = tmp_path / "strip.png"
    result = runner.invoke(main, ["edit", str(latent), "--directions", str(directions), "--direction", "0",
                                  "--direction", "2", "--strengths", "-1,0,1", "--out", str(strip)])
    assert result.exit_code == 0, result.output
    assert Image.open(strip).size == (3 * 16 + 4, 2 * 16 + 2)


def test_bad_images_and_mismatched_inputs(tmp_path, tiny_world):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(InputError, match="bad.png: cannot read as an image"):
        load_image(bad, 16)
    wide = tmp_path / "wide.png"
    Image.new("RGB", (40, 20), "red").save(wide)
    with pytest.warns(UserWarning, match="not square"):
        assert load_image(wide, 16).shape == (1, 3, 16, 16)
    other = tmp_path / "other.npz"
    np.savez(other, ws=np.zeros((3, 16), np.float32))
    from stylediscover.edit import load_latent

    with pytest.raises(InputError, match="other.npz"):
        load_latent(other, load_generator(tiny_world / "g.safetensors"))


def test_edit_refuses_directions_of_another_generator(tiny_world, tmp_path):
    train(tiny_config(tiny_world, steps=2), tmp_path / "run")
    latent = tmp_path / "l.npz"
    np.savez(latent, ws=np.zeros((8, 128), np.float32))
    directions = tmp_path / "run" / "directions.safetensors"
    result = CliRunner().invoke(main, ["edit", str(latent), "--directions", str(directions), "--direction", "0",
                                       "--generator", "builtin:shapes", "--out", str(tmp_path / "s.png")])
    assert result.exit_code == 2
    assert "directions are for num_ws × w_dim = 6 × 16, the generator has 8 × 128" in result.output
