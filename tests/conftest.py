"""Shared fixtures: checkpoints in each upstream layout, built in a subprocess by tests/layouts."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

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
