"""Runs `stylediscover` commands, each in a child forked from this one process (which imported the CLI and torch
once), and reports per command: exit status, output (stdout and stderr together), peak resident memory of the child
(MB, from wait4's rusage) and wall seconds. A child that runs past --timeout seconds is killed (SIGALRM).

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

import stylediscover.directions  # noqa: F401
import stylediscover.edit  # noqa: F401
import stylediscover.explore.recipe  # noqa: F401
import stylediscover.generators  # noqa: F401
from stylediscover.cli import main

TIMEOUT_S = 60


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
