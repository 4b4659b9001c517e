"""Shared fixtures: checkpoints in each upstream layout, built in a subprocess by tests/layouts."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from stylediscover.config import TrainConfig
from stylediscover.domain_predictor import heads
from stylediscover.generators import Generator, GeneratorConfig, save_native
from stylediscover.generators.discriminator import Discriminator, DiscriminatorConfig
from stylediscover.predictor import AttributePredictor, PredictorConfig, save_predictor
from stylediscover.shapes.factors import FACTORS

LAYOUTS = Path(__file__).parent / "layouts"


@pytest.fixture(scope="session")
def layout_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory with nvidia_*.pkl, rosinality*.pt and their *.ref.pt reference outputs."""
    out = tmp_path_factory.mktemp("layouts")
    env = {**os.environ, "PYTHONPATH": str(LAYOUTS)}
    subprocess.run([sys.executable, str(LAYOUTS / "build_fixtures.py"), str(out)], check=True, env=env)
    return out


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory):
    return write_tiny_world(tmp_path_factory.mktemp("world"))


def write_tiny_world(root: Path) -> Path:
    """A 16 px generator, its discriminator and a predictor with the shapes heads, as files under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    g = Generator(GeneratorConfig(z_dim=16, w_dim=16, resolution=16, channels={4: 16, 8: 16, 16: 8}, mapping_layers=2))
    save_native(g, root / "g.safetensors")
    save_native(Discriminator(DiscriminatorConfig(resolution=16, channels={16: 8, 8: 16, 4: 16})),
                root / "d.safetensors")
    save_predictor(AttributePredictor(PredictorConfig(heads=heads(FACTORS), input_resolution=16, channels=(8, 8, 8),
                                                      hidden=16)).eval(), root / "p.safetensors")
    return root


def tiny_config(world, **overrides) -> TrainConfig:
    base = dict(generator=str(world / "g.safetensors"), predictor=str(world / "p.safetensors"),
                features={"name": "discriminator", "weights": str(world / "d.safetensors")},
                navigator={"num_directions": 3, "direction": "pca", "pca_dim": 4, "attention": "softmax"},
                steps=4, batch=4, pca_samples=500, checkpoint_every=2, threads=1,
                eval={"every": 2, "grid_strengths": 3, "metrics": {"samples": 4, "batch": 4}})
    return TrainConfig.model_validate(base | overrides)


@pytest.fixture(scope="module")
def ray_env():
    """One local Ray per test module, its temp and home folders in a private directory; shut down afterwards."""
    import shutil
    import tempfile

    import ray

    root = tempfile.mkdtemp(prefix="sd-ray-", dir="/tmp")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_TMPDIR", root)
        mp.setenv("HOME", root)
        mp.setenv("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(include_dashboard=False, configure_logging=False)
        yield Path(root)
        ray.shutdown()
    shutil.rmtree(root, ignore_errors=True)


def tiny_spec(world, storage: Path, **overrides) -> dict:
    """A small sweep over the tiny world: 3 Optuna trials of 6 steps, evaluated every 2; the selected export is
    tested on 2 held-out sets of 8 codes."""
    base = tiny_config(world, steps=6).model_dump(mode="json")
    spec = {"name": "tiny", "base": base, "storage_path": str(storage), "num_samples": 3, "max_concurrent": 2,
            "search_space": {"loss.form": {"type": "choice", "values": ["linear", "infonce"]},
                             "navigator.attention": {"type": "choice", "values": ["softmax", "cumax", "none"]}},
            "search": {"algorithm": "optuna_tpe", "seed": 0}, "selection": {"test_sets": 2, "test_samples": 8}}
    return spec | overrides
