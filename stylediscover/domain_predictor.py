"""Trains an embedded domain's attribute predictor on renders with their true factors.

Losses: MSE on linear factors (normalised to their range) and on (cos, sin) of hues, cross-entropy on
categorical ones. Held-out quality: R² per continuous factor (hues: R² of cos and sin, the lower of the
two) and accuracy per categorical factor, on a fresh set of renders never used in training.
"""

import json
import math
import time
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from stylediscover.domains import NAMES, Domain, get_domain
from stylediscover.factors import Factor
from stylediscover.predictor import AttributePredictor, Head, PredictorConfig, save_predictor
from stylediscover.predictor_training import fit

HELD_OUT_SEED = 999_999


class PredictorTrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    domain: Literal[NAMES] = "shapes"
    resolution: int = 32
    channels: tuple[int, ...] = Field((32, 64, 128, 128), description="the small CNN's conv widths")
    train_images: int = Field(40_000, ge=256)
    epochs: int = Field(12, ge=1)
    batch: int = 128
    lr: float = 2e-3
    seed: int = 0
    threads: int = 2
    held_out: int = 4000


def heads(factors: tuple[Factor, ...]) -> list[Head]:
    """One predictor head per factor, of the factor's kind and range."""
    return [Head(name=f.name, kind=f.kind, low=f.low, high=f.high, classes=f.classes) for f in factors]


def targets(factors: tuple[Factor, ...], values: torch.Tensor) -> dict[str, torch.Tensor]:
    """True factors [B, F] → per-head training targets (linear scaled to [0, 1], hues as cos/sin, class index)."""
    out = {}
    for i, f in enumerate(factors):
        v = values[:, i]
        if f.kind == "hue":
            out[f.name] = torch.stack([torch.cos(2 * math.pi * v), torch.sin(2 * math.pi * v)], dim=1)
        elif f.kind == "linear":
            out[f.name] = ((v - f.low) / (f.high - f.low)).unsqueeze(1)
        else:
            out[f.name] = v.long()
    return out


def loss_fn(model: AttributePredictor, factors: tuple[Factor, ...], raw: torch.Tensor,
            values: torch.Tensor) -> torch.Tensor:
    parts, goal = model.split(raw), targets(factors, values)
    total = raw.new_zeros([])
    for f in factors:
        if f.kind == "categorical":
            total = total + F.cross_entropy(parts[f.name], goal[f.name])
        else:
            total = total + F.mse_loss(parts[f.name], goal[f.name])
    return total


def r2(pred: torch.Tensor, true: torch.Tensor) -> float:
    return 1 - ((pred - true) ** 2).sum().item() / ((true - true.mean()) ** 2).sum().item()


@torch.no_grad()
def evaluate(model: AttributePredictor, factors: tuple[Factor, ...], images: torch.Tensor,
             values: torch.Tensor) -> dict[str, float]:
    """Held-out quality: {'<factor>_r2': ...} for continuous factors, {'<factor>_accuracy': ...} for categorical."""
    model.eval()
    raw = torch.cat([model(chunk) for chunk in images.split(500)])
    parts, goal = model.split(raw), targets(factors, values)
    out = {}
    for f in factors:
        if f.kind == "categorical":
            out[f"{f.name}_accuracy"] = (parts[f.name].argmax(1) == goal[f.name]).float().mean().item()
        elif f.kind == "hue":
            out[f"{f.name}_r2"] = min(r2(parts[f.name][:, j], goal[f.name][:, j]) for j in range(2))
        else:
            out[f"{f.name}_r2"] = r2(parts[f.name][:, 0], goal[f.name][:, 0])
    return out


def train_predictor(cfg: PredictorTrainConfig, out: Path) -> dict[str, float]:
    """Trains, writes `out` (.safetensors) and `<out>.json` (options, held-out metrics, wall time)."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    start = time.perf_counter()
    domain: Domain = get_domain(cfg.domain)
    images, values = domain.render_seeded(cfg.train_images, cfg.seed, cfg.resolution)
    test_images, test_values = domain.render_seeded(cfg.held_out, HELD_OUT_SEED, cfg.resolution)
    model = AttributePredictor(PredictorConfig(heads=heads(domain.factors), input_resolution=cfg.resolution,
                                               channels=cfg.channels))
    fit(model, images, lambda raw, idx: loss_fn(model, domain.factors, raw, values[idx]), cfg.epochs, cfg.batch,
        cfg.lr, f"{domain.name} predictor")
    metrics = evaluate(model, domain.factors, test_images, test_values)
    save_predictor(model, out)
    report = {"options": cfg.model_dump(), "held_out": metrics, "wall_s": round(time.perf_counter() - start, 1)}
    Path(out).with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    return metrics
