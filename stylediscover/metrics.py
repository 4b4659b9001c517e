"""Disentanglement metrics from an attribute predictor P (docs/DESIGN.md §2).

For each direction k, N codes w (seeded, the same for every k, truncation ψ) are edited both ways,
x± = G(w ± s·D_k(w)), and the attribute response a_k = |mean(P(x+) − P(x−))| ∈ R^A is read per head:
  linear       |mean(v+ − v−)| / (high − low)                  (full range of the attribute = 1)
  hue          |mean(wrap(h+ − h−))| / 0.5, wrap into [−0.5, 0.5) turns (half a turn = 1)
  categorical  0.5 · Σ_c |mean(p+_c − p−_c)|                   (total variation of the mean change)
With ã_k = a_k / max_j a_kj, over the first SUMMARISED directions (the authors' evaluation notebooks):
  score        mean_k (1 − second-largest entry of ã_k)         higher is better
  n_discovered number of distinct attributes at the maximum of at least one direction (every attribute tied at a
               row's maximum counts)
A direction with no response at all (a_k = 0) has ã_k = NaN, as in the notebooks, and counts for nothing: it is
left out of the score's mean and discovers nothing (a score with no responding direction is 0).
"""

from collections.abc import Callable

import torch
from pydantic import BaseModel, ConfigDict, Field

from stylediscover.predictor import AttributePredictor

DeltaFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
SUMMARISED = 30


class MetricsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    samples: int = Field(200, ge=2, description="N codes per direction")
    scale: float = Field(1.0, gt=0, description="edit strength s in x± = G(w ± s·D_k(w))")
    truncation_psi: float = 0.5
    seed: int = 12345
    batch: int = Field(100, ge=1, description="codes per synthesis pass")
    calibrate: bool = Field(False, description="per-direction strengths giving equal feature change "
                            "(see calibrate_scales)")
    calibration_samples: int = Field(32, ge=1)


def head_responses(predictor: AttributePredictor, plus: torch.Tensor, minus: torch.Tensor) -> torch.Tensor:
    """Raw predictor outputs of x+ and x− [N, W] → a_k [A] (see module docstring)."""
    p, m = predictor.read(plus), predictor.read(minus)
    out = []
    for head in predictor.config.heads:
        if head.kind == "linear":
            out.append((p[head.name] - m[head.name]).mean().abs() / (head.high - head.low))
        elif head.kind == "hue":
            wrapped = (p[head.name] - m[head.name] + 0.5) % 1.0 - 0.5
            out.append(wrapped.mean().abs() / 0.5)
        else:
            out.append(0.5 * (p[head.name] - m[head.name]).mean(dim=0).abs().sum())
    return torch.stack(out)


@torch.no_grad()
def attribute_responses(generator, delta_fn: DeltaFn, num_directions: int, predictor: AttributePredictor,
                        cfg: MetricsConfig, scales: torch.Tensor | None = None) -> torch.Tensor:
    """The K × A response matrix. delta_fn(ws [B, L, d], k [B]) → deltas [B, L, d]; scales [K] override cfg.scale."""
    z = torch.randn(cfg.samples, generator.z_dim, generator=torch.Generator().manual_seed(cfg.seed))
    ws_all = generator.mapping(z.to(generator.device), truncation_psi=cfg.truncation_psi)
    rows = []
    for k in range(num_directions):
        s = float(scales[k]) if scales is not None else cfg.scale
        plus, minus = [], []
        for ws in ws_all.split(cfg.batch):
            d = s * delta_fn(ws, torch.full((len(ws),), k, dtype=torch.long, device=ws.device))
            images = generator.synthesis(torch.cat([ws + d, ws - d]), noise_mode="const")
            raw = predictor(images)
            plus.append(raw[: len(ws)])
            minus.append(raw[len(ws):])
        rows.append(head_responses(predictor, torch.cat(plus), torch.cat(minus)))
    return torch.stack(rows).cpu()


@torch.no_grad()
def calibrate_scales(generator, delta_fn: DeltaFn, num_directions: int, features, cfg: MetricsConfig) -> torch.Tensor:
    """Strengths s_k [K] under which every direction changes the features equally.

    The change of a direction at strength s is the mean over feature layers of the mean squared
    difference F(G(w + s·D_k(w))) − F(G(w)) over `calibration_samples` codes. The target is the median
    change over directions at cfg.scale, so the overall edit size stays that of cfg.scale; two
    square-root updates (changes grow about quadratically in s for small edits) reach it, and s_k is
    kept within [cfg.scale / 10, 10 · cfg.scale].
    """
    z = torch.randn(cfg.calibration_samples, generator.z_dim, generator=torch.Generator().manual_seed(cfg.seed + 1))
    ws = generator.mapping(z.to(generator.device), truncation_psi=cfg.truncation_psi)
    base = features(generator.synthesis(ws, noise_mode="const"))

    def change(k: int, s: float) -> float:
        d = s * delta_fn(ws, torch.full((len(ws),), k, dtype=torch.long, device=ws.device))
        feats = features(generator.synthesis(ws + d, noise_mode="const"))
        return float(sum((f - b).square().mean() for f, b in zip(feats, base)) / len(base))

    scales = torch.full((num_directions,), cfg.scale)
    changes = torch.tensor([change(k, cfg.scale) for k in range(num_directions)])
    target = changes.median()
    for _ in range(2):
        scales = (scales * torch.sqrt(target / changes.clamp(min=1e-12))).clamp(cfg.scale / 10, cfg.scale * 10)
        changes = torch.tensor([change(k, float(scales[k])) for k in range(num_directions)])
    return scales


def normalised(responses: torch.Tensor) -> torch.Tensor:
    """ã_k = a_k / max_j a_kj, [K, A]; rows without any response are NaN."""
    top = responses.amax(dim=1, keepdim=True)
    return torch.where(top > 0, responses / top, torch.full_like(responses, float("nan")))


def score(responses: torch.Tensor) -> float:
    """mean_k (1 − second-largest entry of ã_k) over the first SUMMARISED responding directions."""
    rows = normalised(responses[:SUMMARISED])
    rows = rows[~rows.isnan().any(dim=1)]
    if len(rows) == 0:
        return 0.0
    return float((1 - rows.topk(2, dim=1).values[:, 1]).mean())


def n_discovered(responses: torch.Tensor) -> int:
    """Number of distinct attributes at the maximum of some of the first SUMMARISED responding directions."""
    rows = normalised(responses[:SUMMARISED])
    return int((rows == 1).any(dim=0).sum())


def dominant_attributes(responses: torch.Tensor, names: list[str]) -> list[str]:
    return [names[i] for i in responses.argmax(dim=1).tolist()]


def objective(metrics: dict) -> float:
    """n_discovered + score: one scalar ordering trials like the default selection rule (score ∈ [0, 1])."""
    return metrics["n_discovered"] + metrics["score"]
