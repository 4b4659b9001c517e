"""User-facing errors: each names the file (or source) and what is wrong with it."""

import functools
import sys
from pathlib import Path

import click
from pydantic import ValidationError


class StylediscoverError(Exception):
    """An error caused by the user's input; the CLI prints it without a traceback."""


class InputError(StylediscoverError):
    """Bad input in a file: names the file, the field (if any) and the problem (on one line)."""

    def __init__(self, source: str | Path, problem: str, field: str | None = None):
        self.source, self.field, self.problem = str(source), field, " ".join(problem.split())
        where = f"{source}: {field}" if field else str(source)
        super().__init__(f"{where}: {self.problem}")

    def __reduce__(self):
        """Pickled by its parts, so that it crosses process boundaries (a Ray trial's error) intact."""
        return type(self), (self.source, self.problem, self.field)


class DownloadError(StylediscoverError):
    """A known checkpoint could not be downloaded or failed its checksum."""


def summary(exc: BaseException) -> str:
    """'TypeName: first line of its message' (at most 200 characters of it), for one-line errors."""
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"


def from_validation_error(source: str | Path, exc: ValidationError, prefix: str = "") -> InputError:
    """The first pydantic validation problem as an InputError naming its dotted field."""
    err = exc.errors()[0]
    field = ".".join(str(part) for part in ((prefix,) if prefix else ()) + tuple(err["loc"]))
    return InputError(source, err["msg"], field or None)


def friendly_errors(fn):
    """Decorates a click command: user errors are printed as one line naming the file and field, exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except StylediscoverError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)

    return wrapper
