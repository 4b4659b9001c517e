"""Disentanglement metrics from an attribute predictor P (docs/DESIGN.md §2).

For each direction k, N codes w (seeded, the same for every k, truncation ψ) are edited both ways,
x± = G(w ± s·D_k(w)), and the attribute response a_k = |mean(P(x+) − P(x−))| ∈ R^A is read per head:
  linear       |mean(v+ − v−)| / (high − low)                  (full range of the attribute = 1)
  hue          |mean(wrap(h+ − h−))| / 0.5, wrap into [−0.5, 0.5) turns (half a turn = 1)
  categorical  0.5 · Σ_c |mean(p+_c − p−_c)|                   (total variation of the mean change)
Each is Σ over the head's readings of |mean change| (one reading per linear or hue head, one per class), so the
signed mean changes c_k ∈ R^D (`mean_changes`, in those units) of several code sets of equal size average into
those of their union (`responses_of` turns either into a_k).
With ã_k = a_k / max_j a_kj, over the first SUMMARISED directions (the authors' evaluation notebooks):
  score        mean_k (1 − second-largest entry of ã_k)         higher is better
  n_discovered number of distinct attributes at the maximum of at least one direction (every attribute tied at a
               row's maximum counts)
A direction with no response at all (a_k = 0) has ã_k = NaN, as in the notebooks, and counts for nothing: it is
left out of the score's mean and discovers nothing (a score with no responding direction is 0).
"""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch
from pydantic import BaseModel, ConfigDict, Field

from stylediscover.numbers import FiniteFloat
from stylediscover.predictor import AttributePredictor

DeltaFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
SUMMARISED = 30
CPU_PASS_PIXELS = 32 * 32 * 32  # output pixels per pass on CPUs: 16 pairs (32 images) at 32 px


class MetricsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    samples: int = Field(200, ge=2, le=1_000_000, description="N codes per direction")
    scale: FiniteFloat = Field(1.0, gt=0, le=1e4, description="edit strength s in x± = G(w ± s·D_k(w))")
    truncation_psi: FiniteFloat = Field(0.5, ge=0, le=2)
    seed: int = Field(12345, ge=0, lt=2**63)
    batch: int = Field(100, ge=1, le=100_000, description="(direction, code) pairs per synthesis pass (on CPUs at most "
                       "CPU_PASS_PIXELS output pixels)")
    calibrate: bool = Field(False, description="per-direction strengths giving equal feature change "
                            "(see calibrate_scales)")
    calibration_samples: int = Field(32, ge=1, le=100_000)


def head_changes(predictor: AttributePredictor, plus: torch.Tensor, minus: torch.Tensor) -> torch.Tensor:
    """Raw predictor outputs of x+ and x− [N, W] → signed changes [N, D] per reading, in response units (see the
    module docstring; D = one per linear or hue head, one per class of a categorical head)."""
    p, m = predictor.read(plus), predictor.read(minus)
    out = []
    for head in predictor.config.heads:
        if head.kind == "linear":
            out.append(((p[head.name] - m[head.name]) / (head.high - head.low))[:, None])
        elif head.kind == "hue":
            out.append((((p[head.name] - m[head.name] + 0.5) % 1.0 - 0.5) / 0.5)[:, None])
        else:
            out.append(0.5 * (p[head.name] - m[head.name]))
    return torch.cat(out, dim=1)


def responses_of(predictor: AttributePredictor, changes: torch.Tensor) -> torch.Tensor:
    """Mean changes [..., D] (head_changes averaged over codes) → responses [..., A]: Σ |·| over each head's
    readings."""
    widths = [len(head.classes) if head.kind == "categorical" else 1 for head in predictor.config.heads]
    return torch.stack([part.abs().sum(dim=-1) for part in changes.split(widths, dim=-1)], dim=-1)


def head_responses(predictor: AttributePredictor, plus: torch.Tensor, minus: torch.Tensor) -> torch.Tensor:
    """Raw predictor outputs of x+ and x− [N, W] → a_k [A] (see module docstring)."""
    return responses_of(predictor, head_changes(predictor, plus, minus).mean(dim=0))


def codes(z_dim: int, samples: int, seed: int) -> torch.Tensor:
    """The metrics' latent codes z [samples, z_dim] of `seed`, drawn on the CPU."""
    return torch.randn(samples, z_dim, generator=torch.Generator().manual_seed(seed))


