"""Numerical equivalence of every checkpoint format with the implementation that wrote it."""

import importlib.util

import pytest
import torch
from click.testing import CliRunner
from conftest import relative_error

from stylediscover.cli import main
from stylediscover.generators import CheckpointFormat, detect_format, load_generator

SOURCES = {
    "nvidia_ffhq_like": ("nvidia_ffhq_like.pkl", CheckpointFormat.NVIDIA_PKL),
    "nvidia_clamped": ("nvidia_clamped.pkl", CheckpointFormat.NVIDIA_PKL),
    "nvidia_conditional": ("nvidia_conditional.pkl", CheckpointFormat.NVIDIA_PKL),
    "rosinality": ("rosinality.pt", CheckpointFormat.ROSINALITY_PT),
}
TOLERANCE = 1e-4


def assert_matches_reference(generator, ref: dict) -> None:
    with torch.no_grad():
        for psi, key in ((1.0, "psi1"), (0.7, "psi07")):
            ws = generator.mapping(ref["z"], truncation_psi=psi)
            assert ws.shape == ref[f"ws_{key}"].shape
            assert relative_error(ws, ref[f"ws_{key}"]) < TOLERANCE
            images = generator.synthesis(ws, noise_mode="const")
            assert images.shape == ref[f"img_{key}"].shape
            assert relative_error(images, ref[f"img_{key}"]) < TOLERANCE


def test_upstream_code_is_not_importable_here():
    assert importlib.util.find_spec("torch_utils") is None
    assert importlib.util.find_spec("dnnlib") is None


@pytest.mark.parametrize("name", SOURCES)
def test_source_format_matches_its_implementation(layout_dir, name):
    filename, fmt = SOURCES[name]
    assert detect_format(layout_dir / filename) == fmt
    ref = torch.load(layout_dir / f"{name}.ref.pt")
    generator = load_generator(layout_dir / filename, ref.get("class_index"))
    assert (generator.num_ws, generator.w_dim, generator.resolution) == (8, 32, 32)
    assert_matches_reference(generator, ref)


@pytest.mark.parametrize("name", SOURCES)
def test_native_conversion_matches_source_implementation(layout_dir, tmp_path, name):
    filename, _ = SOURCES[name]
    out = tmp_path / f"{name}.safetensors"
    result = CliRunner().invoke(main, ["generators", "convert", str(layout_dir / filename), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert detect_format(out) == CheckpointFormat.NATIVE
    ref = torch.load(layout_dir / f"{name}.ref.pt")
    assert_matches_reference(load_generator(out, ref.get("class_index")), ref)


def test_clamping_is_active_in_clamped_fixture(layout_dir):
    generator = load_generator(layout_dir / "nvidia_clamped.pkl")
    assert generator.config.conv_clamp == pytest.approx(0.3)
    generator.synthesis.b32.conv1.conv_clamp = None
    ref = torch.load(layout_dir / "nvidia_clamped.ref.pt")
    with torch.no_grad():
        unclamped = generator.synthesis(ref["ws_psi1"])
    assert relative_error(unclamped, ref["img_psi1"]) > 1e-2


def test_rosinality_training_checkpoint_estimates_w_avg(layout_dir):
    generator = load_generator(layout_dir / "rosinality_train.pt")
    ref = torch.load(layout_dir / "rosinality.ref.pt")
    with torch.no_grad():
        images = generator.synthesis(generator.mapping(ref["z"]))
        w_mean = generator.mapping(torch.randn(4000, 32))[:, 0].mean(0)
    assert relative_error(images, ref["img_psi1"]) < TOLERANCE
    assert relative_error(generator.mapping.w_avg, w_mean) < 0.05


def test_cli_sample_writes_grid_and_options(layout_dir, tmp_path):
    from PIL import Image

    out = tmp_path / "grid.png"
    result = CliRunner().invoke(main, ["generators", "sample", "--generator", str(layout_dir / "nvidia_clamped.pkl"),
                                       "--seeds", "0-2,9", "--psi", "0.7", "--cols", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == (2 * 32 + 2, 2 * 32 + 2)
    assert '"seeds": [\n    0,\n    1,\n    2,\n    9\n  ]' in out.with_suffix(".json").read_text()


def test_conditional_generator_needs_and_uses_its_class(layout_dir, tmp_path):
    generator = load_generator(layout_dir / "nvidia_conditional.pkl", require_class=False)
    z = torch.randn(2, generator.z_dim)
    with pytest.raises(ValueError, match="conditional on 5 classes"):
        generator.mapping(z)
    with pytest.raises(ValueError, match="not among"):
        generator.set_class(5)
    a, b = generator.set_class(1).mapping(z), generator.set_class(2).mapping(z)
    assert relative_error(a, b) > 1e-3
    out = tmp_path / "grid.png"
    args = ["generators", "sample", "--generator", str(layout_dir / "nvidia_conditional.pkl"), "--seeds", "0-1"]
    missing = CliRunner().invoke(main, args + ["--out", str(out)])
    assert missing.exit_code == 2 and "--class" in missing.output and not out.exists()
    assert CliRunner().invoke(main, args + ["--class", "3", "--out", str(out)]).exit_code == 0
    assert out.exists()
