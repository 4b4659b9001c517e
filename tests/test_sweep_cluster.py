"""Sweeps on a real two-node Ray cluster with a real MLflow server backed by PostgreSQL at 127.0.0.1:5432.

Failure drills: a worker node killed mid-trial (the sweep completes from checkpoints with one MLflow
run per trial and no metric lost) and a killed driver (`sweep resume` finishes the sweep).
"""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import yaml
from conftest import tiny_spec
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).parents[1]
POSTGRES = "postgresql://postgres@127.0.0.1:5432"
STEPS, EVERY = 12, 2

spec_ = importlib.util.spec_from_file_location("local_cluster", ROOT / "deploy" / "local" / "cluster.py")
local_cluster = importlib.util.module_from_spec(spec_)
spec_.loader.exec_module(local_cluster)


def _admin(sql: str) -> None:
    with psycopg.connect(f"{POSTGRES}/test", autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture(scope="module")
def databases():
    """Fresh PostgreSQL databases for the MLflow server and the Optuna study (each keeps its own alembic table)."""
    names = {role: f"sd_test_{uuid.uuid4().hex[:8]}_{role}" for role in ("mlflow", "optuna")}
    for name in names.values():
        _admin(f"CREATE DATABASE {name}")
    yield {role: f"{POSTGRES}/{name}" for role, name in names.items()}
    for name in names.values():
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="module")
def cluster(databases):
    root = Path(f"/tmp/sd-cluster-{uuid.uuid4().hex[:6]}")
    c = local_cluster.LocalCluster(root, databases["mlflow"]).up()
    yield c
    c.down()
    subprocess.run(["rm", "-rf", str(root)], check=False)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_down_returns_once_every_started_process_is_gone(tmp_path):
    """Stand-ins, each a shell with a child in its own group: a Ray node that ends its child on SIGTERM (signalled
    alone), an MLflow server whose child needs the signal too (signalled as a group), and a node deaf to SIGTERM (killed
    after the timeout)."""
    scripts = {"head": 'sleep 60 & trap "kill $!; exit" TERM; wait', "mlflow": "sleep 60 & wait",
               "worker": 'trap "" TERM; sleep 60 & wait'}
    procs = {name: subprocess.Popen(["sh", "-c", script], start_new_session=True) for name, script in scripts.items()}
    (tmp_path / "state.json").write_text(json.dumps({"pids": {name: p.pid for name, p in procs.items()}}))
    time.sleep(0.5)
    started = time.monotonic()
    local_cluster.down_from_state(tmp_path, timeout_s=2)
    assert time.monotonic() - started < 6
    assert not any(group_alive(p.pid) for p in procs.values())
    assert not (tmp_path / "state.json").exists()


def write_spec(world, tmp_path: Path, cluster, study_storage: str, name: str) -> Path:
    spec = tiny_spec(world, tmp_path / "store", name=name, num_samples=2, max_concurrent=2, max_failures=3,
                     mlflow={"tracking_uri": cluster.mlflow_uri, "experiment": name},
                     search={"algorithm": "optuna_tpe", "seed": 1, "study_storage": study_storage})
    spec["base"]["steps"] = STEPS
    spec["base"]["eval"]["every"] = EVERY
    spec["search_space"] = {"loss.form": {"type": "choice", "values": ["linear", "infonce"]}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def driver(cluster, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "stylediscover.cli", *args, "--address", cluster.ray_address],
                            env=cluster.env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def wait_for(predicate, what: str, proc: subprocess.Popen, timeout_s: float = 300) -> None:
    """Polls `predicate`; if the driver `proc` ends or time runs out first, fails with its output."""
    deadline = time.time() + timeout_s
    while time.time() < deadline and proc.poll() is None:
        if predicate():
            return
        time.sleep(0.2)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError(f"{what}: not reached; driver output:\n{proc.communicate()[0][-5000:]}")


def checkpoints(storage: Path, name: str) -> list[Path]:
    return sorted((storage / name).glob("run_trial_*/checkpoint_*"))


def assert_complete(cluster, experiment: str) -> None:
    """Exactly one finished child run per trial, each with every evaluation step logged once."""
    client = MlflowClient(cluster.mlflow_uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id])
    trials = [r for r in runs if r.data.tags.get("stylediscover.role") == "trial"]
    assert len(trials) == 2, [r.info.run_name for r in trials]
    assert len([r for r in runs if r.data.tags.get("stylediscover.role") == "sweep"]) == 1
    for run in trials:
        assert run.info.status == "FINISHED"
        for metric in ("eval_score", "eval_n_discovered"):
            steps = [m.step for m in client.get_metric_history(run.info.run_id, metric)]
            # every evaluation exactly once; a resumed trial's backfilled steps may arrive after later ones
            assert sorted(steps) == list(range(EVERY, STEPS + 1, EVERY)), (metric, steps)


def test_worker_node_lost_mid_trial(tiny_world, tmp_path, cluster, databases):
    spec = write_spec(tiny_world, tmp_path, cluster, databases["optuna"], "nodeloss")
    proc = driver(cluster, "sweep", "run", str(spec))
    wait_for(lambda: len({p.parent for p in checkpoints(tmp_path / "store", "nodeloss")}) == 2,
             "both trials checkpointed", proc)
    cluster.kill("worker")
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    assert_complete(cluster, "nodeloss")
    assert (tmp_path / "store" / "nodeloss" / "best" / "directions.safetensors").exists()


def test_killed_driver_then_resume(tiny_world, tmp_path, cluster, databases):
    """Runs on the nodes left by the previous test (at least the head node)."""
    spec = write_spec(tiny_world, tmp_path, cluster, databases["optuna"], "driverloss")
    proc = driver(cluster, "sweep", "run", str(spec))
    wait_for(lambda: checkpoints(tmp_path / "store", "driverloss"), "a first checkpoint", proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    resumed = driver(cluster, "sweep", "resume", "driverloss", "--storage-path", str(tmp_path / "store"))
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out[-3000:]
    assert "best trial" in out and "on held-out test codes (" in out
    assert_complete(cluster, "driverloss")
