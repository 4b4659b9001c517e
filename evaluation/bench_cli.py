"""How long the CLI takes to answer: `--help` and the read-only sweep commands, as a user runs them (a new process
each time, wall clock from start to exit).

Usage: .venv/bin/python evaluation/bench_cli.py [--repeats 7]
(runs a tiny sweep first, about a minute, then writes evaluation/results/cli_speed.md)
"""

import argparse
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
        rows = []
        for label, (command, target) in commands.items():
            seconds = timed(command, args.repeats)
            median = statistics.median(seconds)
            rows.append(f"| `{label}` | {median:.2f} | {min(seconds):.2f} | {max(seconds):.2f} | "
                        f"{TARGETS_S[target]} | {'yes' if median < TARGETS_S[target] else 'no'} |")
            print(rows[-1], flush=True)
    out = ROOT / "evaluation" / "results" / "cli_speed.md"
    out.write_text(
        f"# CLI answer times\n\nMachine: {describe()}\n\nRegenerate: `.venv/bin/python evaluation/bench_cli.py "
        f"--repeats {args.repeats}`. Each command is a new process, timed from start to exit, {args.repeats} times; "
        "the sweep commands read a finished 2-trial sweep on the tiny test world (embedded SQLite MLflow store).\n\n"
        "| command | median s | min s | max s | target s | met |\n|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
