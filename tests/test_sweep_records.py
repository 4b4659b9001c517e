"""A sweep's trial records as `sweep status` and `best` read them: from the driver's snapshot (trials.jsonl) without
importing MLflow, Ray or torch, or from MLflow for sweeps older than it, whose runs hold the metric names of before."""

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from stylediscover.cli import main
from stylediscover.sweep.records import recorded_trials, trial_records
from stylediscover.sweep.selection import TrialRecord, pareto_front, select_best
from stylediscover.sweep.settings import SweepSettings
from stylediscover.sweep.snapshot import SNAPSHOT_FILE, TrialSnapshot, read_snapshot

ROOT = Path(__file__).parents[1]
SPACE = {"navigator.attention": {"type": "choice", "values": ["softmax", "none"]}}


def ranking_rows(output: str) -> dict[str, list[str]]:
    """`sweep best`'s ranking table: trial id → its cells (split on runs of 2 spaces or more)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["rank", "trial"])
    rows = [re.split(r" {2,}", line.strip()) for line in lines[start + 1:] if not line.strip().startswith("(")]
    return {row[1]: row for row in rows[:next(i for i, row in enumerate(rows) if len(row) < 3)]}


def saved_sweep(storage: Path, name: str, **settings) -> SweepSettings:
    """A sweep folder holding only spec.json, and a checkpoint folder of each of its trials t1, t2 and t3."""
    spec = SweepSettings(name=name, storage_path=str(storage), search_space=SPACE, **settings)
    spec.storage.mkdir(parents=True)
    (spec.storage / "spec.json").write_text(spec.model_dump_json())
    for trial in ("t1", "t2", "t3"):
        (spec.storage / f"run_trial_{trial}_0" / "checkpoint_000002").mkdir(parents=True)
    return spec


def test_old_sweeps_are_read_from_mlflow_under_the_old_metric_names(tmp_path):
    """Runs logged before METRIC_NAMES hold Tune's keys; without trials.jsonl, status and best read them, and a resume
    sees which steps are logged."""
    from stylediscover.sweep.records import tracker_for

    spec = saved_sweep(tmp_path, "old")
    tracker = tracker_for(spec)
    for trial, attention, figures in (("t1", "softmax", (4, 0.5, 3)), ("t2", "none", (2, 0.9, 4))):
        run_id = tracker.trial_run(trial, {"navigator": {"attention": attention}, "lr": 0.05})
        for step in (2, 4):
            tracker.log_metrics(run_id, {"score": 0.1, "n_discovered": 1, "objective": 1.1, "loss": 0.3,
                                         "best_step": figures[0], "best_score": figures[1],
                                         "best_n_discovered": figures[2], "best_objective": figures[1] + figures[2]},
                                step)
        tracker.finish_trial(run_id, "FINISHED", "finished")
    assert tracker_for(spec).logged_steps(run_id) == {2, 4}

    records = {r.trial_id: r for r in trial_records(spec)}
    assert (records["t1"].step, records["t1"].score, records["t1"].n_discovered) == (4, 0.5, 3)
    assert records["t1"].params == {"navigator.attention": "softmax"} and records["t1"].checkpoint is not None
    assert [r.trial_id for r in recorded_trials(spec)] == [r.trial_id for r in trial_records(spec)]
    status = CliRunner().invoke(main, ["sweep", "status", "old", "--storage-path", str(tmp_path)])
    assert status.exit_code == 0 and "finished" in status.output and "0.5000" in status.output, status.output
    best = CliRunner().invoke(main, ["sweep", "best", "old", "--storage-path", str(tmp_path)])
    rows = ranking_rows(best.output)
    assert rows["t1"] == ["1", "t1", "attention=softmax", "0.5000", "3", "4"], best.output
    assert rows["t2"] == ["-", "t2", "attention=none", "0.9000", "4", "2",
                          "excluded: no attention (selection.attention_only); Pareto front"], best.output
    assert "decided: t1 (softmax) is the only trial that could be selected" in best.output
    assert "not finished yet" in best.output


def test_snapshot_keeps_what_mlflow_keeps(tmp_path):
    """The latest selected evaluation whatever order evaluations are logged in; an error until another replaces it."""
    snapshot = TrialSnapshot(tmp_path, [TrialRecord("t0", "cumax", 0.7, 2, "finished", 6, tmp_path, run_id="r0")])
    snapshot.opened("t1", "r1", "softmax", {"navigator.attention": "softmax"})
    snapshot.opened("t1", "other", "none", {})  # a reopened run keeps its record
    assert math.isnan(read_snapshot(tmp_path)[1].score)
    snapshot.evaluated("t1", {"best_step": 4, "best_score": 0.5, "best_n_discovered": 3})
    snapshot.evaluated("t1", {"best_step": 2, "best_score": 0.6, "best_n_discovered": 2})  # logged late by a resume
    snapshot.ended("t1", "failed", "RuntimeError: boom")
    snapshot.ended("t1", "finished")
    assert read_snapshot(tmp_path) == [
        TrialRecord("t0", "cumax", 0.7, 2, "finished", 6, run_id="r0"),
        TrialRecord("t1", "softmax", 0.5, 3, "finished", 4, params={"navigator.attention": "softmax"},
                    error="RuntimeError: boom", run_id="r1")]
    assert sorted(p.name for p in tmp_path.iterdir()) == [SNAPSHOT_FILE]
    (tmp_path / SNAPSHOT_FILE).write_text("{not json")
    assert read_snapshot(tmp_path) is None


def test_status_and_best_read_the_snapshot_without_mlflow_ray_or_torch(tmp_path):
    """A sweep with trials.jsonl but no MLflow store: status and best answer from the file and import none of them."""
    spec = saved_sweep(tmp_path, "fast")
    TrialSnapshot(spec.storage, [
        TrialRecord("t1", "softmax", 0.5, 3, "finished", 4, params={"navigator.attention": "softmax"}, run_id="r1"),
        TrialRecord("t2", "none", 0.9, 4, "stopped_early", 2, params={"navigator.attention": "none"}, run_id="r2")])
    assert [r.checkpoint is not None for r in recorded_trials(spec)] == [True, True]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for command in ("status", "best"):
        out = subprocess.run([sys.executable, "-X", "importtime", "-m", "stylediscover.cli", "sweep", command, "fast",
                              "--storage-path", str(tmp_path)], capture_output=True, text=True, env=env, cwd=ROOT)
        assert out.returncode == 0, out.stderr[-2000:]
        assert "t1" in out.stdout and "mlflow.db" not in os.listdir(spec.storage)
        imported = {line.split("|")[-1].strip().split(".")[0] for line in out.stderr.splitlines()
                    if line.startswith("import time:")}
        assert not imported & {"mlflow", "ray", "torch"}, sorted(imported & {"mlflow", "ray", "torch"})
    assert ranking_rows(out.stdout)["t1"][:6] == ["1", "t1", "attention=softmax", "0.5000", "3", "4"], out.stdout


def test_robust_figures_travel_alike_and_robust_then_margin_selects_on_them(tmp_path):
    """Trials evaluated on several validation sets: their robust figures reach MLflow (under METRIC_NAMES) and
    trials.jsonl alike; robust_then_margin ranks robust_n_discovered, then weakest_margin, above score."""
    from stylediscover.sweep.records import tracker_for
    from stylediscover.sweep.tracking import tracked

    spec = saved_sweep(tmp_path, "robust", selection={"rule": "robust_then_margin"})
    tracker, snapshot = tracker_for(spec), TrialSnapshot(spec.storage, [])
    for trial, (score, robust, margin) in {"t1": (0.9, 5, 0.4), "t2": (0.5, 6, 0.2), "t3": (0.1, 6, 0.3)}.items():
        result = {"step": 4, "score": score, "n_discovered": 6, "robust_n_discovered": robust,
                  "weakest_margin": margin, "objective": robust + margin, "best_step": 4, "best_score": score,
                  "best_n_discovered": 6, "best_robust_n_discovered": robust, "best_weakest_margin": margin,
                  "best_objective": robust + margin}
        run_id = tracker.trial_run(trial, {"navigator": {"attention": "softmax"}})
        snapshot.opened(trial, run_id, "softmax", {"navigator.attention": "softmax"})
        tracker.log_metrics(run_id, tracked(result), 4)
        snapshot.evaluated(trial, result)
        tracker.finish_trial(run_id, "FINISHED", "finished")
        snapshot.ended(trial, "finished")
    logged = tracker.client.get_run(run_id).data.metrics
    assert logged["eval_robust_n_discovered"] == 6 and logged["selected_weakest_margin"] == 0.3
    from_mlflow = {r.trial_id: r for r in trial_records(spec)}
    from_snapshot = {r.trial_id: r for r in recorded_trials(spec)}
    for trial, record in from_mlflow.items():
        assert (record.robust_n_discovered, record.weakest_margin) == pytest.approx(
            (from_snapshot[trial].robust_n_discovered, from_snapshot[trial].weakest_margin))
    assert select_best(list(from_mlflow.values()), "robust_then_margin").trial_id == "t3"
    assert select_best(list(from_snapshot.values()), "discovered_then_score").trial_id == "t1"
    best = CliRunner().invoke(main, ["sweep", "best", "robust", "--storage-path", str(tmp_path)])
    rows = ranking_rows(best.output)
    assert [rows[t][:8] for t in ("t3", "t2", "t1")] == [
        ["1", "t3", "attention=softmax", "6", "0.300", "0.1000", "6", "4"],
        ["2", "t2", "attention=softmax", "6", "0.200", "0.5000", "6", "4"],
        ["3", "t1", "attention=softmax", "5", "0.400", "0.9000", "6", "4"]], best.output
    assert "decided: t3 (softmax) ranks above t2 (softmax) on weakest margin: 0.300 against 0.200, after a tie on " \
           "robust count 6" in best.output, best.output
    status = CliRunner().invoke(main, ["sweep", "status", "robust", "--storage-path", str(tmp_path)])
    assert "robust" in status.output.splitlines()[0] and "     6  0.1000" in status.output, status.output


def test_selection_does_not_depend_on_the_records_order(tmp_path):
    """MLflow lists runs newest first, trials.jsonl in the order trials started: ties must select alike."""
    records = [TrialRecord(t, "softmax", 0.5, 3, "finished", 4, tmp_path) for t in ("b2", "a1", "c3")]
    assert {select_best(order, "discovered_then_score").trial_id for order in (records, records[::-1])} == {"a1"}
    assert [r.trial_id for r in pareto_front(records[::-1])] == ["a1", "b2", "c3"]
