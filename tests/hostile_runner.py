"""Runs `stylediscover` commands, each in a child forked from this one process (which imported the CLI and torch
once), two at a time, and reports per command: exit status, output (stdout and stderr together), peak resident memory of
the child (MB, from wait4's rusage) and wall seconds. A child that runs past TIMEOUT_S seconds is killed (SIGALRM).

Each child first loads the committed quickstart export and its generator (`warm_up`): the library code pages any
command touches are then resident in every child alike, so the peaks differ by what the inputs cost, not by which
parts of torch a command happened to reach before refusing.

    python tests/hostile_runner.py COMMANDS.json RESULTS.json   (COMMANDS: a list of argument lists)
"""

import json
import os
import signal
import sys
import tempfile
import time
import traceback

import numpy  # noqa: F401  (imported once here, before forking, like the rest)
import safetensors.torch  # noqa: F401
import torch  # noqa: F401

import stylediscover.edit  # noqa: F401
import stylediscover.explore.recipe  # noqa: F401
from stylediscover.cli import main
from stylediscover.directions import load_directions
from stylediscover.generators import load_generator

TIMEOUT_S = 60
QUICKSTART = os.path.join(os.path.dirname(__file__), "..", "evaluation", "results", "quickstart-best")


def warm_up() -> None:
    load_directions(os.path.join(QUICKSTART, "directions.safetensors"), load_generator("builtin:shapes"))


def start(args: list[str], log: str) -> int:
    """Forks a child that runs one command with its output in `log`; returns its pid."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            signal.alarm(TIMEOUT_S)
            warm_up()
            main(args, prog_name="stylediscover")
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return pid


def run_all(commands: list[list[str]], folder: str, parallel: int) -> list[dict]:
    """Every command in its own child, `parallel` at a time; results in the commands' order."""
    results: list[dict] = [{}] * len(commands)
    running: dict[int, tuple[int, float]] = {}
    pending = list(enumerate(commands))
    while pending or running:
        while pending and len(running) < parallel:
            i, args = pending.pop(0)
            running[start(args, os.path.join(folder, f"{i}.log"))] = (i, time.monotonic())
        pid, status, usage = os.wait4(-1, 0)
        i, began = running.pop(pid)
        with open(os.path.join(folder, f"{i}.log"), errors="replace") as f:
            output = f.read(20_000)
        results[i] = {"code": os.waitstatus_to_exitcode(status), "output": output, "rss_mb": usage.ru_maxrss / 1024,
                      "seconds": time.monotonic() - began}
    return results


if __name__ == "__main__":
    commands = json.load(open(sys.argv[1]))
    with tempfile.TemporaryDirectory() as folder:
        results = run_all(commands, folder, min(2, os.cpu_count() or 1))
    json.dump(results, open(sys.argv[2], "w"))
