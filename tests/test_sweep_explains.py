"""A sweep explains itself and guides: every command that takes a sweep takes its name or its folder, a missing sweep
is refused naming the folder searched, the sweeps there and how to point elsewhere; the ranking's decision line says
what decided; a redo of a finished sweep's finish, asked for, redoes it (in a real process, whose output has no ANSI
codes when it is not a terminal)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import tiny_spec
from test_sweep_records import saved_sweep

from stylediscover.cli import main
from stylediscover.sweep.ranking import decision, rank_trials, short_name
from stylediscover.sweep.selection import TrialRecord
from stylediscover.sweep.snapshot import TrialSnapshot

ROOT = Path(__file__).parents[1]


def record(trial: str, attention: str, score: float, found: int, robust: int | None = None,
           margin: float | None = None, outcome: str = "finished") -> TrialRecord:
    params = {"navigator.attention": attention, "loss.diversity_weight": "0.0312345"}
    return TrialRecord(trial, attention, score, found, outcome, 4, Path("/checkpoint"), params,
                       robust_n_discovered=robust, weakest_margin=margin)


def test_decision_names_the_deciding_key():
    records = [record("a", "softmax", 0.6, 6, 5, 0.4), record("b", "cumax", 0.5, 6, 6, 0.2),
               record("c", "none", 0.9, 6, 6, 0.9), record("d", "cumax", 0.1, 1, 6, 0.2, "failed")]
    entries = rank_trials(records, "robust_then_margin", True)
    assert [(e["trial_id"], e["rank"], e["excluded"]) for e in entries] == [
        ("b", 1, None), ("a", 2, None), ("c", None, "no attention (selection.attention_only)"), ("d", None, "failed")]
    assert decision(entries, "robust_then_margin") == \
        "b (cumax dw=0.0312) ranks above a (softmax dw=0.0312) on robust count: 6 against 5"
    tied = rank_trials([record("a", "softmax", 0.6, 6, 6, 0.4), record("b", "cumax", 0.5, 6, 6, 0.4000001)],
                       "robust_then_margin", True)
    assert decision(tied, "robust_then_margin") == "b (cumax dw=0.0312) ranks above a (softmax dw=0.0312) on " \
        "weakest margin: 0.4000001 against 0.4000000, after a tie on robust count 6"
    same = rank_trials([record("b", "softmax", 0.5, 6), record("a", "cumax", 0.5, 6)], "discovered_then_score", True)
    assert decision(same, "discovered_then_score").endswith("tie on n_discovered 6, score 0.500: the smaller trial id "
                                                            "ranks first")
    assert decision(rank_trials([record("a", "none", 0.5, 6)], "score", True), "score").startswith(
        "no trial could be selected")


def test_short_names_fit_the_run_list():
    assert short_name({"navigator.attention": "cumax", "loss.diversity_weight": 0.031234}) == "cumax dw=0.0312"
    assert short_name({"loss.temperature": 0.2, "steps": 500, "compile": True}) == "temper=0.2 steps=500 True"


@pytest.fixture
def sweeps(tmp_path) -> Path:
    """A storage folder with the sweeps quickstart-1 and quickstart-2 (each a spec and a snapshot of two trials)."""
    for name in ("quickstart-1", "quickstart-2"):
        spec = saved_sweep(tmp_path / "store", name)
        TrialSnapshot(spec.storage, [
            TrialRecord("t1", "softmax", 0.5, 3, "finished", 4, params={"navigator.attention": "softmax"}),
            TrialRecord("t2", "none", 0.9, 4, "finished", 2, params={"navigator.attention": "none"})])
    return tmp_path / "store"


@pytest.mark.parametrize("command", [["status"], ["best"], ["resume"], ["export", "--out", "unused"]])
def test_a_missing_sweep_names_where_it_looked(sweeps, command, tmp_path):
    out = CliRunner().invoke(main, ["sweep", command[0], "quickstart-3", "--storage-path", str(sweeps), *command[1:]])
    assert out.exit_code == 2 and out.output.count("\n") == 1, out.output
    assert out.output == (f"error: {sweeps / 'quickstart-3'}: no sweep named 'quickstart-3' under {sweeps} (the "
                          "--storage-path, default runs/sweeps relative to where the command runs); sweeps there: "
                          "quickstart-1, quickstart-2; pass --storage-path DIR or the sweep's folder\n")
    elsewhere = CliRunner().invoke(main, ["sweep", command[0], "quickstart-1", "--storage-path", str(tmp_path / "x"),
                                          *command[1:]])
    assert "that folder does not exist; pass --storage-path DIR or the sweep's folder" in elsewhere.output
    folder = CliRunner().invoke(main, ["sweep", command[0], str(tmp_path), *command[1:]])
    assert folder.output == f"error: {tmp_path}: not a sweep folder (no spec.json in it); give a sweep's folder, or " \
                            "its name under --storage-path\n"


def test_status_and_best_take_a_name_or_a_folder(sweeps):
    by_name = [CliRunner().invoke(main, ["sweep", c, "quickstart-2", "--storage-path", str(sweeps)]).output
               for c in ("status", "best")]
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(sweeps)
        by_folder = [CliRunner().invoke(main, ["sweep", c, "quickstart-2/"]).output for c in ("status", "best")]
    assert by_name == by_folder and "sweep quickstart-2: 2 trials" in by_name[1], by_name


def test_list_shows_the_robust_count(sweeps):
    (sweeps / "quickstart-1" / "summary.json").write_text(json.dumps({
        "trial_id": "t1", "n_discovered": 6, "score": 0.524, "robust_n_discovered": 6, "weakest_margin": 0.42}))
    listed = CliRunner().invoke(main, ["sweep", "list", "--storage-path", str(sweeps)]).output
    assert "t1 (6 found, score 0.524, robustly 6 over the validation sets, weakest margin 0.42)" in listed, listed


@pytest.fixture(scope="module")
def finished(tiny_world, tmp_path_factory) -> Path:
    """A finished tiny sweep (2 trials), run by the CLI in its own process (its own local Ray)."""
    root = tmp_path_factory.mktemp("explains")
    spec = tiny_spec(tiny_world, root / "store", name="explained", num_samples=2, max_concurrent=2)
    spec["search_space"]["navigator.attention"]["values"] = ["softmax", "cumax"]
    (root / "spec.yaml").write_text(yaml.safe_dump(spec))
    run = cli(root, "sweep", "run", str(root / "spec.yaml"))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "(run_trial pid=" in run.stdout + run.stderr and "\x1b[" not in run.stdout + run.stderr
    return root / "store" / "explained"


def cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(root), "RAY_TMPDIR": str(root),
           "RAY_USAGE_STATS_ENABLED": "0"}
    return subprocess.run([sys.executable, "-m", "stylediscover.cli", *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=600)


def test_a_redo_of_the_finish_is_asked_for_and_prints_no_ansi_codes(finished):
    first = json.loads((finished / "summary.json").read_text())
    assert first["driver"] == "run"
    redo = cli(finished.parent.parent, "sweep", "resume", str(finished), "--redo-finish")
    assert redo.returncode == 0, redo.stdout[-3000:] + redo.stderr[-3000:]
    assert "\x1b[" not in redo.stdout + redo.stderr
    summary = json.loads((finished / "summary.json").read_text())
    assert summary["driver"] == "redo of the finish" and summary["trial_id"] == first["trial_id"]
    assert f"best trial {first['trial_id']} (the selection)" in redo.stdout and f"decided: {summary['decision']}" in \
        redo.stdout, redo.stdout
    assert not list(finished.glob(".best-*")) and "heldout" in json.loads((finished / "best" / "directions.json")
                                                                          .read_text())
