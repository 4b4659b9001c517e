"""The sweeps under a storage path, read from their files only (spec.json, summary.json, Tune's trial folders):
nothing is imported from Ray or MLflow and nothing is written, so listing is fast and read-only."""

import json
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class SweepEntry:
    name: str
    started: str
    planned: int
    trial_folders: int
    state: str
    selected: str
    problem: str = ""


def _selected(summary: dict) -> str:
    if "trial_id" not in summary:
        return "no selection"
    robust = (f", robustly {summary['robust_n_discovered']} over the validation sets, weakest margin "
              f"{summary['weakest_margin']:.2f}" if summary.get("weakest_margin") is not None else "")
    text = f"{summary['trial_id']} ({summary['n_discovered']} found, score {summary['score']:.3f}{robust})"
    test = summary.get("heldout")
    return text + (f"; held-out {test['n_discovered_mean']:.1f} ± {test['n_discovered_std']:.1f} found, "
                   f"{test['robust_n_discovered']} robustly" if test else "")


def list_sweeps(storage_path: Path) -> list[SweepEntry]:
    """One entry per folder holding a spec.json, oldest first; an unreadable spec or summary is reported, not
    raised."""
    entries = []
    for spec_path in sorted(Path(storage_path).glob("*/spec.json"), key=lambda p: p.stat().st_mtime):
        folder = spec_path.parent
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(spec_path.stat().st_mtime))
        trials = sum(1 for p in folder.glob("run_trial_*") if p.is_dir())
        try:
            planned = int(json.loads(spec_path.read_text())["num_samples"])
            summary_path = folder / "summary.json"
            summary = json.loads(summary_path.read_text()) if summary_path.is_file() else None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            entries.append(SweepEntry(folder.name, started, 0, trials, "unreadable", "", f"{type(exc).__name__}"))
            continue
        state = "finished" if summary is not None else "running or interrupted"
        entries.append(SweepEntry(folder.name, started, planned, trials, state,
                                  _selected(summary) if summary is not None else ""))
    return entries
