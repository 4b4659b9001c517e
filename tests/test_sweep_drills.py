"""Failure drills (evaluation/drills.py): a tiny sweep's driver is killed at each named point, then
`stylediscover sweep resume` must finish it with nothing lost, duplicated or left RUNNING; an all-failing sweep must
say why; a broken spec.json must be refused in one line.

The drills are real `stylediscover` subprocesses with their own HOME and RAY_TMPDIR; they run three at a time
(most of a drill is Ray and worker start-up, not compute) and every process they leave is killed by PID.
"""

import importlib.util
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import tiny_spec

from stylediscover.cli import main
from stylediscover.sweep.spec import SweepSpec

ROOT = Path(__file__).parents[1]
_spec = importlib.util.spec_from_file_location("drills", ROOT / "evaluation" / "drills.py")
drills = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(drills)


@pytest.fixture(scope="module")
def results(tiny_world, tmp_path_factory) -> dict:
    """Every kill-point drill and an all-failing sweep (its generator file truncated), run concurrently."""
    root = tmp_path_factory.mktemp("drills")
    broken = root / "broken.safetensors"
    broken.write_bytes((tiny_world / "g.safetensors").read_bytes()[:-200])
    base = tiny_spec(tiny_world, root)["base"] | {"steps": 6, "generator": str(broken)}
    jobs = {point: (point, {}) for point in drills.KILL_POINTS}
    jobs["failing"] = (None, {"max_failures": 0, "base": base})
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {key: pool.submit(drills.run_drill, tiny_world, root / key, point, **overrides)
                   for key, (point, overrides) in jobs.items()}
        futures["concurrent"] = pool.submit(drills.run_concurrent, tiny_world, root / "concurrent", _fresh_postgres())
        futures["disk_full"] = pool.submit(drills.run_disk_full, tiny_world, root / "disk_full")
        return {key: f.result() for key, f in futures.items()}


def _fresh_postgres() -> str | None:
    """A new, empty database on the local PostgreSQL (127.0.0.1:5432, trust auth), or None when none answers."""
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    name = f"sd_drill_{uuid.uuid4().hex[:8]}"
    engine = create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test", isolation_level="AUTOCOMMIT",
                           connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name}"))
    except OperationalError:
        return None
    finally:
        engine.dispose()
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


@pytest.mark.parametrize("point", drills.KILL_POINTS)
def test_killed_driver_then_resume_finishes(results, point):
    r = results[point]
    assert r["killed"], f"the driver was not killed at {point}: exit {r['run_rc']}\n{r['output'][-3000:]}"
    assert r["resume_rc"] == 0, r["output"][-3000:]
    assert len(r["tune_ids"]) == r["planned"] and set(r["tune_ids"].values()) == {1}, r["tune_ids"]
    assert r["finished"] == r["planned"]
    assert r["run_ids"] == set(r["tune_ids"]) and r["duplicate_runs"] == 0
    assert r["stuck_runs"] == 0 and r["run_statuses"] == {"FINISHED": r["planned"]}
    assert r["optuna"] == {"COMPLETE": r["finished"]}
    assert r["selection"] and "best trial" in r["output"]
    assert r["snapshot_agrees"], "trials.jsonl differs from MLflow's records"


def test_all_failing_sweep_exits_non_zero_with_the_trials_error(results):
    r = results["failing"]
    assert r["run_rc"] == 2, r["output"][-3000:]
    error = [line for line in r["output"].splitlines() if line.startswith("error: ")]
    assert len(error) == 1, r["output"][-3000:]
    assert "failed: " in error[0] and "loss.form" in error[0] and "no trial to select" in error[0]
    assert r["run_statuses"] == {"FAILED": 1} or r["run_statuses"] == {"FAILED": r["planned"]}
    assert all(e and e in error[0] for e in r["run_errors"]), (r["run_errors"], error[0])
    assert r["optuna"]["RUNNING"] == 0 and not r["selection"] and r["snapshot_agrees"]


def test_two_sweeps_at_once_share_storage_and_stores(results):
    """Two sweeps started at the same moment, one storage folder, one new MLflow store and (PostgreSQL permitting)
    one new Optuna database: both finish with nothing lost or mixed; a third with one of their names is refused."""
    a, b, refused = results["concurrent"]
    for r in (a, b):
        assert r["run_rc"] == 0, r["output"][-3000:]
        assert r["finished"] == r["planned"] and r["runs"] == r["planned"] and r["duplicate_runs"] == 0
        assert r["parents"] == 1 and r["stuck_runs"] == 0 and r["optuna"] == {"COMPLETE": r["planned"]}
        assert r["selection"] and r["snapshot_agrees"]
    assert refused["run_rc"] == 2 and refused["output"].count("\n") == 1, refused["output"][-3000:]
    assert "already exists" in refused["output"]


def test_storage_filling_up_pauses_the_sweep_and_resume_finishes_it(results):
    r = results["disk_full"]
    if r is None:
        pytest.skip("mounting a small tmpfs needs root")
    errors = [line for line in r["first_output"].splitlines() if line.startswith("error: ")]
    assert r["run_rc"] == 2 and len(errors) == 1 and "paused" in errors[0] and "sweep resume" in errors[0], \
        r["first_output"][-3000:]
    assert "Traceback" not in r["first_output"]
    assert r["resume_rc"] == 0, r["output"][-3000:]
    assert r["finished"] == r["planned"] and r["duplicate_runs"] == 0 and r["stuck_runs"] == 0
    assert r["run_statuses"] == {"FINISHED": r["planned"]} and r["selection"] and r["snapshot_agrees"]
    # Under load a trial stopped by the pause can end ERROR before the resume finishes it; its Optuna trial is then
    # FAIL for good (Optuna cannot reopen a trial). What must hold: no ghost RUNNING trial, none lost.
    assert r["optuna"]["RUNNING"] == 0 and sum(r["optuna"].values()) == r["planned"]


def _resume(storage: Path, name: str):
    """`sweep resume` in-process: the refusals come before Ray starts."""
    return CliRunner().invoke(main, ["sweep", "resume", name, "--storage-path", str(storage)])


@pytest.mark.parametrize("content", ["", "{not json", json.dumps({"name": "x"}), "\udcff"])
def test_broken_spec_json_is_refused_in_one_line(tmp_path, content):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "spec.json").write_text(content, errors="surrogateescape")
    out = _resume(tmp_path, "s")
    assert out.exit_code == 2 and out.output.count("\n") == 1, out.output
    assert out.output.startswith(f"error: {tmp_path / 's' / 'spec.json'}: "), out.output


def test_sweep_without_tune_state_is_refused_in_one_line(tiny_world, tmp_path):
    (tmp_path / "s").mkdir()
    spec = SweepSpec.model_validate(drills.drill_spec(tiny_world, tmp_path, "s"))
    (tmp_path / "s" / "spec.json").write_text(spec.model_dump_json())
    out = _resume(tmp_path, "s")
    assert out.exit_code == 2 and out.output.count("\n") == 1, out.output
    assert out.output.startswith(f"error: {tmp_path / 's'}: no Ray Tune state"), out.output