def _in_workers(fn: Callable[[int], torch.Tensor], jobs: range, device: torch.device) -> list[torch.Tensor]:
    """fn over jobs; on the CPU spread over torch.get_num_threads() worker threads of one intra-op thread each
    (independent passes keep both cores of a small machine busier than one pass split across them)."""
    threads = torch.get_num_threads() if device.type == "cpu" else 1
    if threads == 1 or len(jobs) == 1:
        return [fn(j) for j in jobs]
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(fn, jobs))
    finally:
        torch.set_num_threads(threads)


@torch.no_grad()
def mean_changes(generator, delta_fn: DeltaFn, num_directions: int, predictor: AttributePredictor, cfg: MetricsConfig,
                 scales: torch.Tensor | None = None) -> torch.Tensor:
    """The K × D signed mean changes (head_changes over cfg's N codes). delta_fn(ws [B, L, d], k [B]) → deltas
    [B, L, d]; scales [K] override cfg.scale.

    The K·N (direction, code) pairs, direction by direction, go through synthesis and the predictor in passes of
    cfg.batch pairs (both signs: 2·cfg.batch images); on CPUs of at most CPU_PASS_PIXELS output pixels, spread
    over worker threads (see _in_workers). Every image is computed on its own, so the passes only
    change how fast the matrix comes, not its values (beyond float32 rounding)."""
    device = generator.device
    ws_all = generator.mapping(codes(generator.z_dim, cfg.samples, cfg.seed).to(device),
                               truncation_psi=cfg.truncation_psi)
    strengths = (scales if scales is not None else torch.full((num_directions,), cfg.scale)).to(device)
    pairs = cfg.batch if device.type == "cuda" else max(1, min(cfg.batch, CPU_PASS_PIXELS // (
        2 * generator.resolution ** 2)))
    directions = torch.arange(num_directions, device=device).repeat_interleave(cfg.samples)
    code_index = torch.arange(cfg.samples, device=device).repeat(num_directions)

    def one_pass(start: int) -> torch.Tensor:
        k, ws = directions[start:start + pairs], ws_all[code_index[start:start + pairs]]
        d = strengths[k].view(-1, 1, 1) * delta_fn(ws, k)
        raw = predictor(generator.synthesis(torch.cat([ws + d, ws - d]), noise_mode="const"))
        return head_changes(predictor, raw[: len(ws)], raw[len(ws):])

    passes = _in_workers(one_pass, range(0, len(directions), pairs), device)
    return torch.cat(passes).view(num_directions, cfg.samples, -1).mean(dim=1).cpu()


def attribute_responses(generator, delta_fn: DeltaFn, num_directions: int, predictor: AttributePredictor,
                        cfg: MetricsConfig, scales: torch.Tensor | None = None) -> torch.Tensor:
    """The K × A response matrix on cfg's codes (see mean_changes for the arguments)."""
    return responses_of(predictor, mean_changes(generator, delta_fn, num_directions, predictor, cfg, scales))


@torch.no_grad()
def calibrate_scales(generator, delta_fn: DeltaFn, num_directions: int, features, cfg: MetricsConfig) -> torch.Tensor:
    """Strengths s_k [K] under which every direction changes the features equally.

    The change of a direction at strength s is the mean over feature layers of the mean squared
    difference F(G(w + s·D_k(w))) − F(G(w)) over `calibration_samples` codes. The target is the median
    change over directions at cfg.scale, so the overall edit size stays that of cfg.scale; two
    square-root updates (changes grow about quadratically in s for small edits) reach it, and s_k is
    kept within [cfg.scale / 10, 10 · cfg.scale].
    """
    z = codes(generator.z_dim, cfg.calibration_samples, cfg.seed + 1)
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
    """One scalar ordering evaluations: robust_n_discovered + weakest_margin + score / 1000 when the evaluation has
    them (over several validation sets; like the selection rule robust_then_margin, score breaking ties, as
    weakest_margin is 0 whenever some attribute is won on too few sets), else n_discovered + score (like the default
    rule discovered_then_score); score and weakest_margin are in [0, 1]."""
    if "robust_n_discovered" in metrics:
        return metrics["robust_n_discovered"] + metrics["weakest_margin"] + metrics["score"] / 1000
    return metrics["n_discovered"] + metrics["score"]
