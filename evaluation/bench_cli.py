"""How long the CLI takes to answer: `--help` and the read-only sweep commands, as a user runs them (a new process
each time, wall clock from start to exit); `sweep status` also without the sweep's trials.jsonl, as on sweeps older
than it (read from MLflow).

Usage: .venv/bin/python evaluation/bench_cli.py [--repeats 7]
(runs a tiny sweep first, about a minute, then writes evaluation/results/cli_speed.md)
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import write_tiny_world  # noqa: E402
from drills import run_drill  # noqa: E402

TARGETS_S = {"help": 0.5, "sweep": 2.0}  # issue #13: --help under 0.5 s, sweep status|best|list under 2 s


def timed(command: list[str], repeats: int) -> list[float]:
    """Wall seconds of `repeats` runs of `command` (each must exit 0)."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
        seconds.append(time.perf_counter() - start)
    return seconds


def cpu_seconds() -> tuple[float, float]:
    """CPU seconds used since boot by the whole machine (/proc/stat) and by this process with its waited-for
    children."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    machine = (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
    ours = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))
    return machine, ours


def row(label: str, seconds: list[float], target: float | None) -> str:
    """A table row: median, min and max seconds, and whether the median is under `target` (— without one)."""
    median = statistics.median(seconds)
    met = "—" if target is None else "yes" if median < target else "no"
    line = f"| `{label}` | {median:.2f} | {min(seconds):.2f} | {max(seconds):.2f} | {target or '—'} | {met} |"
    print(line, flush=True)
    return line


def main() -> None:
    from machine import describe

    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    cli = [str(Path(sys.executable).with_name("stylediscover"))]
    with tempfile.TemporaryDirectory(prefix="sd-bench-cli-") as tmp:
        world = write_tiny_world(Path(tmp) / "world")
        sweep = run_drill(world, Path(tmp) / "sweep", None)
        assert sweep["run_rc"] == 0, sweep["output"][-2000:]
        store = str(Path(tmp) / "sweep" / "store")
        commands = {
            "stylediscover --help": (cli + ["--help"], "help"),
            "stylediscover sweep --help": (cli + ["sweep", "--help"], "help"),
            "stylediscover sweep list": (cli + ["sweep", "list", "--storage-path", store], "sweep"),
            "stylediscover sweep status NAME": (cli + ["sweep", "status", "drill_none", "--storage-path", store],
                                                "sweep"),
            "stylediscover sweep best NAME": (cli + ["sweep", "best", "drill_none", "--storage-path", store], "sweep"),
        }
        start, (machine, ours) = time.perf_counter(), cpu_seconds()
        rows = [row(label, timed(command, args.repeats), TARGETS_S[target])
                for label, (command, target) in commands.items()]
        (Path(store) / "drill_none" / "trials.jsonl").unlink()  # as a sweep older than trials.jsonl: read from MLflow
        rows.append(row("stylediscover sweep status NAME, without trials.jsonl (MLflow)",
                        timed(commands["stylediscover sweep status NAME"][0], args.repeats), None))
        machine_after, ours_after = cpu_seconds()
        others = (machine_after - machine - (ours_after - ours)) / (time.perf_counter() - start)
    out = ROOT / "evaluation" / "results" / "cli_speed.md"
    out.write_text(
        f"# CLI answer times\n\nMachine: {describe()}\n\nRegenerate: `.venv/bin/python evaluation/bench_cli.py "
        f"--repeats {args.repeats}`. Each command is a new process, timed from start to exit, {args.repeats} times; "
        "the sweep commands read a finished 2-trial sweep on the tiny test world (embedded SQLite MLflow store): "
        "`status` and `best` its trials.jsonl, the last row the MLflow store, as for sweeps older than trials.jsonl. "
        f"Meanwhile other processes (other users' jobs) kept {others:.1f} of the {os.cpu_count()} cores busy on "
        "average (/proc/stat less the benchmark's own CPU time).\n\n"
        "| command | median s | min s | max s | target s | met |\n|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
