"""Runs a sweep with Ray Tune (local by default, an existing cluster by address), tracks it in MLflow (callbacks.py),
then selects the best attention-based trial and exports its directions (finish.py). A trial stands for its best
evaluation (highest objective, kept by the trainer in its best/ folder): that is what the searcher, the selection and
the export see. Being a maximum over evaluations and trials on the validation codes (one set, or
eval.validation_sets), it flatters; the selected export is therefore evaluated on R held-out test sets
(selection.test_sets, one Ray task each, see heldout.py) and both are reported: the validation figures that selected
it, the test figures (mean ± std, robust discovery) that describe it.

Layout under `<storage_path>/<name>/`: Ray Tune's experiment state and trial checkpoints,
spec.json (the validated spec), optuna.db (the Optuna study, unless a URL is given), mlflow.db (the
embedded MLflow store, unless a server is given), mlruns/ (its artifacts), sweep.png (metrics per trial
and the Pareto front), trials.png (the trials' traversal grids side by side), summary.json and best/ (the export,
with heldout.json).

A sweep survives a killed driver at any moment: `resume_sweep` restores Tune's state, the MLflow and Optuna
callbacks reconcile runs and study trials with Tune's trials when the experiment ends, the searcher never
updates an Optuna trial that already finished, and selection, export and the held-out test are simply redone. A
finished sweep (summary.json written without a failure) is not resumed: `resume_sweep` returns its summary without
work unless asked to redo its finish.
"""

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import ray
from ray import tune
from ray.tune import ExperimentAnalysis
from ray.tune.experiment import Trial
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.optuna import OptunaSearch

from stylediscover.errors import InputError
from stylediscover.sweep.callbacks import (
    RAY_TRIAL_ATTR,
    DiskSpaceCallback,
    MlflowCallback,
    ProgressCallback,
    StudyCallback,
)
from stylediscover.sweep.finish import SweepFailed, finish_sweep
from stylediscover.sweep.kill import KILL_POINTS
from stylediscover.sweep.preflight import MIN_FREE_BYTES
from stylediscover.sweep.records import finished_summary, load_saved_spec
from stylediscover.sweep.spec import Choice, SweepSpec
from stylediscover.sweep.stores import exclusive
from stylediscover.sweep.trial import run_trial


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


@contextmanager
def _ray(address: str | None) -> Iterator[None]:
    """Connects to the cluster at `address`, or starts a local Ray of this driver's own (two sweeps started at once
    each get one) that is shut down, with all its processes, when the sweep returns or raises. Meanwhile the console
    streams strip ANSI colour codes (Ray's) when they are not terminals (colorama, which Ray uses, does that)."""
    import colorama

    if ray.is_initialized():
        yield
        return
    point = os.environ.get("STYLEDISCOVER_KILL_AT")
    if point and point not in KILL_POINTS:
        raise InputError("STYLEDISCOVER_KILL_AT", f"expected one of {', '.join(KILL_POINTS)}, got {point!r}")
    colorama.init()
    try:
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
    finally:
        colorama.deinit()


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


def _trainable(spec: SweepSpec):
    return tune.with_resources(tune.with_parameters(run_trial, base=spec.base.model_dump(mode="json")),
                               {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu})


def run_sweep(spec: SweepSpec, address: str | None = None) -> dict:
    """Runs the whole sweep, then selects and exports; returns the summary."""
    started = time.time()
    spec = spec.model_copy(update={"storage_path": str(spec.storage.parent)})  # found from any directory later
    _claim(spec)
    searcher = _searcher(spec)
    tune_config = tune.TuneConfig(search_alg=searcher, scheduler=_scheduler(spec), num_samples=spec.num_samples,
                                  max_concurrent_trials=None if searcher else spec.max_concurrent)
    with _ray(address), _disk_guard(spec):
        _fit(spec, tune.Tuner(_trainable(spec), param_space=_tune_space(spec), tune_config=tune_config,
                              run_config=_run_config(spec)))
        return finish_sweep(spec, started, "run")


def _run_config(spec: SweepSpec) -> tune.RunConfig:
    callbacks = [MlflowCallback(spec), ProgressCallback(), DiskSpaceCallback(spec.storage), CSVLoggerCallback(),
                 JsonLoggerCallback()]
    callbacks += [StudyCallback(spec)] if spec.search.algorithm.startswith("optuna") else []
    return tune.RunConfig(name=spec.name, storage_path=str(spec.storage.parent),
                          failure_config=tune.FailureConfig(max_failures=spec.max_failures),
                          checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
                          callbacks=callbacks, verbose=1)


def resume_sweep(name: str, storage_path: str, address: str | None = None, redo_finish: bool = False) -> dict:
    """Tuner.restore: finished trials are kept, unfinished and errored ones continue from checkpoints, then the finish
    (selection, export, held-out test) is done. A finished sweep's summary is returned without any work, unless
    `redo_finish`, which redoes its finish (and only that). `name`: the sweep's name under `storage_path`, or its
    folder."""
    started = time.time()
    spec = load_saved_spec(name, storage_path)
    done = finished_summary(spec.storage)
    if done is not None and not redo_finish:
        return done
    if done is None and not tune.Tuner.can_restore(spec.storage):
        raise InputError(spec.storage, "no Ray Tune state (tuner.pkl) to resume from: the sweep was stopped before "
                         "Tune started; delete the folder and run the sweep again")
    with _ray(address), _disk_guard(spec):
        if done is None:
            _fit(spec, tune.Tuner.restore(str(spec.storage), _trainable(spec), resume_unfinished=True,
                                          resume_errored=True))
        return finish_sweep(spec, started, "resume" if done is None else "redo of the finish")
