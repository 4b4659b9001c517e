"""Failure drills: a tiny sweep's driver is killed at each named point (STYLEDISCOVER_KILL_AT, see
stylediscover.sweep.runner.kill_at), then `stylediscover sweep resume` finishes it; the table tells what survived.

Usage: .venv/bin/python evaluation/drills.py   (regenerates evaluation/results/drills.md; a few minutes on 2 cores)
tests/test_sweep_drills.py runs the same drills and asserts on their outcome.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import tiny_config, tiny_spec, write_tiny_world  # noqa: E402

from stylediscover.sweep.runner import KILL_POINTS  # noqa: E402

TRIALS = 2
FREE_LEFT_MIB = 40  # below the sweep's 100 MiB headroom, above what pausing writes


def drill_spec(world: Path, storage: Path, name: str, **overrides) -> dict:
    """TRIALS Optuna trials of 6 steps (evaluations at 2, 4, 6), attention-based, no scheduler."""
    spec = tiny_spec(world, storage, name=name, num_samples=TRIALS, max_concurrent=TRIALS, max_failures=1,
                     search_space={"loss.form": {"type": "choice", "values": ["linear", "infonce"]}})
    spec["base"] = tiny_config(world, steps=6).model_dump(mode="json")
    return spec | overrides


def _ray_pids(ray_tmp: Path) -> list[int]:
    """Processes started with RAY_TMPDIR=ray_tmp (only ours can be read)."""
    marker = f"RAY_TMPDIR={ray_tmp}".encode() + b"\0"
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if marker in (proc / "environ").read_bytes() + b"\0":
                    pids.append(int(proc.name))
            except OSError:
                pass
    return pids


def stop_ray(ray_tmp: Path) -> None:
    """SIGKILLs, by PID, every process left running with this RAY_TMPDIR (a killed driver's Ray)."""
    for pid in _ray_pids(ray_tmp):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def cli(env: dict, *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stylediscover.cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout_s, cwd=ROOT)


def drill_env(root: Path) -> tuple[dict, Path]:
    """Environment of the drill's drivers: HOME under `root`, a short private RAY_TMPDIR (Ray's socket paths must
    stay under 108 characters), no usage stats."""
    ray_tmp = Path(tempfile.mkdtemp(prefix="sd-drill-", dir="/tmp"))
    (root / "home").mkdir(parents=True, exist_ok=True)
    return {**os.environ, "HOME": str(root / "home"), "RAY_TMPDIR": str(ray_tmp), "RAY_USAGE_STATS_ENABLED": "0",
            "PYTHONPATH": str(ROOT)}, ray_tmp


def run_drill(world: Path, root: Path, point: str | None, **overrides) -> dict:
    """Runs the tiny sweep with the driver killed at `point` (None: no kill), resumes it when it was killed,
    and returns what the stores hold (see `outcome`) with the drivers' exit codes and output."""
    name = f"drill_{point or 'none'}"
    env, ray_tmp = drill_env(root)
    spec_path = root / f"{name}.yaml"
    spec_path.write_text(yaml.safe_dump(drill_spec(world, root / "store", name, **overrides)))
    start = time.time()
    try:
        first = cli(env | ({"STYLEDISCOVER_KILL_AT": point} if point else {}), "sweep", "run", str(spec_path))
        stop_ray(ray_tmp)
        resumed = cli(env, "sweep", "resume", name, "--storage-path", str(root / "store")) \
            if first.returncode == -signal.SIGKILL else None
    finally:
        stop_ray(ray_tmp)
        subprocess.run(["rm", "-rf", str(ray_tmp)], check=False)
    last = resumed or first
    return outcome(root / "store" / name) | {
        "fault": point or "none", "killed": first.returncode == -signal.SIGKILL, "run_rc": first.returncode,
        "resume_rc": resumed.returncode if resumed else None, "output": last.stdout + last.stderr,
        "seconds": time.time() - start}


def outcome(sweep: Path) -> dict:
    """Tune's trials (planned, TERMINATED, ERROR), the sweep's MLflow child runs (total, duplicated trial ids,
    RUNNING, their statuses and error tags), its Optuna study's trial states, whether selection and export were
    written and whether trials.jsonl holds what MLflow holds; the stores are those its spec.json names."""
    from dataclasses import asdict, replace

    import optuna
    from mlflow.tracking import MlflowClient
    from ray.tune import ExperimentAnalysis

    from stylediscover.sweep.records import load_saved_spec, trial_records
    from stylediscover.sweep.snapshot import read_snapshot
    from stylediscover.sweep.tracking import ROLE_TAG, STORAGE_TAG, SWEEP_TAG

    spec = load_saved_spec(sweep.name, str(sweep.parent))
    trials = ExperimentAnalysis(str(sweep)).trials if (sweep / "tuner.pkl").exists() else []
    client = MlflowClient(spec.tracking_uri)
    runs = [r for r in client.search_runs([e.experiment_id for e in client.search_experiments()])
            if r.data.tags.get(SWEEP_TAG) == spec.name and r.data.tags.get(STORAGE_TAG) == str(spec.storage)]
    children = [r for r in runs if r.data.tags.get(ROLE_TAG) == "trial"]
    ids = Counter(r.data.tags["stylediscover.trial_id"] for r in children)
    study = optuna.load_study(study_name=spec.name, storage=spec.study_storage)
    states = Counter(t.state.name for t in study.get_trials(deepcopy=False))

    def comparable(records: list) -> list[str]:  # NaN (a trial never evaluated) equals itself in JSON only
        return sorted(json.dumps(asdict(replace(r, checkpoint=None))) for r in records)

    snapshot, mlflow_records = comparable(read_snapshot(sweep) or []), comparable(trial_records(spec))
    return {"planned": spec.num_samples, "tune_ids": Counter(t.trial_id for t in trials),
            "finished": sum(t.status == "TERMINATED" for t in trials),
            "errored": sum(t.status == "ERROR" for t in trials),
            "runs": len(children), "duplicate_runs": sum(n - 1 for n in ids.values()),
            "parents": sum(r.data.tags.get(ROLE_TAG) == "sweep" for r in runs),
            "stuck_runs": sum(r.info.status == "RUNNING" for r in runs),
            "run_ids": set(ids), "run_statuses": Counter(r.info.status for r in children),
            "run_errors": [r.data.tags.get("stylediscover.error", "") for r in children],
            "optuna": states, "selection": (sweep / "summary.json").exists() and (sweep / "best").is_dir(),
            "snapshot_agrees": bool(snapshot) and snapshot == mlflow_records}


def run_concurrent(world: Path, root: Path, study_storage: str | None = None) -> list[dict]:
    """Three sweeps started at the same moment on one machine, in one storage folder, logging to one new MLflow
    store (SQLite) and, when `study_storage` is given, one Optuna database: `a` and `b` must both finish; `a2`,
    which has `a`'s name, must be refused before it writes anything (whichever of the two came first runs)."""
    env, ray_tmp = drill_env(root)
    shared = {"mlflow": {"tracking_uri": f"sqlite:///{root / 'shared-mlflow.db'}"}}
    if study_storage:
        shared["search"] = {"algorithm": "optuna_tpe", "seed": 0, "study_storage": study_storage}
    paths = {}
    for key, name in (("a", "concurrent_a"), ("b", "concurrent_b"), ("a2", "concurrent_a")):
        paths[key] = root / f"{key}.yaml"
        paths[key].write_text(yaml.safe_dump(drill_spec(world, root / "store", name, **shared)))
    start = time.time()
    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            done = dict(zip(paths, pool.map(lambda path: cli(env, "sweep", "run", str(path)), paths.values())))
    finally:
        stop_ray(ray_tmp)
        subprocess.run(["rm", "-rf", str(ray_tmp)], check=False)
    ran, refused = sorted((done["a"], done["a2"]), key=lambda r: r.returncode)
    rows = [outcome(root / "store" / name) | {
        "fault": f"concurrent sweep {name}", "run_rc": result.returncode, "resume_rc": None,
        "output": result.stdout + result.stderr, "seconds": time.time() - start}
        for name, result in (("concurrent_a", ran), ("concurrent_b", done["b"]))]
    return rows + [{"fault": "concurrent sweep with concurrent_a's name", "run_rc": refused.returncode,
                    "output": refused.stdout + refused.stderr}]


def run_disk_full(world: Path, root: Path) -> dict | None:
    """The sweep's storage (a 120 MiB tmpfs, so root only: None otherwise) fills up to FREE_LEFT_MIB once its trials
    have checkpointed: the sweep must pause with one line saying so, and `sweep resume` finish it once space is
    freed."""
    mount = root / "disk"
    mount.mkdir(parents=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=120m", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        return None
    env, ray_tmp = drill_env(root)
    name, filler = "drill_disk_full", mount / "filler"
    spec = drill_spec(world, mount, name, base=drill_spec(world, mount, name)["base"] | {"steps": 12})
    (root / f"{name}.yaml").write_text(yaml.safe_dump(spec))
    start = time.time()
    try:
        command = [sys.executable, "-m", "stylediscover.cli", "sweep", "run", str(root / f"{name}.yaml")]
        driver = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  cwd=ROOT)
        while driver.poll() is None and not any((mount / name).glob("run_trial_*/checkpoint_*")):
            time.sleep(0.2)
        free_mib = shutil.disk_usage(mount).free >> 20
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M", f"count={free_mib - FREE_LEFT_MIB}"],
                       capture_output=True)
        first_output = driver.communicate(timeout=300)[0]
        stop_ray(ray_tmp)
        filler.unlink()
        resumed = cli(env, "sweep", "resume", name, "--storage-path", str(mount))
        return outcome(mount / name) | {
            "fault": "storage full mid-sweep", "run_rc": driver.returncode, "resume_rc": resumed.returncode,
            "first_output": first_output, "output": resumed.stdout + resumed.stderr, "seconds": time.time() - start}
    finally:
        stop_ray(ray_tmp)
        subprocess.run(["rm", "-rf", str(ray_tmp)], check=False)
        subprocess.run(["umount", "-l", str(mount)], check=False)


