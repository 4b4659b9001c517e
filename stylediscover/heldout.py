"""The held-out split, and robust discovery over test sets of codes.

Validation codes pick a trial's best evaluation and the sweep's selection: eval.validation_sets sets of
N = metrics.samples codes, of the seeds `validation_seeds(metrics.seed, V)` (the first is metrics.seed itself), and
the calibration codes of seed metrics.seed + 1. Test codes are behind every reported figure: R sets (default
TEST_SETS) of TEST_SAMPLES codes each, of the seeds `heldout_seeds(metrics.seed, R)`, which are derived from the
validation seed and never equal any validation seed (up to MAX_VALIDATION_SETS) or the calibration seed, so the two
never coincide.

Per test set and attribute j (ã_k = a_k / max_i a_ki over the first SUMMARISED responding directions, as
metrics.n_discovered):
  discovered  j is the maximum of some direction's ã_k (ties at a row's maximum count for each tied attribute)
  margin      1 − the second-largest entry of the winning direction's ã_k: how far its runner-up attribute stays
              below the attribute it wins (0 for a tie); with several winners, the largest margin
Over R sets an attribute is *robustly discovered* when it is discovered with a margin ≥ ROBUST_MARGIN on at least
ROBUST_SHARE of the sets (4 of 5), that is when the margin it reaches on that many sets (`margin_at_share`: the 4th
largest of 5, 0 for a set where it is not discovered) is ≥ ROBUST_MARGIN. The smallest margin_at_share over the
attributes (`weakest_margin`) says how far an export is from losing (≥ ROBUST_MARGIN) or gaining (<) its last factor.

On validation codes (a trial's evaluation over eval.validation_sets V sets, each of metrics.samples N codes, fewer
than a test set's), margins per set flatter a factor that barely wins: with 5 sets of 200 codes, an object-scale
winner whose margin is 0.01 on the 1000 codes together and 0.02–0.08 on test sets of 1000 reached 0.42, 0.17, 0.17
and 0.13 on four of the sets (evaluation/results/validation-margins.md). An evaluation therefore takes each
attribute's margin from the V·N codes pooled (metrics.mean_changes of the sets averaged; 0 where they do not
discover it), and counts it only where the attribute is discovered on ROBUST_SHARE of the sets:
`robust_summary(..., pooled=...)`.

ROBUST_MARGIN = 0.15, from measurement on the committed quickstart export (evaluation/results/quickstart-heldout.md,
5 sets of 1000 codes): between sets, a direction's normalised response ã_kj varies with a standard deviation of
0.0036 (median over the 96 direction × attribute entries), 0.037 at most, and the margin of a factor's winning
direction with 0.028 at most (object_x). 0.15 is 4× the largest spread of any normalised response and 5× that of
any winning margin, so a margin that clears it on 4 of 5 sets is not a draw of the codes, while a factor whose
winner is about as strong on another attribute (the quickstart's object scale: margins 0.02–0.03 on the 2 sets it
is won at all) does not count. On that export any threshold between 0.03 and 0.64 gives the same table.
"""

import itertools
import math
import statistics

import numpy as np
import torch

from stylediscover.metrics import SUMMARISED, n_discovered, normalised, score

TEST_SETS = 5
TEST_SAMPLES = 1000
TEST_STREAM = 0x7E57  # the entropy word that separates test seeds from any seed a user gives
VALIDATION_STREAM = 0x7A11  # likewise for the validation seeds after the first
MAX_VALIDATION_SETS = 20
ROBUST_MARGIN = 0.15
ROBUST_SHARE = 0.8


def _stream(validation_seed: int, stream: int, sets: int, reserved: set[int]) -> list[int]:
    """`sets` distinct numpy SeedSequence words of (validation_seed, stream, i), i = 0, 1, ..., skipping `reserved`."""
    seeds: list[int] = []
    for i in itertools.count():
        if len(seeds) == sets:
            break
        word = int(np.random.SeedSequence([validation_seed % 2**64, stream, i]).generate_state(1)[0])
        if word not in reserved and word not in seeds:
            seeds.append(word)
    return seeds


