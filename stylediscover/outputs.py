"""Output files of the commands: refused up front when they exist (unless forced) or cannot be written, and
written atomically (to a hidden sibling, then renamed), so an interrupted command never leaves half a file."""

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from stylediscover.errors import InputError


def check_outputs(paths: Iterable[Path], force: bool, option: str = "--out") -> None:
    """Before any work: each path must not exist (unless `force`) and its folder must be creatable and writable."""
    for path in map(Path, paths):
        if path.exists() and not force:
            raise InputError(path, "exists; pass --force to overwrite it", option)
        folder = path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
            raise InputError(path, f"cannot be written: {folder} is not a writable folder", option)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary sibling of `path` (same suffix) to write to; renamed onto `path` when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