def table(rows: list[dict]) -> str:
    lines = ["| fault | resume exit | trials planned / finished / lost | MLflow runs total / duplicate / stuck RUNNING "
             "| Optuna COMPLETE / RUNNING / FAIL | selection written | seconds |", "|---" * 7 + "|"]
    for r in rows:
        if "optuna" not in r:
            lines.append(f"| {r['fault']} | refused before writing anything (exit {r['run_rc']}) |" + " |" * 5)
            continue
        o = r["optuna"]
        lines.append(f"| {r['fault']} | {r['resume_rc']} | {r['planned']} / {r['finished']} / "
                     f"{r['planned'] - r['finished']} | {r['runs']} / {r['duplicate_runs']} / {r['stuck_runs']} | "
                     f"{o['COMPLETE']} / {o['RUNNING']} / {o['FAIL']} | {'yes' if r['selection'] else 'no'} | "
                     f"{r['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    from machine import describe

    with tempfile.TemporaryDirectory(prefix="sd-drills-") as tmp:
        world = write_tiny_world(Path(tmp) / "world")
        with ThreadPoolExecutor(max_workers=3) as pool:
            rows = list(pool.map(lambda point: run_drill(world, Path(tmp) / point, point), KILL_POINTS))
        rows += run_concurrent(world, Path(tmp) / "concurrent")
        disk_full = run_disk_full(world, Path(tmp) / "disk_full")
        rows += [disk_full] if disk_full else []
    out = ROOT / "evaluation" / "results" / "drills.md"
    out.write_text(f"# Failure drills: driver killed, then `sweep resume`\n\nMachine: {describe()}\n\n"
                   f"Regenerate: `.venv/bin/python evaluation/drills.py`. A tiny sweep ({TRIALS} Optuna trials of 6 "
                   "steps, evaluated every 2, on the 16 px test world) is run with `STYLEDISCOVER_KILL_AT=<fault>`; "
                   "the driver SIGKILLs itself there, its Ray is killed, then `stylediscover sweep resume` runs "
                   "(three drills at a time, so seconds include contention). "
                   "Lost: planned trials not TERMINATED in Tune's state after the resume. Concurrent: three sweeps "
                   "started at once in one storage folder, logging to one new MLflow SQLite store (the third has the "
                   "first's name). Storage full: the sweep's storage (a 120 MiB tmpfs, root only) is filled to "
                   f"{FREE_LEFT_MIB} MiB free once trials have checkpointed; the sweep pauses (exit 2, one line), the "
                   "filler is deleted, then `sweep resume` runs.\n\n" + table(rows))
    print(f"written {out}")


if __name__ == "__main__":
    main()
