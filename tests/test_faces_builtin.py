"""The shipped faces networks load by name and do their job; a tiny faces sweep runs end to end through the
shipped `sweeps/faces.yaml` (made small by overrides), with local Ray and the embedded MLflow store."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from stylediscover.builtin import resolve_builtin
from stylediscover.domain_predictor import evaluate
from stylediscover.domains import get_domain
from stylediscover.predictor import load_predictor

ROOT = Path(__file__).parent.parent
FACES = get_domain("faces")


def test_shipped_predictor_on_fresh_renders():
    predictor = load_predictor(resolve_builtin("builtin:faces", "predictor"))
    images, values = FACES.render_seeded(400, seed=2027)
    for name, value in evaluate(predictor, FACES.factors, images, values).items():
        assert value >= 0.95, (name, value)


def test_shipped_generator_and_discriminator_have_the_domain_shape():
    from stylediscover.generators import load_generator
    from stylediscover.generators.native import load_discriminator

    generator = load_generator("builtin:faces")
    discriminator = load_discriminator(resolve_builtin("builtin:faces", "discriminator"))
    with torch.no_grad():
        images = generator(torch.randn(2, generator.z_dim), truncation_psi=0.5)
        features = discriminator.features(images, input_map=True)
    assert images.shape == (2, 3, 64, 64) and generator.num_ws == 10
    assert [f.shape[-1] for f in features] == [64, 32, 16, 8, 4]


def test_tiny_faces_sweep_end_to_end(tmp_path):
    """`stylediscover sweep run sweeps/faces.yaml`, made small by --set, in a process of its own (its own local Ray
    in a private temp folder)."""
    overrides = {"name": "faces-tiny", "storage_path": str(tmp_path / "store"), "num_samples": 2,
                 "base.steps": 2, "base.batch": 4, "base.pca_samples": 500, "base.checkpoint_every": 2,
                 "base.navigator.num_directions": 4, "base.eval.every": 2, "base.eval.validation_sets": 2,
                 "base.eval.grid_strengths": 3, "base.eval.metrics.samples": 4, "base.eval.metrics.batch": 4,
                 "selection.test_sets": 2, "selection.test_samples": 4}
    args = [a for key, value in overrides.items() for a in ("--set", f"{key}={value}")]
    ray_root = tempfile.mkdtemp(prefix="sd-ray-", dir="/tmp")  # short: Ray's socket paths are limited to 107 bytes
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": ray_root, "RAY_TMPDIR": ray_root,
           "RAY_USAGE_STATS_ENABLED": "0"}
    try:
        run = subprocess.run([sys.executable, "-m", "stylediscover.cli", "sweep", "run",
                              str(ROOT / "sweeps" / "faces.yaml"), *args], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=600)
    finally:
        shutil.rmtree(ray_root, ignore_errors=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads((tmp_path / "store" / "faces-tiny" / "summary.json").read_text())
    export = Path(summary["export"])
    manifest = json.loads((export / "directions.json").read_text())
    assert manifest["config"]["generator"] == manifest["config"]["predictor"] == "builtin:faces"
    assert manifest["config"]["features"]["weights"] == "builtin:faces"
    assert len(manifest["attributes"]) == len(FACES.factors)
    assert (export / "traversal.png").exists() and (export / "attention.png").exists()


@pytest.mark.parametrize("kind", ["generator", "discriminator", "predictor"])
def test_builtin_faces_resolves(kind):
    assert resolve_builtin("builtin:faces", kind).is_file()