def validation_seeds(validation_seed: int, sets: int) -> list[int]:
    """`sets` (≤ MAX_VALIDATION_SETS) distinct seeds of validation codes: `validation_seed`, then words of
    VALIDATION_STREAM, skipping the calibration seed (+ 1)."""
    if not 1 <= sets <= MAX_VALIDATION_SETS:
        raise ValueError(f"validation sets must be 1 to {MAX_VALIDATION_SETS}, got {sets}")
    return [validation_seed] + _stream(validation_seed, VALIDATION_STREAM, sets - 1,
                                       {validation_seed, validation_seed + 1})


def heldout_seeds(validation_seed: int, sets: int = TEST_SETS) -> list[int]:
    """`sets` distinct seeds of test codes for validation seed `validation_seed`: words of TEST_STREAM, skipping
    every validation seed it can have (validation_seeds, MAX_VALIDATION_SETS) and its calibration seed (+ 1)."""
    reserved = set(validation_seeds(validation_seed, MAX_VALIDATION_SETS)) | {validation_seed + 1}
    return _stream(validation_seed, TEST_STREAM, sets, reserved)


def sets_needed(sets: int, share: float = ROBUST_SHARE) -> int:
    """Sets of `sets` on which an attribute must win with the margin to be robustly discovered (4 of 5)."""
    return math.ceil(round(share * sets, 9))


