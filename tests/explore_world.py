"""Inputs of the explorer tests, built from the committed quickstart export (builtin:shapes, 16 directions): a sweep
folder laid out as Tune and the runner leave it, and broken exports."""

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from safetensors.torch import load_file, save_file

QUICKSTART = Path(__file__).resolve().parents[1] / "evaluation" / "results" / "quickstart-best"
EXPORT_FILES = ("directions.safetensors", "directions.json", "metrics.json")
TRIALS = ("run_trial_5b2a1_00000_0_navigator.attention=softmax_2026-01-01_00-00-00",
          "run_trial_5b2a1_00001_1_navigator.attention=cumax_2026-01-01_00-00-01")


def copy_export(target: Path, negate: bool = False) -> Path:
    """The quickstart export in `target` (its deltas negated when asked: a visibly different trial)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in EXPORT_FILES:
        shutil.copy(QUICKSTART / name, target / name)
    if negate:
        tensors = load_file(target / "directions.safetensors")
        tensors["deltas"] = -tensors["deltas"]
        save_file(tensors, target / "directions.safetensors", metadata={"format": "stylediscover.directions/1"})
    return target


def fake_sweep(storage: Path, name: str = "demo") -> Path:
    """<storage>/<name>/ with spec.json, summary.json, best/ and two trials' checkpoints (the second negated)."""
    folder = storage / name
    folder.mkdir(parents=True)
    (folder / "spec.json").write_text("{}\n")
    (folder / "summary.json").write_text(json.dumps({"trial_id": "5b2a1_00000"}) + "\n")
    copy_export(folder / "best")
    copy_export(folder / TRIALS[0] / "checkpoint_000001" / "best")
    copy_export(folder / TRIALS[1] / "checkpoint_000000" / "best")
    copy_export(folder / TRIALS[1] / "checkpoint_000001" / "best", negate=True)
    return folder


def mismatched_export(target: Path) -> Path:
    """An export whose directions are for num_ws × w_dim = 4 × 128 (the shapes generator has 8 × 128)."""
    copy_export(target)
    tensors = load_file(target / "directions.safetensors")
    save_file({"deltas": tensors["deltas"][:, :4].contiguous(), "attention": tensors["attention"][:, :4].contiguous(),
               "directions": tensors["directions"]}, target / "directions.safetensors",
              metadata={"format": "stylediscover.directions/1"})
    return target


def corrupt_export(target: Path) -> Path:
    """An export whose directions file is not safetensors."""
    copy_export(target)
    (target / "directions.safetensors").write_bytes(b"\x00garbage" * 100)
    return target


def render_png(path: Path, seed: int = 7) -> Path:
    """A 32 px render of the shapes domain (an image to upload and project)."""
    from stylediscover.imaging import grid, save_png
    from stylediscover.shapes.domain import DOMAIN as SHAPES

    save_png(grid(SHAPES.render_seeded(1, seed=seed, resolution=32)[0]), path)
    return path


def decode_data_uri(uri: str) -> np.ndarray:
    """A `data:image/png;base64,...` URI → uint8 [H, W, 3] (int16 for differences)."""
    import base64
    import io

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"), dtype=np.int16)


def wall_and_rest(before: np.ndarray, after: np.ndarray) -> tuple[float, float]:
    """Mean absolute change (0..255) over the wall rows that no object reaches (top 30 % of the image) and over
    the rows below the horizon (floor and object, bottom 40 %)."""
    size = before.shape[0]
    change = np.abs(after.astype(np.int16) - before.astype(np.int16)).mean(axis=(1, 2))
    return float(change[: int(0.3 * size)].mean()), float(change[int(0.6 * size):].mean())

