"""Files the user names, read within bounds: regular files only, reads with a byte limit, archives inflated with a
limit, hashes with a limit, JSON validated by a pydantic model.

A file is opened first and checked after (`fstat` on the open descriptor), so a name that changes between the two
cannot slip past: FIFOs and sockets (which would block), devices such as /dev/zero (which never end) and kernel
pseudo-files under /proc and /sys (whose size says 0 whatever they hold) are refused in one line.
"""

import contextlib
import functools
import hashlib
import io
import json
import os
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, TypeVar

from pydantic import BaseModel, ValidationError

from stylediscover.errors import InputError, from_validation_error

M = TypeVar("M", bound=BaseModel)
MAX_HASH_BYTES = 64 << 30
MAX_JSON_VALUES = 250_000
KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
         (stat.S_ISBLK, "a block device"))


@functools.cache
def _pseudo_filesystems() -> frozenset[int]:
    """Device numbers of /proc and /sys (where they are mounted)."""
    devices = set()
    for root in ("/proc", "/sys"):
        with contextlib.suppress(OSError):
            devices.add(os.stat(root).st_dev)
    return frozenset(devices)


@contextlib.contextmanager
def open_regular(path: str | Path, what: str = "file") -> Iterator[tuple[BinaryIO, os.stat_result]]:
    """(binary file, its fstat) of a regular file; anything else is an InputError naming `path`. Opened without
    blocking, so a FIFO is refused instead of waiting for a writer."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise InputError(path, f"no such {what}") from None
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot open the {what} ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise InputError(path, f"is a folder, expected a {what}")
        kind = next((name for test, name in KINDS if test(info.st_mode)), None)
        if kind is not None or not stat.S_ISREG(info.st_mode):
            raise InputError(path, f"is {kind or 'not a regular file'}; only regular files are read")
        if info.st_dev in _pseudo_filesystems():
            raise InputError(path, "is a kernel pseudo-file (/proc or /sys); only regular files are read")
        os.set_blocking(fd, True)
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with f:
        yield f, info


def _read_limited(f: BinaryIO, size: int, limit: int, path: str | Path, what: str) -> bytes:
    if size > limit:
        raise InputError(path, f"{size} bytes; a {what} of more than {limit} bytes is refused unread")
    data = f.read(limit + 1)
    if len(data) > limit:
        raise InputError(path, f"grew past {limit} bytes while being read; a {what} is at most that")
    return data


def read_bytes(path: str | Path, limit: int, what: str = "file") -> bytes:
    """The whole regular file, refused when its size (declared or read) exceeds `limit` bytes."""
    with open_regular(path, what) as (f, info):
        try:
            return _read_limited(f, info.st_size, limit, path, what)
        except OSError as exc:
            raise InputError(path, f"cannot read the {what} ({exc.strerror or exc})") from None


def read_model(path: str | Path, model: type[M], limit: int, what: str = "file") -> M:
    """A JSON file of at most `limit` bytes validated by `model` (see parse_model)."""
    return parse_model(read_bytes(path, limit, what), model, path)


def parse_model(data: bytes, model: type[M], source: str | Path, max_values: int = MAX_JSON_VALUES) -> M:
    """`model` from JSON bytes holding at most `max_values` containers and list items (counted on the bytes before
    parsing: Python's objects take up to ~25× the text of `[]` or `{}`), nested at most as deep as Python's
    recursion limit; any problem is one InputError naming `source` and the dotted field."""
    values = data.count(b"{") + data.count(b"[") + data.count(b",")
    if values > max_values:
        raise InputError(source, f"over {max_values} JSON values; at most that many are read")
    try:
        doc = json.loads(data)
    except RecursionError:
        raise InputError(source, "not valid JSON (nested too deeply)") from None
    except ValueError as exc:
        raise InputError(source, f"not valid JSON ({str(exc)[:160]})") from None
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        raise from_validation_error(source, exc) from None


def sha256_file(path: str | Path, limit: int = MAX_HASH_BYTES, what: str = "file") -> str:
    """Hex sha256 of a regular file of at most `limit` bytes, read in 1 MiB chunks."""
    digest, total = hashlib.sha256(), 0
    with open_regular(path, what) as (f, info):
        if info.st_size > limit:
            raise InputError(path, f"{info.st_size} bytes; a {what} of more than {limit} bytes is not hashed")
        try:
            while chunk := f.read(1 << 20):
                total += len(chunk)
                if total > limit:
                    raise InputError(path, f"grew past {limit} bytes while being hashed")
                digest.update(chunk)
        except OSError as exc:
            raise InputError(path, f"cannot read the {what} ({exc.strerror or exc})") from None
    return digest.hexdigest()


def unzip_limited(data: bytes, source: str | Path, max_members: int, max_inflated: int) -> dict[str, bytes]:
    """Members of a zip archive held in memory, by name: at most `max_members`, and at most `max_inflated` bytes
    together once inflated (checked on the declared sizes before inflating, and again while inflating)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            if len(infos) > max_members:
                raise InputError(source, f"an archive of {len(infos)} members; at most {max_members} are read")
            declared = sum(info.file_size for info in infos)
            if declared > max_inflated:
                raise InputError(source, f"inflates to {declared} bytes; at most {max_inflated} are read")
            members, left = {}, max_inflated
            for info in infos:
                with archive.open(info) as member:
                    members[info.filename] = member.read(left + 1)
                left -= len(members[info.filename])
                if left < 0:
                    raise InputError(source, f"inflates past {max_inflated} bytes")
            return members
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError, ValueError) as exc:
        raise InputError(source, f"not a readable zip archive ({type(exc).__name__}: {exc})") from None
