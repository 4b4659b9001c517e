"""The embedded domains behind one interface: factors, a seeded renderer, the options that train their
networks, and where their shipped weights live. Nothing outside a domain's package names its contents;
callers look a domain up here by name.

This module imports nothing heavy (the CLI lists domains without torch); `get_domain` imports the
domain's package.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from stylediscover.factors import Factor

NAMES = ("shapes", "faces")


def weights_dir(name: str) -> Path:
    """The folder of a domain's shipped networks (generator, discriminator, predictor .safetensors)."""
    return Path(__file__).parent / name / "weights"


@dataclass(frozen=True)
class Domain:
    """One embedded domain.

    render(factors [B, F], resolution) → images [B, 3, R, R] in [-1, 1]; region_mask(factors, region,
    resolution) → bool [B, R, R], the pixels a local factor may change (None for a domain without local
    factors). `gan` and `predictor` are the option overrides of its shipped networks' training runs.
    """

    name: str
    factors: tuple[Factor, ...]
    resolution: int
    render: Callable[[torch.Tensor, int], torch.Tensor]
    region_mask: Callable[[torch.Tensor, str, int], torch.Tensor] | None = None
    gan: dict = field(default_factory=dict)
    predictor: dict = field(default_factory=dict)

    @property
    def factor_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.factors)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n independent factor draws [n, F]."""
        from stylediscover.factors import sample_factors

        return sample_factors(self.factors, n, generator)

    def render_seeded(self, n: int, seed: int, resolution: int | None = None,
                      chunk: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
        """n renders and their factors, deterministic from seed: ([n, 3, R, R], [n, F]), `chunk` at a time."""
        import torch

        factors = self.sample(n, torch.Generator().manual_seed(seed))
        r = resolution or self.resolution
        return torch.cat([self.render(part, r) for part in factors.split(chunk)]), factors

    def factor_sheet(self, seed: int, columns: int = 7, resolution: int | None = None) -> torch.Tensor:
        """One row per factor, each sweeping that factor over its range (hues over the circle, classes in turn)
        on the same seeded draw of the others: [len(factors) · columns, 3, R, R]."""
        import torch

        base = self.sample(1, torch.Generator().manual_seed(seed)).repeat(columns, 1)
        rows = []
        for i, f in enumerate(self.factors):
            values = base.clone()
            if f.kind == "categorical":
                values[:, i] = torch.arange(columns) % len(f.classes)
            elif f.kind == "hue":
                values[:, i] = torch.arange(columns) / columns
            else:
                values[:, i] = torch.linspace(f.low, f.high, columns)
            rows.append(self.render(values, resolution or self.resolution))
        return torch.cat(rows)


def get_domain(name: str) -> Domain:
    """The domain called `name` (one of NAMES); ValueError for any other."""
    if name not in NAMES:
        raise ValueError(f"unknown domain {name!r}; known: {', '.join(NAMES)}")
    return importlib.import_module(f"stylediscover.{name}.domain").DOMAIN
