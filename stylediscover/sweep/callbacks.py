"""The Ray Tune callbacks of a sweep's driver: MLflow runs and trials.jsonl per trial, one console line per evaluation,
a pause when the storage fills up, and the Optuna study reconciled with Tune when the experiment ends."""

import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune.experiment import Trial

from stylediscover.metrics import objective
from stylediscover.sweep.kill import kill_at
from stylediscover.sweep.preflight import MIN_FREE_BYTES
from stylediscover.sweep.ranking import searched_values, short_name
from stylediscover.sweep.records import tracker_for, trial_records
from stylediscover.sweep.snapshot import TrialSnapshot
from stylediscover.sweep.spec import SweepSpec, trial_config
from stylediscover.sweep.tracking import (
    NOTE_TAG,
    PARAM_VALUE_LIMIT,
    TRIAL_TAG,
    SweepTracker,
    param_values,
    tracked,
)

BEST_FILES = ("directions.safetensors", "directions.json", "traversal.png", "attention.png", "metrics.json")
RAY_TRIAL_ATTR = "ray_trial_id"


def study_metrics(spec: SweepSpec) -> list[str]:
    return ["best_score", "best_n_discovered"] if spec.search.algorithm == "optuna_multi" else ["best_objective"]


def _last_error_line(trial: Trial) -> str:
    """The last line of the trial's own error (Tune's error.txt ends with the failing exception), as long as an
    MLflow tag keeps it."""
    path = trial.error_file
    lines = Path(path).read_text().strip().splitlines() if path and Path(path).exists() else []
    return lines[-1].strip()[:PARAM_VALUE_LIMIT] if lines else "failed without an error message"


class MlflowCallback(tune.Callback):
    """Mirrors trials into MLflow child runs: params, both metrics per evaluation, artifacts, final status
    (a failed trial's run carries its last error line as tag `stylediscover.error`); and each change of a trial's
    record into the sweep's trials.jsonl (snapshot.py), right after the MLflow write."""

    def __init__(self, spec: SweepSpec):
        self.spec = spec
        self.tracker: SweepTracker | None = None
        self.runs: dict[str, str] = {}
        self.pictures: set[tuple[str, str, int]] = set()

    def setup(self, **info: Any) -> None:
        """Opens the sweep's MLflow runs and rebuilds trials.jsonl from them. A resume unpickles this callback from
        Tune's state as it was before its first setup: what a run needs is set here, not in __init__."""
        self.tracker = tracker_for(self.spec)
        self.tracker.describe_sweep(self.spec.model_dump(mode="json"), self.spec.storage / "spec.json")
        self.snapshot = TrialSnapshot(self.spec.storage, trial_records(self.spec, self.tracker))

    def _run(self, trial: Trial) -> str:
        """The trial's child run, named by its searched values (ranking.short_name) and tagged with its Ray trial id
        and Optuna trial number (the Optuna trial gets the run id as user attribute `mlflow_run_id`); its description
        says what it is and how to read its pictures."""
        if trial.trial_id not in self.runs:
            from stylediscover.legends import LABEL_LEGEND

            cfg = trial_config(self.spec.base, trial.config)
            name = short_name(trial.config) or trial.trial_id
            optuna_trial = self._optuna_trial(trial.trial_id)
            searched = searched_values(trial.config) or "no searched values"
            note = (f"Trial `{trial.trial_id}` of sweep `{self.spec.name}`: {searched}. Its traversal grid and "
                    "attention map of every evaluation are under Images (step slider); its best evaluation's export "
                    f"under Artifacts, `best/`.\n\n{LABEL_LEGEND}")
            tags = {"ray.trial_id": trial.trial_id, NOTE_TAG: note}
            tags |= {"optuna.trial_number": str(optuna_trial[0])} if optuna_trial else {}
            run_id = self.tracker.trial_run(trial.trial_id, cfg.model_dump(mode="json"), name, tags)
            params = param_values(cfg.model_dump(mode="json"))
            self.snapshot.opened(trial.trial_id, run_id, params["navigator.attention"],
                                 {k: params[k] for k in self.spec.search_space if k in params})
            if optuna_trial and optuna_trial[1] is not None:
                optuna_trial[1].set_user_attr("mlflow_run_id", run_id)
            self.runs[trial.trial_id] = run_id
        return self.runs[trial.trial_id]

    def _optuna_trial(self, trial_id: str) -> tuple[int, Any] | None:
        """The number of the Optuna trial the searcher made for this Ray trial and, while it runs, an optuna.Trial
        to annotate (a finished one cannot be updated); None without one."""
        if not self.spec.search.algorithm.startswith("optuna"):
            return None
        import optuna

        study = optuna.load_study(study_name=self.spec.name, storage=self.spec.study_storage)
        for frozen in study.get_trials(deepcopy=False):
            if frozen.user_attrs.get(RAY_TRIAL_ATTR) == trial_id:
                running = frozen.state == optuna.trial.TrialState.RUNNING
                return frozen.number, optuna.Trial(study, frozen._trial_id) if running else None
        return None

    def _steps(self, trial: Trial) -> int:
        return trial_config(self.spec.base, trial.config).steps

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self._run(trial)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        kill_at("first_result")
        if result["training_iteration"] > 1 and result["step"] < self._steps(trial):
            kill_at("mid_trial")
        self._log(trial, result)

    def _log(self, trial: Trial, result: dict) -> None:
        """Logs one evaluation (as Tune reports it) unless its step is in the run already."""
        if self.tracker.log_metrics(self._run(trial), tracked(result), int(result["step"])):
            self.snapshot.evaluated(trial.trial_id, result)

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info) -> None:
        """Logs every evaluation the checkpoint holds (so none is lost when a driver died before logging it),
        then the latest pictures and the best evaluation's export."""
        run_id = self._run(trial)
        with checkpoint.as_directory() as path:
            path = Path(path)
            history = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
            for entry in history:
                self._log(trial, entry | {"objective": objective(entry)})
            step = history[-1]["step"]
            for key in ("traversal", "attention"):
                if (path / f"{key}-{step:06d}.png").exists() and (run_id, key, step) not in self.pictures:
                    self.tracker.log_picture(run_id, path / f"{key}-{step:06d}.png", key, step)
                    self.pictures.add((run_id, key, step))
            self.tracker.log_artifacts(run_id, [path / "best" / n for n in BEST_FILES
                                                if (path / "best" / n).exists()], "best")

    def _finish(self, trial: Trial) -> None:
        if trial.status == Trial.ERROR:
            status, outcome, error = "FAILED", "failed", _last_error_line(trial)
        elif (trial.last_result or {}).get("step", 0) >= self._steps(trial):
            status, outcome, error = "FINISHED", "finished", None
        else:
            status, outcome, error = "KILLED", "stopped_early", None
        self.tracker.finish_trial(self._run(trial), status, outcome, error)
        self.snapshot.ended(trial.trial_id, outcome, error)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        kill_at("last_report")
        self._finish(trial)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._finish(trial)

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        """Reconciles runs left RUNNING by a killed driver: each ended trial's run ends as the trial did; a run
        whose trial Tune no longer knows ends KILLED (outcome `lost`)."""
        ended = {t.trial_id: t for t in trials if t.status in (Trial.TERMINATED, Trial.ERROR)}
        for run in self.tracker.trial_runs():
            if run.info.status != "RUNNING":
                continue
            trial_id = run.data.tags.get(TRIAL_TAG)
            if trial_id in ended:
                self._finish(ended[trial_id])
            elif trial_id not in {t.trial_id for t in trials}:
                self.tracker.finish_trial(run.info.run_id, "KILLED", "lost")
                self.snapshot.ended(trial_id, "lost")


