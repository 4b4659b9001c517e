"""MLflow tracking of a sweep, from the Ray driver: one parent run per sweep, one child run per trial.

A sweep is its name plus its storage folder: runs are found again by tags (`stylediscover.sweep`,
`stylediscover.storage`, `stylediscover.trial_id`), so a resumed sweep reuses them instead of duplicating them, two
sweeps of one name in different folders never share a parent, and metric steps already logged are skipped.
Read-only users open the tracker with create=False: it then creates nothing. Child run status: FINISHED (ran all
steps), KILLED with tag `stylediscover.outcome=stopped_early` (stopped by the scheduler), FAILED (errored after its
retries; tag `stylediscover.error` holds the trial's last error line). The sweep's finish marks its selected child:
tag `stylediscover.selected` = true (false on the others) and its name prefixed with SELECTED_MARK.
"""

import time
import warnings
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, Run, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sqlalchemy import make_url

from stylediscover.errors import InputError
from stylediscover.sweep.stores import exclusive

SWEEP_TAG = "stylediscover.sweep"
STORAGE_TAG = "stylediscover.storage"
SELECTED_RUN_TAG = "stylediscover.selected_run"
SELECTED_TAG = "stylediscover.selected"
SELECTED_MARK = "★ "
NOTE_TAG = "mlflow.note.content"  # a run's description, markdown
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}  # the UI opens its model-training view
TRIAL_TAG = "stylediscover.trial_id"
ROLE_TAG = "stylediscover.role"
OUTCOME_TAG = "stylediscover.outcome"
ERROR_TAG = "stylediscover.error"
PARAM_VALUE_LIMIT = 6000
# Tune's result key → the trial run's MLflow metric, in the order a run first logs them, which is also their order by
# name: MLflow's UI (3.17) lists metrics by name in its run table and the compare page's scatter and contour plots,
# and in the order the store returns them (first logged first) in the compare page's parallel coordinates, so the
# selection metric leads both. Runs logged before these names hold Tune's keys (see `run_metric`).
METRIC_NAMES = {
    "best_objective": "best_objective",  # the selection metric: the highest eval_objective so far
    "n_discovered": "eval_n_discovered",  # this evaluation's, on the validation codes
    "objective": "eval_objective",  # metrics.objective
    "robust_n_discovered": "eval_robust_n_discovered",  # over the validation sets (eval.validation_sets > 1)
    "score": "eval_score",
    "weakest_margin": "eval_weakest_margin",  # over the validation sets (eval.validation_sets > 1)
    "best_n_discovered": "selected_n_discovered",  # the selected evaluation's (the one holding best_objective),
    "best_robust_n_discovered": "selected_robust_n_discovered",
    "best_score": "selected_score",  # which can fall: a later evaluation may find more attributes at a lower score
    "best_step": "selected_step",
    "best_weakest_margin": "selected_weakest_margin",
    "loss": "train_loss",  # the training loss at the evaluation's step
}


def tracked(metrics: dict) -> dict[str, float]:
    """A trial's evaluation as Tune reports it → the metrics its run records, named and ordered as METRIC_NAMES."""
    return {name: metrics[key] for key, name in METRIC_NAMES.items() if key in metrics}


def run_metric(run: Run, key: str, default: float) -> float:
    """A trial run's latest value of Tune's metric `key`, under its METRIC_NAMES name or, in runs logged before those
    names, under `key` itself."""
    metrics = run.data.metrics
    return metrics.get(METRIC_NAMES[key], metrics.get(key, default))


def param_values(params: dict[str, Any]) -> dict[str, str]:
    """Nested params → the flat string values MLflow keeps of them."""
    return {k: str(v)[:PARAM_VALUE_LIMIT] for k, v in flatten(params).items()}


def flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} → {'a.b': 1}."""
    out = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out |= flatten(value, name + ".")
        else:
            out[name] = value
    return out


class SweepTracker:
    def __init__(self, tracking_uri: str, experiment: str, sweep: str, storage: str,
                 artifact_location: str | None = None, create: bool = True):
        """`storage`: the sweep's folder (absolute), part of its identity. artifact_location: for a new experiment
        in an embedded store (a server decides it otherwise). create=False: a missing store, experiment or parent
        run is an InputError instead of being created."""
        if not create and tracking_uri.startswith("sqlite:") and not Path(make_url(tracking_uri).database).is_file():
            raise InputError(make_url(tracking_uri).database, "no MLflow store: the sweep has not logged anything yet")
        self.sweep, self.storage = sweep, storage
        with exclusive(tracking_uri):  # the client creates or migrates the store's tables
            self.client = MlflowClient(tracking_uri)
            self.experiment_id = self._experiment(experiment, artifact_location, create)
            self.parent_id = self._find({ROLE_TAG: "sweep"}) or self._create_parent(create, tracking_uri)
        self._logged: dict[str, set[int]] = {}

    def _experiment(self, name: str, artifact_location: str | None, create: bool) -> str:
        """The experiment's id, created when missing (another sweep creating it at the same moment is fine)."""
        found = self.client.get_experiment_by_name(name)
        if found is None and not create:
            raise InputError(self.client.tracking_uri, f"no MLflow experiment {name!r}", "mlflow.experiment")
        if found is not None:
            if create and not EXPERIMENT_KIND.items() <= found.tags.items():
                self.client.set_experiment_tag(found.experiment_id, *next(iter(EXPERIMENT_KIND.items())))
            return found.experiment_id
        try:
            return self.client.create_experiment(name, artifact_location=artifact_location, tags=EXPERIMENT_KIND)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            return self.client.get_experiment_by_name(name).experiment_id

    def _create_parent(self, create: bool, tracking_uri: str) -> str:
        if not create:
            raise InputError(tracking_uri, f"no MLflow run of sweep {self.sweep!r} stored in {self.storage}")
        return self.client.create_run(self.experiment_id, run_name=self.sweep, tags={
            SWEEP_TAG: self.sweep, STORAGE_TAG: self.storage, ROLE_TAG: "sweep"}).info.run_id

    def _query(self, tags: dict[str, str]) -> str:
        identity = {SWEEP_TAG: self.sweep, STORAGE_TAG: self.storage}
        return " and ".join(f"tags.`{k}` = '{v}'" for k, v in (identity | tags).items())

    def _find(self, tags: dict[str, str]) -> str | None:
        runs = self.client.search_runs([self.experiment_id], self._query(tags), max_results=2)
        return runs[0].info.run_id if runs else None

    def _log_params(self, run_id: str, params: dict[str, Any]) -> None:
        items = [Param(k, v) for k, v in param_values(params).items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[i:i + 100])

    def describe_sweep(self, spec: dict[str, Any], spec_file: Path) -> None:
        """The parent run's params (the spec, flattened) and the saved spec as an artifact, once."""
        if not self.client.get_run(self.parent_id).data.params:
            self._log_params(self.parent_id, spec)
            self.client.log_artifact(self.parent_id, str(spec_file))

    def trial_run(self, trial_id: str, params: dict[str, Any], name: str | None = None,
                  tags: dict[str, str] | None = None) -> str:
        """The child run of a trial, created on first sight with all params, run name `name` (default: the trial
        id) and extra `tags`."""
        run_id = self._find({TRIAL_TAG: trial_id})
        if run_id is None:
            run_id = self.client.create_run(self.experiment_id, run_name=name or trial_id, tags={
                SWEEP_TAG: self.sweep, STORAGE_TAG: self.storage, TRIAL_TAG: trial_id, ROLE_TAG: "trial",
                "mlflow.parentRunId": self.parent_id} | (tags or {})).info.run_id
            self._log_params(run_id, params)
        elif self.client.get_run(run_id).info.status != "RUNNING":
            self.client.update_run(run_id, status="RUNNING")
        return run_id

    def logged_steps(self, run_id: str) -> set[int]:
        """Evaluation steps already in the run, under either name of the score (read from MLflow once, then kept up
        to date); a run resumed from before METRIC_NAMES goes on under the new names."""
        if run_id not in self._logged:
            self._logged[run_id] = {m.step for key in ("score", METRIC_NAMES["score"])
                                    for m in self.client.get_metric_history(run_id, key)}
        return self._logged[run_id]

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int) -> bool:
        """Logs numeric metrics at `step` unless that step was logged before; returns whether it logged."""
        if step in self.logged_steps(run_id):
            return False
        now = int(time.time() * 1000)
        self.client.log_batch(run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])
        self._logged[run_id].add(step)
        return True

    def log_artifacts(self, run_id: str, files: list[Path], artifact_path: str | None = None) -> None:
        for f in files:
            self.client.log_artifact(run_id, str(f), artifact_path)

    def log_picture(self, run_id: str, path: Path, key: str, step: int) -> None:
        """A PNG as an MLflow image at `step`, so the UI's step slider walks through the evaluations."""
        from PIL import Image

        with Image.open(path) as picture:
            self.client.log_image(run_id, picture.convert("RGB"), key=key, step=step)

    def finish_trial(self, run_id: str, status: str, outcome: str, error: str | None = None) -> None:
        tags = [RunTag(OUTCOME_TAG, outcome)] + ([RunTag(ERROR_TAG, error[:PARAM_VALUE_LIMIT])] if error else [])
        self.client.log_batch(run_id, tags=tags)
        self.client.set_terminated(run_id, status)

    def finish_sweep(self, tags: dict[str, Any], metrics: dict[str, float], note: str, files: list[Path],
                     folders: dict[str, Path], status: str, table: list[dict], texts: dict[str, str]) -> None:
        """Records the selection on the parent run as `tags` and `metrics`, `note` as its description (markdown),
        attaches `files` at the top, each folder under its artifact path, `table` as the table artifact ranking.json
        (one row per dict) and each of `texts` as a file of that name, and ends it with `status`."""
        import pandas as pd

        now = int(time.time() * 1000)
        self.client.log_batch(self.parent_id, tags=[RunTag(k, str(v)[:PARAM_VALUE_LIMIT]) for k, v in tags.items()]
                              + [RunTag(NOTE_TAG, note)],
                              metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])
        self.log_artifacts(self.parent_id, files)
        for artifact_path, folder in folders.items():
            self.client.log_artifacts(self.parent_id, str(folder), artifact_path)
        with warnings.catch_warnings():  # pandas' advice on MLflow's own select_dtypes call
            warnings.filterwarnings("ignore", message=".*'str' dtypes are included by select_dtypes")
            self.client.log_table(self.parent_id, pd.DataFrame(table), "ranking.json")
        for name, text in texts.items():
            self.client.log_text(self.parent_id, text, name)
        self.client.set_terminated(self.parent_id, status)

    def mark_selected(self, run_id: str | None) -> None:
        """Marks the child run `run_id` as the selected one (tag SELECTED_TAG true, name prefixed by SELECTED_MARK)
        and every other child as not (a redone finish may select another)."""
        for run in self.trial_runs():
            chosen = run.info.run_id == run_id
            base = run.info.run_name.removeprefix(SELECTED_MARK)
            name = SELECTED_MARK + base if chosen else base
            if run.info.run_name != name:
                self.client.update_run(run.info.run_id, name=name)
            self.client.set_tag(run.info.run_id, SELECTED_TAG, str(chosen).lower())

    def trial_runs(self) -> list:
        return self.client.search_runs([self.experiment_id], self._query({ROLE_TAG: "trial"}), max_results=10_000)
