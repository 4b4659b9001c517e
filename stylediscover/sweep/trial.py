"""The Ray Tune trainable of one sweep trial; kept free of tracking and search imports for fast workers."""

import shutil
from pathlib import Path
from typing import Any

from ray import tune

from stylediscover.config import TrainConfig
from stylediscover.metrics import objective
from stylediscover.sweep.spec import trial_config
from stylediscover.trainer import train


def run_trial(params: dict[str, Any], base: dict) -> None:
    """The Ray Tune trainable: one trial, resumed from its last Tune checkpoint after a failure."""
    cfg = trial_config(TrainConfig.model_validate(base), params)
    work = Path(tune.get_context().get_trial_dir()) / "work"
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as saved:
            shutil.copytree(saved, work, dirs_exist_ok=True)

    def report(metrics: dict, run_dir: Path) -> None:
        tune.report(metrics | {"objective": objective(metrics)}, checkpoint=tune.Checkpoint.from_directory(run_dir))

    train(cfg, work, report, progress=False)  # the driver prints one line per evaluation instead
