"""The Ray Tune trainable of one sweep trial; kept free of tracking and search imports for fast workers."""

import shutil
from pathlib import Path
from typing import Any

from ray import tune

from stylediscover.config import TrainConfig
from stylediscover.metrics import objective
from stylediscover.sweep.spec import trial_config
from stylediscover.trainer import train

# Reported first, so Tune's console table (which shows a result's first four figures) shows what selection ranks.
LEADING = ("step", "best_robust_n_discovered", "best_weakest_margin", "best_n_discovered", "best_score")


def run_trial(params: dict[str, Any], base: dict) -> None:
    """The Ray Tune trainable: one trial, resumed from its last Tune checkpoint after a failure."""
    cfg = trial_config(TrainConfig.model_validate(base), params)
    work = Path(tune.get_context().get_trial_dir()) / "work"
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as saved:
            shutil.copytree(saved, work, dirs_exist_ok=True)

    def report(metrics: dict, run_dir: Path) -> None:
        ordered = {k: metrics[k] for k in LEADING if k in metrics} | metrics | {"objective": objective(metrics)}
        tune.report(ordered, checkpoint=tune.Checkpoint.from_directory(run_dir))

    train(cfg, work, report, progress=False)  # the driver prints one line per evaluation instead
