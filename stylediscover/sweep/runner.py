"""Runs a sweep with Ray Tune (local by default, an existing cluster by address), tracks it in MLflow,
selects the best attention-based trial and exports its directions. A trial stands for its best evaluation
(highest objective, kept by the trainer in its best/ folder): that is what the searcher, the selection and
the export see. Being a maximum over evaluations and trials on the validation codes (one set, or
eval.validation_sets), it flatters; the selected export is therefore evaluated on R held-out test sets
(selection.test_sets, one Ray task each, see heldout.py) and both are reported: the validation figures that selected
it, the test figures (mean ± std, robust discovery) that describe it.

Layout under `<storage_path>/<name>/`: Ray Tune's experiment state and trial checkpoints,
spec.json (the validated spec), optuna.db (the Optuna study, unless a URL is given), mlflow.db (the
embedded MLflow store, unless a server is given), mlruns/ (its artifacts), sweep.png (metrics per trial
and the Pareto front), summary.json and best/ (the export, with heldout.json).

A sweep survives a killed driver at any moment: `resume_sweep` restores Tune's state, the MLflow and Optuna
callbacks reconcile runs and study trials with Tune's trials when the experiment ends, the searcher never
updates an Optuna trial that already finished, and selection, export and the held-out test are simply redone.
"""

import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune import ExperimentAnalysis
from ray.tune.experiment import Trial
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.optuna import OptunaSearch

from stylediscover.assessment import assess_test_set, combine_test_sets
from stylediscover.directions import record_heldout
from stylediscover.errors import InputError, StylediscoverError
from stylediscover.heldout import headline, heldout_block, heldout_metrics
from stylediscover.metrics import objective
from stylediscover.sweep.preflight import MIN_FREE_BYTES
from stylediscover.sweep.records import load_saved_spec, tracker_for, trial_records
from stylediscover.sweep.registry import register_export
from stylediscover.sweep.selection import TrialRecord, pareto_front, select_best
from stylediscover.sweep.snapshot import TrialSnapshot
from stylediscover.sweep.spec import Choice, SweepSpec, trial_config
from stylediscover.sweep.stores import exclusive
from stylediscover.sweep.tracking import (
    PARAM_VALUE_LIMIT,
    SELECTED_RUN_TAG,
    TRIAL_TAG,
    SweepTracker,
    param_values,
    tracked,
)
from stylediscover.sweep.trial import run_trial

BEST_FILES = ("directions.safetensors", "directions.json", "traversal.png", "attention.png", "metrics.json")
KILL_POINTS = ("first_result", "mid_trial", "last_report", "selection", "export", "confirm")
RAY_TRIAL_ATTR = "ray_trial_id"


class SweepFailed(StylediscoverError):
    """A sweep whose trials failed, or that produced nothing to select; the message says which and why."""


