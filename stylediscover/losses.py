"""ContraFeat losses: contrast of deep-feature changes (binary and prototype variants) + diversity.

A feature change Δ is one [B, C, H, W] map per feature layer. Definitions (docs/DESIGN.md §2):
  cosine      c(h, w) = â·b̂ with x̂ = x / sqrt(Σ_c x² + 1e-12) over channels
  focus mask  m(h, w) = (‖Δ(:, h, w)‖ − min) / (max − min + 1e-6)            (ones when disabled)
  similarity  S(Δa, Δb) = Σ_hw (m_a m_b c)² / (Σ_hw m_a m_b + 1e-6)            (sign-invariant)
Forms:
  linear   the reference losses, summed over layers:
           binary    L = Σ_l mean_i [−S(Δq_i, Δp_i) + S(Δq_i, Δn_i)]
           prototype L = Σ_l [−mean_i S(Δ_i, Π_{k_i}) + mean_{i, k≠k_i} S(Δ_i, Π_k)]
  infonce  with temperature τ on layer-summed similarities S = Σ_l S_l:
           binary    anchor Δq_i, positive Δp_i, negatives every Δp_j and Δn_j of the batch made
                     by a direction other than k_i
           prototype cross-entropy over the K directions of logits S(Δ_i, Π_k) / τ
Prototypes: M ≥ 1 learned images per direction, P = tanh(θ) [3, H, W]; a direction's similarity is
pooled over its M prototypes by `max` (default: a change matches a direction when it matches any of
its patterns) or `mean`. Prototypes start at θ ~ N(0, prototype_init_std²) (the authors': 0.01). Mirroring replaces
the prototypes by −flip(P) with probability 0.5: one coin per step for all of them (`mirror_coin: step`, the
authors') or one per prototype.
Diversity: mean_b Σ_{j≠k} cos(vec D_j, vec D_k)² over the flattened L×d deltas.
"""

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from stylediscover.numbers import FiniteFloat

Features = list[torch.Tensor]


class LossConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    variant: Literal["binary", "prototype"] = "binary"
    form: Literal["linear", "infonce"] = "linear"
    temperature: FiniteFloat = Field(0.5, gt=0, le=1e4, description="τ of the InfoNCE form")
    focus_mask: bool = True
    prototypes_per_direction: int = Field(1, ge=1, le=64, description="M")
    pool: Literal["max", "mean"] = "max"
    mirror_prototypes: bool = True
    mirror_coin: Literal["step", "prototype"] = Field("step", description="one mirroring coin per step (the "
                                                      "authors') or per prototype")
    prototype_init_std: FiniteFloat = Field(0.01, gt=0, le=10,
                                            description="θ ~ N(0, std²) at the start (the authors': 0.01)")
    diversity_weight: FiniteFloat = Field(0.1, ge=0, le=1e4, description="λ_div")


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / torch.sqrt(x.square().sum(dim=1, keepdim=True) + 1e-12)