class ProgressCallback(tune.Callback):
    """One console line per trial evaluation, in the driver (the trials' own progress bars are off)."""

    def on_trial_result(self, iteration: int, trials: list[Trial], trial: Trial, result: dict, **info: Any) -> None:
        robust = (f" (robustly {result['robust_n_discovered']} over the validation sets)"
                  if "robust_n_discovered" in result else "")
        print(f"trial {trial.trial_id} ({searched_values(trial.config)}) step {result['step']}: "
              f"n_discovered {result['n_discovered']}{robust}, score {result['score']:.4f}; selected evaluation (step "
              f"{result['best_step']}): n_discovered {result['best_n_discovered']}, score {result['best_score']:.4f}",
              flush=True)


class DiskSpaceCallback(tune.Callback):
    """Pauses the sweep as Ctrl-C does (Tune saves its state one last time; unfinished trials stay resumable) once
    its storage has under MIN_FREE_BYTES free, before checkpoints, Tune's state or the embedded stores fail to be
    written. Looks at most once a second."""

    def __init__(self, storage: Path):
        self.storage, self.checked, self.paused = storage, 0.0, False

    def on_step_begin(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        if self.paused or time.monotonic() - self.checked < 1.0:
            return
        self.checked = time.monotonic()
        if shutil.disk_usage(self.storage).free < MIN_FREE_BYTES:
            self.paused = True
            os.kill(os.getpid(), signal.SIGINT)


class StudyCallback(tune.Callback):
    """Reconciles the Optuna study with Tune when the experiment ends: a RUNNING Optuna trial whose Ray trial
    ended gets that trial's best evaluation (or FAIL if it errored); one without a Ray trial is failed. A trial that
    an interruption stopped (TERMINATED, its last result not `done`) is left RUNNING for the resume."""

    def __init__(self, spec: SweepSpec):
        self.spec = spec

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        import optuna

        study = optuna.load_study(study_name=self.spec.name, storage=self.spec.study_storage)
        by_id = {t.trial_id: t for t in trials}
        for ot_trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            trial = by_id.get(ot_trial.user_attrs.get(RAY_TRIAL_ATTR))
            if trial is not None and (trial.status not in (Trial.TERMINATED, Trial.ERROR) or (
                    trial.status == Trial.TERMINATED and not (trial.last_result or {}).get("done"))):
                continue  # still running, or stopped by an interruption (Ctrl-C, a pause): the resume finishes it
            values = [(trial.last_result or {}).get(m) for m in study_metrics(self.spec)] if trial else [None]
            if trial is None or trial.status == Trial.ERROR or None in values:
                study.tell(ot_trial.number, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(ot_trial.number, values)