def kill_at(point: str) -> None:
    """Test infrastructure kept in the product: SIGKILLs this driver when STYLEDISCOVER_KILL_AT names `point`
    (one of KILL_POINTS), so the failure drills (tests/test_sweep_drills.py, evaluation/drills.py) can kill a
    sweep at a named moment instead of after a sleep. Does nothing when the variable is unset."""
    if os.environ.get("STYLEDISCOVER_KILL_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)


def _tune_space(spec: SweepSpec) -> dict[str, Any]:
    space = {}
    for key, p in spec.search_space.items():
        if isinstance(p, Choice):
            space[key] = tune.grid_search(p.values) if p.type == "grid" else tune.choice(p.values)
        elif p.type == "uniform":
            space[key] = tune.uniform(p.low, p.high)
        elif p.type == "loguniform":
            space[key] = tune.loguniform(p.low, p.high)
        else:
            space[key] = tune.randint(int(p.low), int(p.high))
    return space


class GuardedOptunaSearch(OptunaSearch):
    """OptunaSearch that tags each Optuna trial with its Ray trial id and never updates an Optuna trial that is
    unknown to it or already finished (a driver killed after the study's commit but before Tune saved its state
    makes the resumed trial report again: plain OptunaSearch then raises UpdateFinishedTrialError)."""

    def suggest(self, trial_id: str) -> dict | None:
        params = super().suggest(trial_id)
        if trial_id in self._ot_trials:
            self._ot_trials[trial_id].set_user_attr(RAY_TRIAL_ATTR, trial_id)
        return params

    def _open(self, trial_id: str) -> bool:
        """Whether the trial's Optuna trial may still be updated."""
        import optuna

        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is None or trial_id in self._completed_trials:
            return False
        running = self._ot_study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        return ot_trial.number in {t.number for t in running}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if self._open(trial_id):
            super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if self._open(trial_id):
            super().on_trial_complete(trial_id, result, error)
        self._completed_trials.add(trial_id)


def _study_metrics(spec: SweepSpec) -> list[str]:
    return ["best_score", "best_n_discovered"] if spec.search.algorithm == "optuna_multi" else ["best_objective"]


def _searcher(spec: SweepSpec):
    if spec.search.algorithm in ("random", "grid"):
        return None
    import optuna

    with exclusive(spec.study_storage):  # creates the study database's tables when missing
        storage = optuna.storages.RDBStorage(spec.study_storage)
    if spec.search.algorithm == "optuna_multi":
        searcher = GuardedOptunaSearch(metric=["best_score", "best_n_discovered"], mode=["max", "max"],
                                       storage=storage, study_name=spec.name, seed=spec.search.seed,
                                       sampler=optuna.samplers.NSGAIISampler(seed=spec.search.seed))
    else:
        searcher = GuardedOptunaSearch(metric="best_objective", mode="max", storage=storage,
                                       study_name=spec.name, seed=spec.search.seed)
    return ConcurrencyLimiter(searcher, max_concurrent=spec.max_concurrent)


def _scheduler(spec: SweepSpec):
    if spec.scheduler.type == "none":
        return None
    evaluations = -(-spec.base.steps // spec.base.eval.every)  # the last step is evaluated too
    return ASHAScheduler(metric=spec.scheduler.metric, mode="max", time_attr="training_iteration",
                         max_t=evaluations, grace_period=spec.scheduler.grace_period,
                         reduction_factor=spec.scheduler.reduction_factor)


def searched_values(config: dict[str, Any]) -> str:
    """A trial's searched values, short: {'loss.form': 'infonce', 'lr': 0.0123456} → 'form=infonce, lr=0.01235'."""
    return ", ".join(f"{k.rsplit('.', 1)[-1]}={v:.4g}" if isinstance(v, float) else f"{k.rsplit('.', 1)[-1]}={v}"
                     for k, v in sorted(config.items()))


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
        """The trial's child run, named by its searched values and tagged with its Ray trial id and Optuna trial
        number (the Optuna trial gets the run id as user attribute `mlflow_run_id`)."""
        if trial.trial_id not in self.runs:
            cfg = trial_config(self.spec.base, trial.config)
            name = searched_values(trial.config) or trial.trial_id
            optuna_trial = self._optuna_trial(trial.trial_id)
            tags = {"ray.trial_id": trial.trial_id}
            tags |= {"optuna.trial_number": str(optuna_trial[0])} if optuna_trial else {}
            run_id = self.tracker.trial_run(trial.trial_id, cfg.model_dump(mode="json"), name, tags)
            params = param_values(cfg.model_dump(mode="json"))
            self.snapshot.opened(trial.trial_id, run_id, params["navigator.attention"],
                                 {k: v for k, v in params.items() if k in self.spec.search_space})
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
            values = [(trial.last_result or {}).get(m) for m in _study_metrics(self.spec)] if trial else [None]
            if trial is None or trial.status == Trial.ERROR or None in values:
                study.tell(ot_trial.number, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(ot_trial.number, values)


@contextmanager
def _ray(address: str | None) -> Iterator[None]:
    """Connects to the cluster at `address`, or starts a local Ray of this driver's own (two sweeps started at once
    each get one) that is shut down, with all its processes, when the sweep returns or raises."""
    if ray.is_initialized():
        yield
        return
    try:
        if address:
            ray.init(address=address)
        else:
            ray.init(include_dashboard=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise InputError(address or "local Ray", f"cannot start or reach Ray ({exc})", "--address") from None
    try:
        yield
    finally:
        ray.shutdown()


@contextmanager
def _disk_guard(spec: SweepSpec) -> Iterator[None]:
    """Turns any failure while the sweep's storage has under MIN_FREE_BYTES free (Tune's state, checkpoints, the
    embedded stores cannot be written) into one line that says so; `sweep resume` continues once space is freed."""
    try:
        yield
    except SweepFailed:
        raise
    except Exception as exc:
        free = shutil.disk_usage(spec.storage).free
        if free >= MIN_FREE_BYTES and "disk is full" not in str(exc) and "No space left" not in str(exc):
            raise
        raise SweepFailed(f"sweep {spec.name!r} stopped: the disk holding {spec.storage} is full ({free >> 20} MiB "
                          f"free); free space, then `stylediscover sweep resume {spec.name} --storage-path "
                          f"{spec.storage.parent}` continues it") from None


def _fit(spec: SweepSpec, tuner: tune.Tuner) -> None:
    """Runs the experiment; a sweep that ends with started trials unfinished (Ctrl-C, or paused by
    DiskSpaceCallback) raises SweepFailed saying why and how to continue, instead of selecting among them."""
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"  # no TensorBoard files or advice: CSV and JSON are asked
    tuner.fit()
    trials = ExperimentAnalysis(str(spec.storage)).trials  # as saved: what a resume continues
    unfinished = sum(t.status not in (Trial.TERMINATED, Trial.ERROR) for t in trials)
    if unfinished:
        free = shutil.disk_usage(spec.storage).free
        why = (f"its storage {spec.storage} has {free >> 20} MiB free, under the {MIN_FREE_BYTES >> 20} MiB a sweep "
               "needs: free space" if free < MIN_FREE_BYTES else "it was interrupted")
        raise SweepFailed(f"sweep {spec.name!r} paused with {unfinished} of {len(trials)} started trials unfinished: "
                          f"{why}, then `stylediscover sweep resume {spec.name} --storage-path {spec.storage.parent}` "
                          "continues it")


def _claim(spec: SweepSpec) -> None:
    """Writes spec.json, complete or not at all, and only if no sweep of this name holds the folder: the file is
    hard-linked into place, which fails when it exists, so of two sweeps started at once with one name, one runs
    and the other is refused before writing anything else."""
    path = spec.storage / "spec.json"
    refusal = (f"a sweep named {spec.name!r} already exists here; continue it with `stylediscover sweep resume "
               f"{spec.name}` or start another with --set name=NEW_NAME")
    if path.exists():
        raise InputError(spec.storage, refusal, "name")
    tmp = spec.storage / f".spec-{os.getpid()}.json"
    try:
        spec.storage.mkdir(parents=True, exist_ok=True)
        tmp.write_text(spec.model_dump_json(indent=2) + "\n")
        os.link(tmp, path)
    except FileExistsError:
        raise InputError(spec.storage, refusal, "name") from None
    except OSError as exc:
        raise InputError(path, f"cannot be written ({exc.strerror})", "storage_path") from None
    finally:
        tmp.unlink(missing_ok=True)


def run_sweep(spec: SweepSpec, address: str | None = None) -> dict:
    """Runs the whole sweep, then selects and exports; returns the summary."""
    spec = spec.model_copy(update={"storage_path": str(spec.storage.parent)})  # found from any directory later
    _claim(spec)
    trainable = tune.with_resources(tune.with_parameters(run_trial, base=spec.base.model_dump(mode="json")),
                                    {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu})
    searcher = _searcher(spec)
    tune_config = tune.TuneConfig(search_alg=searcher, scheduler=_scheduler(spec), num_samples=spec.num_samples,
                                  max_concurrent_trials=None if searcher else spec.max_concurrent)
    with _ray(address), _disk_guard(spec):
        _fit(spec, tune.Tuner(trainable, param_space=_tune_space(spec), tune_config=tune_config,
                              run_config=_run_config(spec)))
        return finish_sweep(spec)


def _run_config(spec: SweepSpec) -> tune.RunConfig:
    callbacks = [MlflowCallback(spec), ProgressCallback(), DiskSpaceCallback(spec.storage), CSVLoggerCallback(),
                 JsonLoggerCallback()]
    callbacks += [StudyCallback(spec)] if spec.search.algorithm.startswith("optuna") else []
    return tune.RunConfig(name=spec.name, storage_path=str(spec.storage.parent),
                          failure_config=tune.FailureConfig(max_failures=spec.max_failures),
                          checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
                          callbacks=callbacks, verbose=1)


def resume_sweep(name: str, storage_path: str, address: str | None = None) -> dict:
    """Tuner.restore: finished trials are kept, unfinished and errored ones continue from checkpoints."""
    spec = load_saved_spec(name, storage_path)
    if not tune.Tuner.can_restore(spec.storage):
        raise InputError(spec.storage, "no Ray Tune state (tuner.pkl) to resume from: the sweep was stopped before "
                         "Tune started; delete the folder and run the sweep again")
    trainable = tune.with_resources(tune.with_parameters(run_trial, base=spec.base.model_dump(mode="json")),
                                    {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu})
    with _ray(address), _disk_guard(spec):
        _fit(spec, tune.Tuner.restore(str(spec.storage), trainable, resume_unfinished=True, resume_errored=True))
        return finish_sweep(spec)


def _failure(spec: SweepSpec, records: list[TrialRecord], best: TrialRecord | None) -> str | None:
    """Why the sweep failed (its failed trials with their parameters and errors, or nothing to select), if it did."""
    failed = [r for r in records if r.outcome == "failed"]
    reasons = [f"trial {r.trial_id} {r.params} failed: {r.error}" for r in failed]
    if best is None:
        usable = [r for r in records if r.outcome in ("finished", "stopped_early")]
        reasons.append(f"no trial to select: none of {len(records)} trials finished" if not usable else
                       f"no trial to select: none of {len(usable)} finished trials matches the selection "
                       f"({spec.selection.rule}, attention_only={spec.selection.attention_only})")
    return "; ".join(reasons) or None


def finish_sweep(spec: SweepSpec) -> dict:
    """Selects the best trial, exports it to <storage>/best (with a static explorer page), records both on the
    parent MLflow run, which then holds the sweep's result; raises SweepFailed (after recording what could be) when
    a trial failed or nothing could be selected."""
    from stylediscover.plots import sweep_plot

    tracker = tracker_for(spec)
    records = trial_records(spec, tracker)
    kill_at("selection")
    best = select_best(records, spec.selection.rule, spec.selection.attention_only)
    front = pareto_front([r for r in records if r.outcome in ("finished", "stopped_early")])
    plot = sweep_plot(records, front, spec.storage / "sweep.png")
    summary = {"sweep": spec.name, "trials": len(records), "pareto_front": [r.trial_id for r in front]}
    tags, metrics, folders = {}, {}, {}
    if best is not None:
        out = export_trial(best, spec.storage / "best")
        summary |= {"trial_id": best.trial_id, "run_id": best.run_id, "step": best.step, "score": best.score,
                    "n_discovered": best.n_discovered, "params": best.params, "export": str(out)}
        if best.robust_n_discovered is not None:
            summary |= {"robust_n_discovered": best.robust_n_discovered, "weakest_margin": best.weakest_margin}
        explorer = start_explorer(spec, out)
        if spec.selection.test_sets:
            summary["heldout"] = confirm(spec, out)
            metrics |= heldout_metrics(summary["heldout"])
        ray.get(explorer)
        version = register_export(spec.tracking_uri, spec.mlflow.experiment, tracker.parent_id, out)
        summary["model"] = f"models:/{version.name}/{version.version}"
        tags = {"selected.trial_id": best.trial_id, SELECTED_RUN_TAG: best.run_id, "selected.step": best.step,
                "selected.model": summary["model"]}
        tags |= {f"selected.param.{k}": v for k, v in best.params.items()}
        metrics |= {"selected_n_discovered": best.n_discovered, "selected_score": best.score}
        if best.robust_n_discovered is not None:
            metrics |= {"selected_robust_n_discovered": best.robust_n_discovered,
                        "selected_weakest_margin": best.weakest_margin}
        folders["export"] = out
    failure = _failure(spec, records, best)
    if failure:
        summary["failure"] = failure
    (spec.storage / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    tracker.finish_sweep(tags, metrics, _note(spec, summary, tracker), [plot, spec.storage / "summary.json"],
                         folders, "FINISHED" if best is not None else "FAILED")
    if failure:
        exported = f"; the best other trial, {best.trial_id}, was exported to {summary['export']}" if best else ""
        raise SweepFailed(f"sweep {spec.name!r}: {failure}{exported}")
    return summary


def _note(spec: SweepSpec, summary: dict, tracker: SweepTracker) -> str:
    """The parent run's description (markdown): what was selected, with a link to its run, and where it lives."""
    lines = [f"**Sweep `{spec.name}`** ({summary['trials']} trials), stored in `{spec.storage}`."]
    if "trial_id" in summary:
        lines.append(f"Selected ({spec.selection.rule}): [trial {summary['trial_id']}]"
                     f"({tracker.run_link(summary['run_id'])}), its evaluation at step {summary['step']}: "
                     f"n_discovered {summary['n_discovered']}, "
                     + (f"robustly {summary['robust_n_discovered']} over the validation sets (weakest margin "
                        f"{summary['weakest_margin']:.3f}), "
                        if summary.get("weakest_margin") is not None else "")
                     + f"score {summary['score']:.4f}, params "
                     + ", ".join(f"`{k}={v}`" for k, v in summary["params"].items()) + ".")
        if "heldout" in summary:
            h = summary["heldout"]
            lines.append(f"On {h['sets']} held-out test sets of {h['samples']} codes: n_discovered "
                         f"{h['n_discovered_mean']:.2f} ± {h['n_discovered_std']:.2f}, score {h['score_mean']:.4f} ± "
                         f"{h['score_std']:.4f}; robustly discovered: {', '.join(h['robust']) or 'none'}.")
        lines.append("The export is under `export/` (open `export/explorer.html` for sliders over every direction); "
                     f"it is registered as `{summary['model']}` (`mlflow.pyfunc.load_model` applies its directions "
                     "to W+ codes, alias `best`).")
    if "failure" in summary:
        lines.append(f"Failure: {summary['failure']}")
    return "\n\n".join(lines)


def _render_explorer(export: str, threads: int) -> None:
    import torch

    from stylediscover.explore.static import write_static_explorer

    torch.set_num_threads(threads)
    write_static_explorer(Path(export), Path(export) / "explorer.html")


def start_explorer(spec: SweepSpec, export: Path) -> ray.ObjectRef:
    """Starts rendering export/explorer.html, the static explorer of the export (one page, sliders that swap
    precomputed frames), as a Ray task with a trial's resources (the generator may need a GPU), beside the held-out
    test; the caller waits on the returned reference."""
    task = ray.remote(num_cpus=spec.resources.cpu, num_gpus=spec.resources.gpu)(_render_explorer)
    return task.remote(str(export), max(1, int(spec.resources.cpu)))


def _run_test_set(path: str, sets: int, samples: int, index: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    return assess_test_set(Path(path), sets, samples, index, recorded_strengths=True)


def confirm(spec: SweepSpec, export: Path) -> dict:
    """The export's held-out test evaluation (selection.test_sets sets of selection.test_samples codes, see
    heldout.py), one Ray task with a trial's resources per set, at the strengths the export records (its
    evaluation calibrated them on these networks): the whole result goes to export/heldout.json,
    all but the response matrices into the manifest (export/directions.json, block `heldout`); returns its
    headline figures."""
    task = ray.remote(num_cpus=spec.resources.cpu, num_gpus=spec.resources.gpu)(_run_test_set)
    sets = spec.selection.test_sets
    pending = [task.remote(str(export / "directions.safetensors"), sets, spec.selection.test_samples, i,
                           max(1, int(spec.resources.cpu))) for i in range(sets)]
    kill_at("confirm")
    result = combine_test_sets(ray.get(pending))
    (export / "heldout.json").write_text(json.dumps(result, indent=1) + "\n")
    record_heldout(export / "directions.json", heldout_block(result))
    return headline(result)


def export_trial(record: TrialRecord, out: Path) -> Path:
    """Copies a trial's best evaluation (directions with manifest and .npy files, traversal grid, attention map,
    responses, metrics) from its last checkpoint to `out`."""
    shutil.copytree(record.checkpoint / "best", out, dirs_exist_ok=True)
    kill_at("export")
    return out

