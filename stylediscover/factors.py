"""Generative factors of an embedded domain: what one factor is, and independent uniform sampling.

A factor is `hue` (a turn of the colour wheel in [0, 1), compared on the circle), `linear` (a value in
[low, high]) or `categorical` (a class index into `classes`). A local factor names the `region` of the
image it may change (its domain's renderer gives the region's mask); global factors have none.
"""

from dataclasses import dataclass
from typing import Literal

import torch


@dataclass(frozen=True)
class Factor:
    name: str
    kind: Literal["hue", "linear", "categorical"]
    low: float = 0.0
    high: float = 1.0
    classes: tuple[str, ...] = ()
    region: str | None = None


def sample_factors(factors: tuple[Factor, ...], n: int, generator: torch.Generator) -> torch.Tensor:
    """n independent uniform draws, [n, len(factors)] float32 (categorical columns hold the class index)."""
    u = torch.rand(n, len(factors), generator=generator)
    out = torch.empty_like(u)
    for i, f in enumerate(factors):
        if f.kind == "categorical":
            out[:, i] = torch.floor(u[:, i] * len(f.classes)).clamp(max=len(f.classes) - 1)
        else:
            out[:, i] = f.low + (f.high - f.low) * u[:, i]
    return out
