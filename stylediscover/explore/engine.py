"""Rendering for the explorer: an export loaded with its generator, base W+ codes cached per seed set, and images
of combined edits G(ws + Σ_k s_k · D_k(ws)), s_k = m_k × direction k's recommended strength (m_k: a slider).

The server and `stylediscover edit --recipe` render through `seed_codes` and `render_strengths` with
RENDER_THREADS intra-op threads, so a recipe reproduces the page's image bit for bit.
"""

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from pydantic import ValidationError

from stylediscover.directions import Directions, direction_entries, display_order, load_directions, row_label
from stylediscover.edit import render_edits
from stylediscover.errors import InputError, StylediscoverError, summary
from stylediscover.explore.sources import ExportRef
from stylediscover.features import FeatureConfig
from stylediscover.generators import Generator, generator_path, load_generator
from stylediscover.generators.registry import sha256_of
from stylediscover.legends import LABEL_LEGEND

RENDER_THREADS = 1
MAX_MULTIPLE = 10.0


def seed_codes(generator: Generator, seeds: Sequence[int], truncation: float) -> torch.Tensor:
    """ws [B, L, d] of z ~ N(0, I) seeded per image (as `generators sample`), truncated towards w_avg by ψ."""
    z = torch.stack([torch.randn(generator.z_dim, generator=torch.Generator().manual_seed(s)) for s in seeds])
    return generator.mapping(z, truncation_psi=truncation)


def render_strengths(generator: Generator, ws: torch.Tensor, noise: list[torch.Tensor], all_deltas: torch.Tensor,
                     strengths: dict[int, float]) -> torch.Tensor:
    """Images [B, 3, R, R] in [-1, 1] of G(ws + Σ_k strengths[k] · all_deltas[:, k]) for ws [B, L, d] and
    all_deltas [B, K, L, d] (absolute strengths; `noise`: per-layer maps, or [] for the generator's own)."""
    coefficients = torch.zeros(all_deltas.shape[1])
    for k, strength in strengths.items():
        coefficients[k] = strength
    delta = torch.einsum("k,bkld->bld", coefficients, all_deltas)
    return render_edits(generator, ws, noise, [delta], [1.0])


@dataclass(frozen=True)
class LoadedGenerator:
    generator: Generator
    source: str
    class_index: int | None
    sha256: str

    @property
    def key(self) -> str:
        """Identifies the network (file content and class): exports with equal keys share codes and projections."""
        return f"{self.sha256}:{self.class_index}"


class GeneratorPool:
    """Generators by (source, class), each loaded once and shared by the exports that use it."""

    def __init__(self):
        self._loaded: dict[tuple[str, int | None], LoadedGenerator] = {}

    def get(self, source: str, class_index: int | None) -> LoadedGenerator:
        key = (source, class_index)
        if key not in self._loaded:
            path = generator_path(source)
            self._loaded[key] = LoadedGenerator(load_generator(path, class_index).eval(), source, class_index,
                                                sha256_of(path))
        return self._loaded[key]


class LoadedExport:
    """An export ready to render: its directions checked against its generator, entries rated and ordered."""

    def __init__(self, ref: ExportRef, pool: GeneratorPool):
        self.ref = ref
        manifest = load_directions(ref.path).manifest
        try:
            config = manifest["config"]
            source, class_index = str(config["generator"]), config.get("class_index")
            self.features = FeatureConfig.model_validate(config["features"])
        except (KeyError, TypeError, ValidationError) as exc:
            raise InputError(ref.path.with_suffix(".json"), f"not a directions manifest ({summary(exc)})") from None
        try:
            self.generator = pool.get(source, class_index)
        except StylediscoverError as exc:
            raise InputError(ref.path, f"its generator {source!r} cannot be used: {exc}") from None
        self.directions: Directions = load_directions(ref.path, self.generator.generator)
        self.sha256 = sha256_of(ref.path)
        try:
            self.entries = self._rated_entries()
        except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as exc:
            raise InputError(ref.path.with_suffix(".json"), f"direction entries unusable ({summary(exc)})",
                             "directions") from None
        self.codes = functools.lru_cache(maxsize=16)(self._codes)

    def _rated_entries(self) -> list[dict]:
        """Manifest entries rated with the current quality thresholds (older exports lack quality and margin)."""
        manifest, k_dirs = self.directions.manifest, len(self.directions.deltas)
        if len(manifest["directions"]) != k_dirs:
            raise ValueError(f"{len(manifest['directions'])} entries for {k_dirs} directions")
        scales = self.directions.strengths()
        responses = torch.tensor([e["responses"] for e in manifest["directions"]])
        return direction_entries(responses, self.directions.attention, manifest["attributes"], scales)

    @torch.inference_mode()
    def _codes(self, seeds: tuple[int, ...], truncation: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Cached base codes ws [B, L, d] and every direction's deltas at them [B, K, L, d]."""
        ws = seed_codes(self.generator.generator, seeds, truncation)
        return ws, self.directions.all_deltas(ws)

    def strengths(self, multiples: dict[int, float]) -> dict[int, float]:
        """Absolute strengths from multiples of each direction's recommended strength, checked."""
        k_dirs = len(self.directions.deltas)
        for k, m in multiples.items():
            if not 0 <= k < k_dirs:
                raise InputError(self.ref.label, f"no direction {k} (0..{k_dirs - 1})", "strengths")
            if not (math.isfinite(m) and abs(m) <= MAX_MULTIPLE):
                raise InputError(self.ref.label, f"direction {k}: {m} is not within ±{MAX_MULTIPLE:g}", "strengths")
        return {k: m * self.directions.strength(k) for k, m in multiples.items() if m != 0}

    @torch.inference_mode()
    def render_seeds(self, seeds: Sequence[int], truncation: float, multiples: dict[int, float]) -> torch.Tensor:
        """Edited samples [B, 3, R, R] in [-1, 1]."""
        ws, all_deltas = self.codes(tuple(seeds), float(truncation))
        return render_strengths(self.generator.generator, ws, [], all_deltas, self.strengths(multiples))

    @torch.inference_mode()
    def render_latent(self, ws: torch.Tensor, noise: list[torch.Tensor], multiples: dict[int, float]) -> torch.Tensor:
        """A projected image ws [1, L, d] with its noise maps, edited: [1, 3, R, R] in [-1, 1]."""
        return render_strengths(self.generator.generator, ws, noise, self.directions.all_deltas(ws),
                                self.strengths(multiples))

    def summary(self) -> dict:
        """What the page needs: labels, resolution and the directions in display order (clean first)."""
        by_index = {e["index"]: e for e in self.entries}
        return {"id": self.ref.id, "label": self.ref.label, "path": str(self.ref.path), "legend": LABEL_LEGEND,
                "generator": self.generator.source, "generator_key": self.generator.key,
                "resolution": self.generator.generator.resolution,
                "directions": [{"index": k, "label": row_label(by_index[k]),
                                "attribute": by_index[k]["dominant_attribute"], "quality": by_index[k]["quality"],
                                "layers": by_index[k]["layers"], "strength": self.directions.strength(k)}
                               for k in display_order(self.entries)]}
