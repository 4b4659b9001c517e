"""Runs a sweep with Ray Tune (local by default, an existing cluster by address), tracks it in MLflow,
selects the best attention-based trial and exports its directions. A trial stands for its best evaluation
(highest objective, kept by the trainer in its best/ folder): that is what the searcher, the selection and
the export see. Being a maximum over evaluations on one set of codes, it flatters; the selected export is
therefore re-evaluated on fresh codes (selection.confirm_seed), and both are reported.

Layout under `<storage_path>/<name>/`: Ray Tune's experiment state and trial checkpoints,
spec.json (the validated spec), optuna.db (the Optuna study, unless a URL is given), mlflow.db (the
embedded MLflow store, unless a server is given), mlruns/ (its artifacts), sweep.png (metrics per trial
and the Pareto front), summary.json and best/ (the export).
"""

import json
import shutil
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import ConcurrencyLimiter

from stylediscover.assessment import assess
from stylediscover.metrics import objective
from stylediscover.sweep.selection import TrialRecord, pareto_front, select_best
from stylediscover.sweep.spec import Choice, SweepSpec, trial_config
from stylediscover.sweep.tracking import SweepTracker
from stylediscover.sweep.trial import run_trial

BEST_FILES = ("directions.safetensors", "directions.json", "traversal.png", "attention.png", "metrics.json")


def tracker_for(spec: SweepSpec) -> SweepTracker:
    return SweepTracker(spec.tracking_uri, spec.mlflow.experiment, spec.name, spec.artifact_location)


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


def _searcher(spec: SweepSpec):
    if spec.search.algorithm in ("random", "grid"):
        return None
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    storage = optuna.storages.RDBStorage(spec.study_storage)
    if spec.search.algorithm == "optuna_multi":
        searcher = OptunaSearch(metric=["best_score", "best_n_discovered"], mode=["max", "max"], storage=storage,
                                study_name=spec.name, seed=spec.search.seed,
                                sampler=optuna.samplers.NSGAIISampler(seed=spec.search.seed))
    else:
        searcher = OptunaSearch(metric="best_objective", mode="max", storage=storage, study_name=spec.name,
                                seed=spec.search.seed)
    return ConcurrencyLimiter(searcher, max_concurrent=spec.max_concurrent)


def _scheduler(spec: SweepSpec):
    if spec.scheduler.type == "none":
        return None
    evaluations = -(-spec.base.steps // spec.base.eval.every)  # the last step is evaluated too
    return ASHAScheduler(metric=spec.scheduler.metric, mode="max", time_attr="training_iteration",
                         max_t=evaluations, grace_period=spec.scheduler.grace_period,
                         reduction_factor=spec.scheduler.reduction_factor)


def tracked(metrics: dict) -> dict[str, float]:
    """The numeric metrics a trial run records at each evaluation: this one's and the best so far."""
    return {k: metrics[k] for k in ("score", "n_discovered", "objective", "loss", "best_step", "best_score",
                                    "best_n_discovered", "best_objective") if k in metrics}


class MlflowCallback(tune.Callback):
    """Mirrors trials into MLflow child runs: params, both metrics per evaluation, artifacts, final status."""

    def __init__(self, spec: SweepSpec):
        self.spec = spec
        self.tracker: SweepTracker | None = None
        self.runs: dict[str, str] = {}

    def setup(self, **info: Any) -> None:
        self.tracker = tracker_for(self.spec)

    def _run(self, trial) -> str:
        if trial.trial_id not in self.runs:
            cfg = trial_config(self.spec.base, trial.config)
            self.runs[trial.trial_id] = self.tracker.trial_run(trial.trial_id, cfg.model_dump(mode="json"))
        return self.runs[trial.trial_id]

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self._run(trial)

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self.tracker.log_metrics(self._run(trial), tracked(result), int(result["step"]))

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info) -> None:
        """Logs every evaluation the checkpoint holds (so none is lost when a driver died before logging it),
        then the latest pictures and the best evaluation's export."""
        run_id = self._run(trial)
        with checkpoint.as_directory() as path:
            path = Path(path)
            history = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
            for entry in history:
                self.tracker.log_metrics(run_id, tracked(entry | {"objective": objective(entry)}), entry["step"])
            step = history[-1]["step"]
            pictures = [p for p in (path / f"traversal-{step:06d}.png", path / f"attention-{step:06d}.png")
                        if p.exists()]
            self.tracker.log_artifacts(run_id, pictures, "pictures")
            self.tracker.log_artifacts(run_id, [path / "best" / n for n in BEST_FILES
                                                if (path / "best" / n).exists()], "best")

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        total = trial_config(self.spec.base, trial.config).steps
        last = (trial.last_result or {}).get("step", 0)
        finished = last >= total
        self.tracker.finish_trial(self._run(trial), "FINISHED" if finished else "KILLED",
                                  "finished" if finished else "stopped_early")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self.tracker.finish_trial(self._run(trial), "FAILED", "failed")


