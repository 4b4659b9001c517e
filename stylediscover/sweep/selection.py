"""Choosing the best trial of a sweep and its Pareto front on (score, n_discovered), both maximised; a trial's
figures are those of its best evaluation (at `step`): score and n_discovered on the first validation set and, for
trials evaluated on several (eval.validation_sets), robust_n_discovered and weakest_margin over them (None otherwise,
see heldout.py)."""

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class TrialRecord:
    trial_id: str
    attention: str
    score: float
    n_discovered: int
    outcome: str
    step: int = 0
    checkpoint: Path | None = None
    params: dict = field(default_factory=dict)
    error: str = ""
    run_id: str = ""
    robust_n_discovered: int | None = None
    weakest_margin: float | None = None


# Each rule's ranking keys, most important first: (what a reader calls it, the TrialRecord attribute); a missing
# robust figure (a trial evaluated on one validation set) ranks below every present one.
RULE_KEYS = {
    "discovered_then_score": (("n_discovered", "n_discovered"), ("score", "score")),
    "n_discovered": (("n_discovered", "n_discovered"), ("score", "score")),
    "score": (("score", "score"), ("n_discovered", "n_discovered")),
    "robust_then_margin": (("robust count", "robust_n_discovered"), ("weakest margin", "weakest_margin"),
                           ("score", "score")),
}


def rule_key(record: TrialRecord, rule: str) -> tuple[float, ...]:
    """The record's ranking keys under `rule` (larger is better; None counts as -1)."""
    return tuple(-1 if getattr(record, attr) is None else getattr(record, attr) for _, attr in RULE_KEYS[rule])


def candidates(records: list[TrialRecord], attention_only: bool) -> list[TrialRecord]:
    """Trials with final metrics, restricted to attention-based navigators when asked."""
    return [r for r in records if r.outcome in ("finished", "stopped_early") and r.checkpoint is not None
            and (not attention_only or r.attention != "none")]


def select_best(records: list[TrialRecord], rule: str, attention_only: bool = True) -> TrialRecord | None:
    """The best candidate by `rule`; of tied ones, the smallest trial id (the same whatever order records come in)."""
    pool = sorted(candidates(records, attention_only), key=lambda r: r.trial_id)
    return max(pool, key=lambda r: rule_key(r, rule)) if pool else None


def pareto_front(records: list[TrialRecord]) -> list[TrialRecord]:
    """Records no other record beats on both score and n_discovered (ties kept), by decreasing score, then trial
    id."""
    def dominated(r: TrialRecord) -> bool:
        return any(o.score >= r.score and o.n_discovered >= r.n_discovered
                   and (o.score > r.score or o.n_discovered > r.n_discovered) for o in records)
    return sorted((r for r in records if not dominated(r)), key=lambda r: (-r.score, r.trial_id))
