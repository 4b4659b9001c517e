"""A two-node Ray cluster plus an MLflow tracking server (PostgreSQL backend) on this machine.

Usage:
  python deploy/local/cluster.py up   [--state-dir runs/local-cluster] [--postgres postgresql://postgres@127.0.0.1:5432/test]
  python deploy/local/cluster.py down [--state-dir runs/local-cluster]
`up` prints the Ray address and the MLflow URI and records every process it started (state.json);
`down` ends exactly those processes (by process group), nothing else, and returns once all of them are gone.
Ray token authentication is on: the token lives in the state directory and is passed through RAY_AUTH_TOKEN.

Ray replaces 127.0.0.1 by the machine's own reachable address for its node IP, so the nodes talk over
this machine's interface; the MLflow server listens on 127.0.0.1 only.
"""

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent
SIGNAL_GROUP = {"mlflow"}  # processes whose whole group gets SIGTERM: `mlflow server` leaves its workers behind


def _alive(pgid: int) -> bool:
    """Whether any process of the group led by `pgid` is left (reaping the leader when this process started it)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pgid, os.WNOHANG)
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _wait_gone(pgids: list[int], timeout_s: float) -> list[int]:
    """The groups still alive after waiting up to `timeout_s` for them to end."""
    deadline = time.monotonic() + timeout_s
    while (pgids := [p for p in pgids if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    return pgids


def stop(pids: dict[str, int], timeout_s: float = 45) -> None:
    """Ends the started process groups and returns once no process of theirs is left. A Ray node's `ray start
    --block` gets SIGTERM alone: it drains the node (up to 30 s) and ends its own processes, which a signal to the
    whole group would cut short; those named in SIGNAL_GROUP get it as a group. Groups left after `timeout_s` get
    SIGKILL."""
    for name, pid in pids.items():
        with contextlib.suppress(ProcessLookupError):
            (os.killpg if name in SIGNAL_GROUP else os.kill)(pid, signal.SIGTERM)
    left = _wait_gone(list(pids.values()), timeout_s)
    for pgid in left:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    if left := _wait_gone(left, 10):
        raise TimeoutError(f"process groups {left} are still alive after SIGKILL")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalCluster:
    """Head node + one worker node (`ray start --block`, each in its own process group) + `mlflow server`."""

    def __init__(self, state_dir: Path, postgres_uri: str, head_cpus: int = 1, worker_cpus: int = 1):
        self.state_dir = Path(state_dir).resolve()
        self.postgres_uri, self.head_cpus, self.worker_cpus = postgres_uri, head_cpus, worker_cpus
        self.procs: dict[str, subprocess.Popen] = {}
        self.state_file = self.state_dir / "state.json"
        self.ray_port = self.mlflow_port = 0

    @property
    def env(self) -> dict[str, str]:
        token_file = self.state_dir / "auth_token"
        if not token_file.exists():
            token_file.write_text(secrets.token_hex(16))
        return {**os.environ, "RAY_TMPDIR": str(self.state_dir / "ray"), "HOME": str(self.state_dir),
                "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token_file.read_text().strip(),
                "RAY_USAGE_STATS_ENABLED": "0"}

    @property
    def ray_address(self) -> str:
        return f"127.0.0.1:{self.ray_port}"

    @property
    def mlflow_uri(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"

    def _spawn(self, name: str, args: list[str]) -> None:
        log = open(self.state_dir / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def _wait(self, ready, what: str, timeout_s: float = 120) -> None:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if ready():
                return
            time.sleep(0.5)
        raise TimeoutError(f"{what} did not come up within {timeout_s} s (logs in {self.state_dir})")

    def _ray_nodes(self) -> int:
        """Live nodes as `ray status` lists them (between "Active:" and "Pending:"; lost nodes are listed after)."""
        out = subprocess.run([str(BIN / "ray"), "status", "--address", self.ray_address], env=self.env,
                             capture_output=True, text=True)
        if out.returncode != 0:
            return 0
        active = out.stdout.partition("Active:")[2].split("Pending:")[0]
        return active.count("node_")

    def start_worker(self, name: str = "worker") -> None:
        before = self._ray_nodes()
        self._spawn(name, [str(BIN / "ray"), "start", "--block", f"--address={self.ray_address}",
                           "--node-ip-address=127.0.0.1", f"--num-cpus={self.worker_cpus}"])
        self._wait(lambda: self._ray_nodes() > before, f"Ray node {name}")
        self._save()

    def up(self) -> "LocalCluster":
        """Starts everything; on any failure ends what it started and re-raises."""
        try:
            return self._up()
        except BaseException:
            self.down()
            raise

    def _up(self) -> "LocalCluster":
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.ray_port, self.mlflow_port = free_port(), free_port()
        self._spawn("head", [str(BIN / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
                             f"--port={self.ray_port}", f"--num-cpus={self.head_cpus}", "--include-dashboard=false",
                             "--disable-usage-stats"])
        self._wait(lambda: self._ray_nodes() >= 1, "Ray head")
        self.start_worker()
        self._spawn("mlflow", [str(BIN / "mlflow"), "server", "--backend-store-uri", self.postgres_uri,
                               "--artifacts-destination", (self.state_dir / "artifacts").as_uri(),
                               "--host", "127.0.0.1", "--port", str(self.mlflow_port), "--workers", "1"])
        self._wait(self._mlflow_ready, "MLflow server")
        self._save()
        return self

    def _mlflow_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.mlflow_uri}/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def _save(self) -> None:
        self.state_file.write_text(json.dumps({"ray_address": self.ray_address, "mlflow_uri": self.mlflow_uri,
                                               "pids": {n: p.pid for n, p in self.procs.items()}}, indent=2))

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Ends one started process group (e.g. the worker node, to simulate a lost machine)."""
        proc = self.procs.pop(name)
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        proc.wait(timeout=60)

    def down(self) -> None:
        """Ends every started process group; returns once all their processes are gone."""
        stop({name: proc.pid for name, proc in self.procs.items()})
        self.procs.clear()
        self.state_file.unlink(missing_ok=True)


def down_from_state(state_dir: Path, timeout_s: float = 45) -> None:
    """Ends the process groups recorded by `up` in another process; returns once all their processes are gone."""
    state_file = Path(state_dir) / "state.json"
    stop(json.loads(state_file.read_text())["pids"], timeout_s)
    state_file.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--state-dir", type=Path, default=Path("runs/local-cluster"))
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    if args.command == "down":
        down_from_state(args.state_dir)
        print("stopped")
        return
    cluster = LocalCluster(args.state_dir, args.postgres).up()
    print(f"Ray: {cluster.ray_address}  "
          f"(export RAY_AUTH_MODE=token RAY_AUTH_TOKEN=$(cat {cluster.state_dir}/auth_token))")
    print(f"MLflow: {cluster.mlflow_uri}")
    print(f"stylediscover sweep run sweeps/quickstart.yaml --address {cluster.ray_address} "
          f"--set mlflow.tracking_uri={cluster.mlflow_uri}")


if __name__ == "__main__":
    main()
