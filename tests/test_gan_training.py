"""GAN training of the embedded domains: checkpoints resume bit-identically, exports load, a run stays with
its domain."""

import json

import pytest
import torch
from click.testing import CliRunner

from stylediscover.cli import main
from stylediscover.generators import load_generator
from stylediscover.generators.native import load_discriminator

TINY = ["resolution=8", "z_dim=8", "w_dim=8", "mapping_layers=2", "g_channels={4: 8, 8: 8}",
        "d_channels={8: 8, 4: 8}", "batch=4", "r1_interval=2", "checkpoint_every=2", "sample_every=2"]


def run(run_dir, steps: int, domain: str = "shapes") -> None:
    args = [domain, "train-generator", "--run-dir", str(run_dir), "--set", f"steps={steps}"]
    for item in TINY:
        args += ["--set", item]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("domain", ["shapes", "faces"])
def test_resume_is_bit_identical(tmp_path, domain):
    run(tmp_path / "straight", 6, domain)
    run(tmp_path / "resumed", 2, domain)
    run(tmp_path / "resumed", 6, domain)
    a = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)
    assert a["step"] == b["step"] == 6
    for key in ("G", "D", "G_ema"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), f"{key}.{name}"
    options = json.loads((tmp_path / "resumed" / "options.json").read_text())
    assert options["steps"] == 6 and options["domain"] == domain


def test_a_run_stays_with_its_domain(tmp_path):
    run(tmp_path / "r", 2, "shapes")
    result = CliRunner().invoke(main, ["faces", "train-generator", "--run-dir", str(tmp_path / "r")])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert "options.json: domain: this run trains the shapes domain, not faces" in result.output


def test_exports_load_as_native_networks(tmp_path):
    run(tmp_path / "r", 2)
    g = load_generator(tmp_path / "r" / "generator.safetensors")
    d = load_discriminator(tmp_path / "r" / "discriminator.safetensors")
    images = g(torch.randn(4, 8))
    assert images.shape == (4, 3, 8, 8)
    assert d(images).shape == (4,)
    assert [f.shape[1:] for f in d.features(images)] == [(8, 4, 4)]
    with_map = d.features(images, input_map=True)
    assert len(with_map) == 2 and with_map[0].shape[2:] == (8, 8) and torch.equal(with_map[1], d.features(images)[0])
    assert (tmp_path / "r" / "samples-000002.png").exists()