def focus_mask(delta: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] → [B, H, W] in [0, 1]: where the change is, by its per-position norm."""
    norm = delta.norm(dim=1)
    low = norm.flatten(1).min(dim=1).values.view(-1, 1, 1)
    high = norm.flatten(1).max(dim=1).values.view(-1, 1, 1)
    return (norm - low) / (high - low + 1e-6)


def _mask(delta: torch.Tensor, focus: bool) -> torch.Tensor:
    return focus_mask(delta) if focus else delta.new_ones(delta.shape[0], *delta.shape[2:])


def similarity(a: torch.Tensor, b: torch.Tensor, focus: bool = True) -> torch.Tensor:
    """Paired S(a_i, b_i) for a, b [N, C, H, W] → [N]."""
    c = (_unit(a) * _unit(b)).sum(dim=1)
    m = _mask(a, focus) * _mask(b, focus)
    return (m * c).square().sum(dim=(1, 2)) / (m.sum(dim=(1, 2)) + 1e-6)


def pairwise_similarity(a: torch.Tensor, b: torch.Tensor, focus: bool = True) -> torch.Tensor:
    """All pairs S(a_i, b_j) for a [N, C, H, W], b [M, C, H, W] → [N, M]."""
    c = torch.einsum("nchw,mchw->nmhw", _unit(a), _unit(b))
    m = _mask(a, focus).unsqueeze(1) * _mask(b, focus).unsqueeze(0)
    return (m * c).square().sum(dim=(2, 3)) / (m.sum(dim=(2, 3)) + 1e-6)


def binary_loss(dq: Features, dp: Features, dn: Features, k: torch.Tensor, k_neg: torch.Tensor,
                cfg: LossConfig) -> torch.Tensor:
    """dq, dp, dn: per-layer changes [N, C, H, W] of the anchor, positive and negative edits; k, k_neg [N]."""
    if cfg.form == "linear":
        return sum((-similarity(q, p, cfg.focus_mask) + similarity(q, n, cfg.focus_mask)).mean()
                   for q, p, n in zip(dq, dp, dn))
    pos = sum(similarity(q, p, cfg.focus_mask) for q, p in zip(dq, dp))
    neg = sum(pairwise_similarity(q, torch.cat([p, n]), cfg.focus_mask) for q, p, n in zip(dq, dp, dn))
    other = torch.cat([k, k_neg]).unsqueeze(0) != k.unsqueeze(1)
    logits = torch.cat([pos.unsqueeze(1), neg.masked_fill(~other, float("-inf"))], dim=1) / cfg.temperature
    return -logits.log_softmax(dim=1)[:, 0].mean()


class Prototypes(nn.Module):
    """M learned variation-pattern images per direction: P = tanh(θ) [K·M, 3, H, W] in [-1, 1]."""

    def __init__(self, num_directions: int, per_direction: int, resolution: int, init_std: float = 0.01,
                 channels: int = 3):
        super().__init__()
        self.per_direction = per_direction
        self.theta = nn.Parameter(torch.randn(num_directions * per_direction, channels, resolution, resolution)
                                  * init_std)

    def forward(self, mirror: bool = False, coin: str = "step") -> torch.Tensor:
        """The prototype images; with `mirror`, each replaced by −flip(P) on heads of one coin per step or per
        prototype (`coin`), tossed on the CPU so that resumes are bit-identical."""
        images = torch.tanh(self.theta)
        if mirror:
            flip = (torch.rand(1 if coin == "step" else images.shape[0]) < 0.5).to(images.device)
            images = torch.where(flip.view(-1, 1, 1, 1), -images.flip(-1), images)
        return images


def prototype_similarities(deltas: Features, prototype_features: Features, per_direction: int, pool: str,
                           focus: bool) -> list[torch.Tensor]:
    """Per-layer S(Δ_i, Π_k) pooled over each direction's prototypes: list of [N, K]."""
    out = []
    for delta, proto in zip(deltas, prototype_features):
        proto = F.interpolate(proto, size=delta.shape[-2:], mode="bilinear", align_corners=False)
        s = pairwise_similarity(delta, proto, focus)
        s = s.view(s.shape[0], -1, per_direction)
        out.append(s.amax(dim=2) if pool == "max" else s.mean(dim=2))
    return out


def prototype_loss(deltas: Features, prototype_features: Features, k: torch.Tensor, cfg: LossConfig) -> torch.Tensor:
    """deltas: per-layer changes [N, C, H, W]; prototype_features: per-layer F(P) [K·M, C, H', W']; k [N]."""
    sims = prototype_similarities(deltas, prototype_features, cfg.prototypes_per_direction, cfg.pool, cfg.focus_mask)
    if cfg.form == "infonce":
        return F.cross_entropy(sum(sims) / cfg.temperature, k)
    own = F.one_hot(k, sims[0].shape[1]).bool()
    return sum(-s[own].mean() + s[~own].mean() for s in sims)


def diversity(deltas: torch.Tensor) -> torch.Tensor:
    """deltas [B, K, L, d] → mean_b Σ_{j≠k} cos(vec D_j, vec D_k)²."""
    v = F.normalize(deltas.flatten(2), dim=-1)
    gram = v @ v.transpose(1, 2)
    off = gram - torch.diag_embed(torch.diagonal(gram, dim1=1, dim2=2))
    return off.square().sum(dim=(1, 2)).mean()
