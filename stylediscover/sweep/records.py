"""A sweep's saved spec and its trials as MLflow and Tune's storage record them, without importing Ray: what
`sweep status`, `best` and `export` read, and what the driver's selection starts from."""

import json
from pathlib import Path

from pydantic import ValidationError

from stylediscover.errors import InputError, from_validation_error
from stylediscover.sweep.selection import TrialRecord
from stylediscover.sweep.spec import SweepSpec
from stylediscover.sweep.tracking import ERROR_TAG, OUTCOME_TAG, TRIAL_TAG, SweepTracker


def load_saved_spec(name: str, storage_path: str) -> SweepSpec:
    """The validated spec a sweep saved, its storage path set to where it was found (so a sweep is found from any
    directory); a missing, empty or corrupt spec.json is refused naming the file."""
    folder = Path(storage_path).resolve()
    path = folder / name / "spec.json"
    if not path.is_file():
        raise InputError(path, f"no sweep named {name!r} under {storage_path} (spec.json missing)")
    try:
        spec = SweepSpec.model_validate(json.loads(path.read_text()))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"not a saved sweep spec ({'empty file' if not path.read_bytes().strip() else exc}); "
                         "restore it or start the sweep again under another name") from None
    except ValidationError as exc:
        raise from_validation_error(path, exc) from None
    if spec.name != name:
        raise InputError(path, f"holds the sweep {spec.name!r}, not {name!r}", "name")
    return spec.model_copy(update={"storage_path": str(folder)})


def tracker_for(spec: SweepSpec, create: bool = True) -> SweepTracker:
    """The sweep's MLflow tracker; create=False for readers, which must not create stores, experiments or runs."""
    return SweepTracker(spec.tracking_uri, spec.mlflow.experiment, spec.name, str(spec.storage),
                        spec.artifact_location, create)


def trial_records(spec: SweepSpec, create: bool = False) -> list[TrialRecord]:
    """One record per trial from MLflow (outcome, best evaluation) and Tune's storage (last checkpoint)."""
    records = []
    for run in tracker_for(spec, create).trial_runs():
        trial_id = run.data.tags.get(TRIAL_TAG)
        checkpoints = sorted(spec.storage.glob(f"*{trial_id}*/checkpoint_*"))
        records.append(TrialRecord(
            trial_id=trial_id, attention=run.data.params.get("navigator.attention", "?"),
            step=int(run.data.metrics.get("best_step", 0)),
            score=run.data.metrics.get("best_score", float("nan")),
            n_discovered=int(run.data.metrics.get("best_n_discovered", 0)),
            outcome=run.data.tags.get(OUTCOME_TAG, "running"), error=run.data.tags.get(ERROR_TAG, ""),
            checkpoint=checkpoints[-1] if checkpoints else None,
            params={k: v for k, v in run.data.params.items() if k in spec.search_space}))
    return records
