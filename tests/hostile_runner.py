"""Runs `stylediscover` commands, each in a child forked from this one process (which imported the CLI and torch
once), and reports per command: exit status, output (stdout and stderr together), peak resident memory of the child
(MB, from wait4's rusage) and wall seconds. A child that runs past TIMEOUT_S seconds is killed (SIGALRM).

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


def run(args: list[str], log: str) -> dict:
    """One command in a forked child."""
    start = time.monotonic()
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
    _, status, usage = os.wait4(pid, 0)
    with open(log, errors="replace") as f:
        output = f.read(20_000)
    return {"code": os.waitstatus_to_exitcode(status), "output": output, "rss_mb": usage.ru_maxrss / 1024,
            "seconds": time.monotonic() - start}


if __name__ == "__main__":
    commands = json.load(open(sys.argv[1]))
    with tempfile.TemporaryDirectory() as folder:
        results = [run(args, os.path.join(folder, f"{i}.log")) for i, args in enumerate(commands)]
    json.dump(results, open(sys.argv[2], "w"))