def factor_margins(responses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Responses [K, A] of one code set → margins [A] (NaN: not discovered) and the winning direction [A] (−1:
    none), over the first SUMMARISED responding directions (see the module docstring)."""
    rows = normalised(responses[:SUMMARISED])
    responding = ~rows.isnan().any(dim=1)
    margin = 1 - rows.nan_to_num(0).topk(min(2, rows.shape[1]), dim=1).values[:, -1]
    wins = (rows == 1) & responding[:, None]
    candidate = torch.where(wins, margin[:, None], torch.full_like(rows, -1.0))
    best, winner = candidate.max(dim=0)
    found = best >= 0
    return torch.where(found, best, torch.nan), torch.where(found, winner, -1)


def _spread(values: list[float]) -> dict:
    """mean, std (sample; 0 for one value) and the values."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "values": values}


def robust_summary(per_set: list[torch.Tensor], attributes: list[str], margin: float = ROBUST_MARGIN,
                   share: float = ROBUST_SHARE, pooled: torch.Tensor | None = None) -> dict:
    """Responses [K, A] of R test sets → n_discovered and score as mean ± std over the sets, and per attribute
    (`factors`) and per direction (`directions`) what the sets agree on; `robust_n_discovered` counts the
    attributes discovered with a margin ≥ `margin` on at least `share` of the sets; `weakest_margin` is the smallest
    margin_at_share (see the module docstring).

    With `pooled`, the responses [K, A] of the sets' codes together (validation sets: see the module docstring),
    an attribute's margin_at_share is its margin there (0 where the pooled codes do not discover it) when it is
    discovered on at least `share` of the sets (else 0), and it is robust when it is discovered on that many sets
    with that margin ≥ `margin`; `sets_with_margin` still counts the sets on which its own margin clears `margin`."""
    pairs = [factor_margins(r) for r in per_set]
    margins = torch.stack([m for m, _ in pairs])
    winners = torch.stack([w for _, w in pairs])
    needed = sets_needed(len(per_set), share)
    pooled_margins = None if pooled is None else factor_margins(pooled)[0].nan_to_num(0)
    factors = []
    for j, name in enumerate(attributes):
        found = ~margins[:, j].isnan()
        clear = int((found & (margins[:, j] >= margin)).sum())
        enough = int(found.sum()) >= needed
        if pooled_margins is None:
            reached = float(margins[:, j].nan_to_num(0).sort(descending=True).values[needed - 1])
        else:
            reached = float(pooled_margins[j]) if enough else 0.0
        factors.append({"attribute": name, "share": float(found.float().mean()),
                        "margins": [None if m.isnan() else float(m) for m in margins[:, j]],
                        "directions": [int(w) if w >= 0 else None for w in winners[:, j]],
                        "sets_with_margin": clear, "margin_at_share": reached,
                        "robust": clear >= needed if pooled is None else enough and reached >= margin})
    directions = []
    for k in range(len(per_set[0])):
        rows = [normalised(r[k:k + 1])[0] for r in per_set]
        active = [row for row in rows if not row.isnan().any()]
        dominant = [attributes[int(row.argmax())] if not row.isnan().any() else None for row in rows]
        gaps = [float(1 - row.topk(min(2, len(row))).values[-1]) for row in active]
        directions.append({"index": k, "dominant_attribute": max(set(dominant), key=dominant.count),
                           "dominant": dominant, "margin": _spread(gaps) if gaps else None})
    return {"sets": len(per_set), "robust_margin": margin, "robust_sets": needed,
            "n_discovered": _spread([float(n_discovered(r)) for r in per_set]),
            "score": _spread([score(r) for r in per_set]),
            "robust_n_discovered": sum(f["robust"] for f in factors),
            "weakest_margin": min(f["margin_at_share"] for f in factors), "factors": factors, "directions": directions}


def robust_table(heldout: dict) -> list[str]:
    """Markdown lines: one row per attribute (share of sets discovered, margin per set, winning directions,
    robust), then n_discovered and score as mean ± std over the sets."""
    lines = ["| attribute | discovered on | margin per set | winning direction per set | robust |",
             "|---|---|---|---|---|"]
    for f in heldout["factors"]:
        margins = ", ".join("–" if m is None else f"{m:.3f}" for m in f["margins"])
        winners = ", ".join("–" if d is None else str(d) for d in f["directions"])
        lines.append(f"| {f['attribute']} | {round(f['share'] * heldout['sets'])} of {heldout['sets']} | {margins} | "
                     f"{winners} | {'yes' if f['robust'] else 'no'} |")
    found, scores = heldout["n_discovered"], heldout["score"]
    return lines + ["", f"n_discovered {found['mean']:.2f} ± {found['std']:.2f} (per set: "
                    f"{', '.join(str(int(v)) for v in found['values'])}); score {scores['mean']:.3f} ± "
                    f"{scores['std']:.3f}; robustly discovered {heldout['robust_n_discovered']} of "
                    f"{len(heldout['factors'])} (margin ≥ {heldout['robust_margin']} on ≥ {heldout['robust_sets']} "
                    f"of {heldout['sets']} sets)"]


def heldout_block(result: dict) -> dict:
    """A held-out evaluation (assessment.assess_heldout) without its response matrices: the manifest's `heldout`
    block (seeds, samples, figures per set, per attribute and per direction)."""
    return {k: v for k, v in result.items() if k not in ("responses", "attributes", "scales")}


def headline(result: dict) -> dict:
    """The figures a sweep summary carries: test codes, n_discovered and score as mean ± std over the sets, the
    robustly discovered attributes."""
    return {"sets": result["sets"], "samples": result["samples"], "seeds": result["seeds"],
            "n_discovered_mean": result["n_discovered"]["mean"], "n_discovered_std": result["n_discovered"]["std"],
            "score_mean": result["score"]["mean"], "score_std": result["score"]["std"],
            "robust_n_discovered": result["robust_n_discovered"],
            "robust": [f["attribute"] for f in result["factors"] if f["robust"]]}


def heldout_metrics(summary: dict) -> dict[str, float]:
    """The numbers of a headline (see `headline`) as the sweep's parent-run metrics: test_n_discovered_mean,
    test_n_discovered_std, test_score_mean, test_score_std, robust_n_discovered."""
    return {f"test_{k}": summary[k] for k in ("n_discovered_mean", "n_discovered_std", "score_mean", "score_std")} | {
        "robust_n_discovered": summary["robust_n_discovered"]}
