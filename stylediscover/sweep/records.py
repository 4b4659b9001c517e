"""A sweep's saved spec and its trials as MLflow (or the driver's snapshot of it, trials.jsonl) and Tune's storage
record them, without importing Ray: what `sweep status`, `best` and `export` read, and what the driver's selection
starts from. MLflow is imported only where MLflow is read."""

import difflib
import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from pydantic import ValidationError

from stylediscover.errors import InputError, from_validation_error
from stylediscover.sweep.selection import TrialRecord
from stylediscover.sweep.settings import SweepSettings
from stylediscover.sweep.snapshot import read_snapshot

if TYPE_CHECKING:
    from stylediscover.sweep.spec import SweepSpec
    from stylediscover.sweep.tracking import SweepTracker

SavedT = TypeVar("SavedT", bound=SweepSettings)
SUMMARY_FILE = "summary.json"


def locate(sweep: str, storage_path: str) -> tuple[str, Path]:
    """A sweep given by name (under `storage_path`) or by folder (a path holding spec.json, as `explore` takes it) →
    its name and its storage folder (absolute). A missing sweep is refused naming the folder searched, the sweeps
    there nearest to the name, and how to point elsewhere."""
    given = Path(sweep)
    if (given / "spec.json").is_file():
        return given.resolve().name, given.resolve().parent
    folder = Path(storage_path).resolve()
    if "/" in sweep or sweep in (".", ".."):
        raise InputError(given, "not a sweep folder (no spec.json in it); give a sweep's folder, or its name under "
                         "--storage-path")
    if not (folder / sweep / "spec.json").is_file():
        names = sorted(p.parent.name for p in folder.glob("*/spec.json"))
        near = sorted(difflib.get_close_matches(sweep, names, n=3, cutoff=0.5)) or names[-3:]
        there = f"; sweeps there: {', '.join(near)}" if near else ("; no sweeps there" if folder.is_dir() else
                                                                     "; that folder does not exist")
        raise InputError(folder / sweep, f"no sweep named {sweep!r} under {folder} (the --storage-path, default "
                         f"runs/sweeps relative to where the command runs){there}; pass --storage-path DIR or the "
                         "sweep's folder")
    return sweep, folder


def finished_summary(storage: Path) -> dict | None:
    """The summary.json of a sweep whose finish completed without failure (written last, so complete), else None."""
    try:
        summary = json.loads((Path(storage) / SUMMARY_FILE).read_text())
    except (OSError, ValueError):
        return None
    return summary if isinstance(summary, dict) and "failure" not in summary else None


def _load_saved(name: str, storage_path: str, model: type[SavedT]) -> SavedT:
    """spec.json of the sweep `name` (or folder, see `locate`) validated as `model`, its storage path set to where it
    was found (so a sweep is found from any directory); a missing, empty or corrupt spec.json is refused naming the
    file."""
    name, folder = locate(name, storage_path)
    path = folder / name / "spec.json"
    try:
        data = json.loads(path.read_text())
        if model is SweepSettings and isinstance(data, dict):
            data.pop("base", None)
        saved = model.model_validate(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"not a saved sweep spec ({'empty file' if not path.read_bytes().strip() else exc}); "
                         "restore it or start the sweep again under another name") from None
    except ValidationError as exc:
        raise from_validation_error(path, exc) from None
    if saved.name != name:
        raise InputError(path, f"holds the sweep {saved.name!r}, not {name!r}", "name")
    return saved.model_copy(update={"storage_path": str(folder)})


def load_saved_settings(name: str, storage_path: str) -> SweepSettings:
    """The saved spec without its trial config: enough to read the sweep's records, and no torch import."""
    return _load_saved(name, storage_path, SweepSettings)


def load_saved_spec(name: str, storage_path: str) -> "SweepSpec":
    """The whole validated spec a sweep saved (to resume it)."""

    from stylediscover.sweep import spec  # imports torch (the trial config): only here

    return _load_saved(name, storage_path, spec.SweepSpec)


def tracker_for(spec: SweepSettings, create: bool = True) -> "SweepTracker":
    """The sweep's MLflow tracker; create=False for readers, which must not create stores, experiments or runs."""
    from stylediscover.sweep.tracking import SweepTracker

    return SweepTracker(spec.tracking_uri, spec.mlflow.experiment, spec.name, str(spec.storage),
                        spec.artifact_location, create)


def _last_checkpoint(spec: SweepSettings, trial_id: str) -> Path | None:
    checkpoints = sorted(spec.storage.glob(f"*{trial_id}*/checkpoint_*"))
    return checkpoints[-1] if checkpoints else None


def _optional(value: float) -> float | None:
    return None if value != value else value


def _optional_int(value: float) -> int | None:
    return None if value != value else int(value)


def trial_records(spec: SweepSettings, tracker: "SweepTracker | None" = None) -> list[TrialRecord]:
    """One record per trial from MLflow (outcome, selected evaluation) and Tune's storage (last checkpoint); read
    through `tracker`, by default a read-only one."""
    from stylediscover.sweep.tracking import ERROR_TAG, OUTCOME_TAG, TRIAL_TAG, run_metric

    records = []
    for run in (tracker or tracker_for(spec, create=False)).trial_runs():
        trial_id = run.data.tags.get(TRIAL_TAG)
        records.append(TrialRecord(
            trial_id=trial_id, attention=run.data.params.get("navigator.attention", "?"),
            step=int(run_metric(run, "best_step", 0)), score=run_metric(run, "best_score", float("nan")),
            n_discovered=int(run_metric(run, "best_n_discovered", 0)),
            robust_n_discovered=_optional_int(run_metric(run, "best_robust_n_discovered", float("nan"))),
            weakest_margin=_optional(run_metric(run, "best_weakest_margin", float("nan"))),
            outcome=run.data.tags.get(OUTCOME_TAG, "running"), error=run.data.tags.get(ERROR_TAG, ""),
            checkpoint=_last_checkpoint(spec, trial_id),
            params={k: run.data.params[k] for k in spec.search_space if k in run.data.params},
            run_id=run.info.run_id))
    return records


def recorded_trials(spec: SweepSettings) -> list[TrialRecord]:
    """The trial records from the driver's snapshot (trials.jsonl, see snapshot.py), which needs no MLflow import: what
    `sweep status` and `best` show; from MLflow for sweeps older than the snapshot. `sweep export` and the driver's
    selection read MLflow itself, the source of truth, which they afford (they import torch and Ray anyway)."""
    records = read_snapshot(spec.storage)
    if records is None:
        return trial_records(spec)
    return [replace(r, checkpoint=_last_checkpoint(spec, r.trial_id)) for r in records]