def _init_ray(address: str | None) -> None:
    if ray.is_initialized():
        return
    try:
        if address:
            ray.init(address=address)
        else:
            ray.init(include_dashboard=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        from stylediscover.errors import InputError

        raise InputError(address or "local Ray", f"cannot start or reach Ray ({exc})", "--address") from None


def run_sweep(spec: SweepSpec, address: str | None = None) -> dict:
    """Runs the whole sweep, then selects and exports; returns the summary."""
    if (spec.storage / "spec.json").exists():
        from stylediscover.errors import InputError

        raise InputError(spec.storage, f"a sweep named {spec.name!r} already exists here; continue it with "
                         f"`stylediscover sweep resume {spec.name}` or start another with --set name=NEW_NAME", "name")
    spec.storage.mkdir(parents=True, exist_ok=True)
    (spec.storage / "spec.json").write_text(spec.model_dump_json(indent=2) + "\n")
    _init_ray(address)
    trainable = tune.with_resources(tune.with_parameters(run_trial, base=spec.base.model_dump(mode="json")),
                                    {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu})
    searcher = _searcher(spec)
    tune_config = tune.TuneConfig(search_alg=searcher, scheduler=_scheduler(spec), num_samples=spec.num_samples,
                                  max_concurrent_trials=None if searcher else spec.max_concurrent)
    tuner = tune.Tuner(trainable, param_space=_tune_space(spec), tune_config=tune_config,
                       run_config=_run_config(spec))
    tuner.fit()
    return finish_sweep(spec)


def _run_config(spec: SweepSpec) -> tune.RunConfig:
    return tune.RunConfig(name=spec.name, storage_path=str(spec.storage.parent),
                          failure_config=tune.FailureConfig(max_failures=spec.max_failures),
                          checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
                          callbacks=[MlflowCallback(spec)], verbose=1)


def load_saved_spec(name: str, storage_path: str) -> SweepSpec:
    path = Path(storage_path).resolve() / name / "spec.json"
    if not path.is_file():
        from stylediscover.errors import InputError

        raise InputError(path, f"no sweep named {name!r} under {storage_path} (spec.json missing)")
    return SweepSpec.model_validate(json.loads(path.read_text()))


def resume_sweep(name: str, storage_path: str, address: str | None = None) -> dict:
    """Tuner.restore: finished trials are kept, unfinished and errored ones continue from checkpoints."""
    spec = load_saved_spec(name, storage_path)
    _init_ray(address)
    trainable = tune.with_resources(tune.with_parameters(run_trial, base=spec.base.model_dump(mode="json")),
                                    {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu})
    tune.Tuner.restore(str(spec.storage), trainable, resume_unfinished=True, resume_errored=True).fit()
    return finish_sweep(spec)


def trial_records(spec: SweepSpec) -> list[TrialRecord]:
    """One record per trial from MLflow (outcome, best evaluation) and Tune's storage (last checkpoint)."""
    tracker = tracker_for(spec)
    records = []
    for run in tracker.trial_runs():
        trial_id = run.data.tags.get("stylediscover.trial_id")
        checkpoints = sorted(spec.storage.glob(f"*{trial_id}*/checkpoint_*"))
        records.append(TrialRecord(
            trial_id=trial_id, attention=run.data.params.get("navigator.attention", "?"),
            step=int(run.data.metrics.get("best_step", 0)),
            score=run.data.metrics.get("best_score", float("nan")),
            n_discovered=int(run.data.metrics.get("best_n_discovered", 0)),
            outcome=run.data.tags.get("stylediscover.outcome", "running"),
            checkpoint=checkpoints[-1] if checkpoints else None,
            params={k: v for k, v in run.data.params.items() if k in spec.search_space}))
    return records


def finish_sweep(spec: SweepSpec) -> dict:
    """Selects the best trial, exports it to <storage>/best, records both on the parent MLflow run."""
    from stylediscover.plots import sweep_plot

    records = trial_records(spec)
    best = select_best(records, spec.selection.rule, spec.selection.attention_only)
    front = pareto_front([r for r in records if r.outcome in ("finished", "stopped_early")])
    plot = sweep_plot(records, front, spec.storage / "sweep.png")
    summary = {"sweep": spec.name, "trials": len(records), "pareto_front": [r.trial_id for r in front]}
    files = [plot]
    confirmed: dict[str, float] = {}
    if best is not None:
        out = export_trial(best, spec.storage / "best")
        summary |= {"trial_id": best.trial_id, "step": best.step, "score": best.score,
                    "n_discovered": best.n_discovered, "params": best.params, "export": str(out)}
        files.append(out / "directions.json")
        if spec.selection.confirm_seed is not None:
            summary["confirmed"] = confirm(spec, out)
            confirmed = {f"confirmed_{k}": summary["confirmed"][k] for k in ("score", "n_discovered")}
            files.append(out / "confirmation.json")
    (spec.storage / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    tracker_for(spec).finish_sweep(summary, files, confirmed)
    return summary


def _assess_export(path: str, samples: int | None, seed: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    return assess(Path(path), samples=samples, seed=seed)


def confirm(spec: SweepSpec, export: Path) -> dict:
    """The export's metrics on codes of selection.confirm_seed, computed by a Ray task with a trial's resources;
    the whole result goes to export/confirmation.json, the seed, N and both metrics are returned."""
    task = ray.remote(num_cpus=spec.resources.cpu, num_gpus=spec.resources.gpu)(_assess_export)
    result = ray.get(task.remote(str(export / "directions.safetensors"), spec.selection.confirm_samples,
                                 spec.selection.confirm_seed, max(1, int(spec.resources.cpu))))
    (export / "confirmation.json").write_text(json.dumps(result, indent=1) + "\n")
    return {k: result[k] for k in ("seed", "samples", "score", "n_discovered")}


def export_trial(record: TrialRecord, out: Path) -> Path:
    """Copies a trial's best evaluation (directions with manifest and .npy files, traversal grid, attention map,
    responses, metrics) from its last checkpoint to `out`."""
    shutil.copytree(record.checkpoint / "best", out, dirs_exist_ok=True)
    return out

