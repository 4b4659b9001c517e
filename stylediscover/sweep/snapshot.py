"""trials.jsonl in a sweep's folder: each trial as the driver last recorded it in MLflow (run id, attention, searched
params as MLflow keeps them, outcome, error, selected evaluation), one JSON object per line, so `sweep status` and
`best` answer without importing MLflow (about 2.5 s on a 2-core machine). The driver's MLflow callback rebuilds it
from MLflow whenever it starts (a driver killed between an MLflow write and this file's then leaves nothing stale
behind) and rewrites it, whole and atomically, right after each MLflow write that changes a trial's record. Imports
neither MLflow nor Ray."""

import json
import os
from dataclasses import asdict, replace
from pathlib import Path

from stylediscover.sweep.selection import TrialRecord

# Not .json: a restored Tune experiment copies the top-level .json and .pkl files of its folder to the driver's staging
# folder and syncs them back later, over whatever was written meanwhile.
SNAPSHOT_FILE = "trials.jsonl"


class TrialSnapshot:
    """The driver's copy of its trials' records (checkpoints left out: readers find them in Tune's storage)."""

    def __init__(self, folder: Path, records: list[TrialRecord]):
        """Starts from `records`, read from MLflow, and writes them to folder/trials.jsonl."""
        self.path = folder / SNAPSHOT_FILE
        self.records = {r.trial_id: replace(r, checkpoint=None) for r in records}
        self._write()

    def _write(self) -> None:
        tmp = self.path.with_name(f".{SNAPSHOT_FILE}.{os.getpid()}")
        entries = [{k: v for k, v in asdict(r).items() if k != "checkpoint"} for r in self.records.values()]
        tmp.write_text("".join(json.dumps(entry) + "\n" for entry in entries))
        os.replace(tmp, self.path)

    def opened(self, trial_id: str, run_id: str, attention: str, params: dict[str, str]) -> None:
        """A trial run was created (a reopened run keeps its record, as MLflow keeps its tags)."""
        if trial_id not in self.records:
            self.records[trial_id] = TrialRecord(trial_id, attention, float("nan"), 0, "running", params=params,
                                                 run_id=run_id)
            self._write()

    def evaluated(self, trial_id: str, result: dict) -> None:
        """An evaluation of the trial was logged; `result` as Tune reports it. MLflow keeps the values logged at the
        highest step; the selected step (best_step) never decreases with it, so the record keeps the values with the
        highest selected step, whatever order evaluations were logged in (a resume logs missed ones late)."""
        record = self.records[trial_id]
        figures = {"step": int(result["best_step"]), "score": float(result["best_score"]),
                   "n_discovered": int(result["best_n_discovered"]),
                   "robust_n_discovered": (int(result["best_robust_n_discovered"])
                                           if "best_robust_n_discovered" in result else None),
                   "weakest_margin": (float(result["best_weakest_margin"]) if "best_weakest_margin" in result
                                     else None)}
        if figures["step"] >= record.step and figures != {k: getattr(record, k) for k in figures}:
            self.records[trial_id] = replace(record, **figures)
            self._write()

    def ended(self, trial_id: str, outcome: str, error: str | None = None) -> None:
        """The trial's run ended with `outcome` (and `error`, which replaces the previous one when given)."""
        self.records[trial_id] = replace(self.records[trial_id], outcome=outcome,
                                         error=error or self.records[trial_id].error)
        self._write()


def read_snapshot(folder: Path) -> list[TrialRecord] | None:
    """The records in folder/trials.jsonl (without checkpoints); None when there is none, or it cannot be read: the
    sweep is then read from MLflow, which the file only mirrors."""
    try:
        return [TrialRecord(**json.loads(line)) for line in (folder / SNAPSHOT_FILE).read_text().splitlines()]
    except (OSError, ValueError, KeyError, TypeError):
        return None
