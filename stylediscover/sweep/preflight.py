"""Checks what a loaded sweep spec needs from its surroundings, before Ray starts: the files its trials load,
CPUs and GPUs for a local Ray, its storage folder, the MLflow tracking URI and the Optuna study storage.

Each failure is an InputError naming the spec file and the field, so the CLI prints one line and Ray, which
would otherwise fail in a worker, wait forever for resources, or leave a half-made sweep, never starts.
Nothing is created, except a probe folder that is removed at once.
"""

import os
import shutil
import socket
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import torch

from stylediscover.builtin import DEFAULT, PREFIX, Kind, resolve_builtin
from stylediscover.config import TrainConfig
from stylediscover.domains import NAMES
from stylediscover.errors import InputError
from stylediscover.generators.registry import KNOWN_CHECKPOINTS
from stylediscover.sweep.spec import Choice, SweepSpec, trial_config

MIN_FREE_BYTES = 100 << 20  # room for a trial's checkpoints (two kept, each a few MB) and the sweep's databases
TIMEOUT_S = 3.0  # for servers: MLflow, the Optuna database, a Ray cluster
DATABASES = ("sqlite", "postgresql", "mysql", "mssql")  # SQLAlchemy backends MLflow can track in


def preflight(spec: SweepSpec, source: str | Path, address: str | None = None) -> None:
    """Raises InputError(source, problem, field) for the first thing the sweep would fail on once Ray runs;
    `address`: the Ray cluster (`--address`), None for RAY_ADDRESS or else a local Ray on this machine."""
    if spec.search.algorithm.startswith("optuna") and not spec.search_space:
        raise InputError(source, f"search.algorithm {spec.search.algorithm!r} needs at least one parameter (use "
                         "'random' to repeat the base config)", "search_space")
    for field, cfg in _trial_configs(spec):
        _check_weights(cfg, source, field)
    if address is None and not os.environ.get("RAY_ADDRESS"):
        _check_local_resources(spec, source)
    elif address not in (None, "auto", "local"):
        _check_ray_address(address, source)
    try:
        storage = spec.storage
    except (OSError, ValueError, RuntimeError) as exc:
        raise InputError(source, f"not a usable path ({exc})", "storage_path") from None
    if "'" in str(storage):
        raise InputError(source, f"{storage} holds a ' (the sweep's MLflow runs are found by this path)",
                         "storage_path")
    _check_folder(storage, source, "storage_path")
    _check_tracking(spec, source)
    if spec.search.algorithm.startswith("optuna"):
        _check_database(spec.study_storage, spec, source, "search.study_storage")


def preflight_trial(cfg: TrainConfig, source: str | Path, run_dir: Path) -> None:
    """What `stylediscover train` of `cfg` (read from `source`) would fail on before its first step: a CUDA device
    on a machine without one, a run folder that cannot be made or written."""
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(source, f"{cfg.device!r}, but this machine has no CUDA GPU", "device")
    _check_folder(run_dir, "--run-dir", None)


def _trial_configs(spec: SweepSpec) -> Iterator[tuple[str | None, TrainConfig]]:
    """The base config (field None: its own fields are named), then the base with each choice value applied."""
    yield None, spec.base
    for key, param in spec.search_space.items():
        if isinstance(param, Choice):
            for value in param.values:
                yield f"search_space.{key}", trial_config(spec.base, {key: value})


def _check_weights(cfg: TrainConfig, source: str | Path, field: str | None) -> None:
    """The generator (a known name, a built-in or a file), the predictor and the feature network's weights."""
    if cfg.generator not in KNOWN_CHECKPOINTS:
        _check_file(cfg.generator, "generator", source, field or "base.generator")
    _check_file(cfg.predictor, "predictor", source, field or "base.predictor")
    weights = cfg.features.weights
    if cfg.features.name == "discriminator":
        _check_file(weights or DEFAULT, "discriminator", source, field or "base.features.weights")
    elif weights not in (None, "random"):
        _check_file(weights, None, source, field or "base.features.weights")


def _check_file(name: str, kind: Kind | None, source: str | Path, field: str) -> None:
    """`name` must be an existing file: an absolute path, or `builtin:<domain>` for a `kind` of built-in network."""
    if kind and name.startswith(PREFIX):
        try:
            resolve_builtin(name, kind)
        except InputError as exc:
            raise InputError(source, f"{name}: {exc.problem}", field) from None
        return
    path = Path(name)
    if not path.is_absolute():
        allowed = ([f"a known generator ({', '.join(KNOWN_CHECKPOINTS)})"] if kind == "generator" else []) + (
            [f"a built-in ({', '.join(PREFIX + n for n in NAMES)})"] if kind else []) + ["an absolute path"]
        raise InputError(source, f"{name!r} is not {' or '.join(allowed)} (trials run in their own folders, where "
                         "relative paths lead nowhere)", field)
    if not path.is_file():
        raise InputError(source, f"{path}: {'is a directory' if path.is_dir() else 'no such file'}", field)


def _check_local_resources(spec: SweepSpec, source: str | Path) -> None:
    """A local Ray would wait forever for more CPUs or GPUs than this machine has."""
    cpus = os.cpu_count() or 1
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if spec.resources.cpu > cpus:
        raise InputError(source, f"{spec.resources.cpu:g} CPUs per trial, but this machine has {cpus} (give a "
                         "cluster with --address)", "resources.cpu")
    if spec.resources.gpu > gpus:
        raise InputError(source, f"{spec.resources.gpu:g} GPUs per trial, but this machine has {gpus} (give a "
                         "cluster with --address)", "resources.gpu")
    if not gpus:
        for field, cfg in _trial_configs(spec):
            if cfg.device.startswith("cuda"):
                raise InputError(source, f"device {cfg.device!r}, but this machine has no CUDA GPU",
                                 field or "base.device")


def _check_ray_address(address: str, source: str | Path) -> None:
    """A cluster address (`[ray://]host:port`) must answer within TIMEOUT_S."""
    try:
        parts = urlsplit(address if "://" in address else f"ray://{address}")
        if not (parts.hostname and parts.port):
            raise ValueError("expected [ray://]host:port or auto")
        with socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT_S):
            pass
    except (OSError, ValueError) as exc:
        raise InputError(source, f"no Ray cluster answers at {address} ({exc})", "--address") from None


def _check_folder(path: Path, source: str | Path, field: str | None) -> None:
    """`path` can be made (its nearest existing ancestor is a folder we can write in) and has MIN_FREE_BYTES free;
    nothing is left behind."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(source, f"{path} cannot be made: {existing} is not a directory", field)
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".stylediscover-probe-", dir=existing))
    except OSError as exc:
        raise InputError(source, f"{path} cannot be made: cannot write in {existing} ({exc.strerror})", field) from None
    free = shutil.disk_usage(existing).free
    if free < MIN_FREE_BYTES:
        raise InputError(source, f"{free >> 20} MiB free on {existing}; a sweep needs at least "
                         f"{MIN_FREE_BYTES >> 20} MiB for its trials' checkpoints", field)


def _check_tracking(spec: SweepSpec, source: str | Path) -> None:
    """An MLflow server (http, https) must answer, a database must let us in, a file store's folder be writable."""
    uri, field = spec.mlflow.tracking_uri, "mlflow.tracking_uri"
    if uri is None:
        return  # the embedded store in the storage folder, checked above
    try:
        scheme = urlsplit(uri).scheme
    except ValueError as exc:
        raise InputError(source, f"not a URL ({exc})", field) from None
    if scheme in ("http", "https"):
        try:
            urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=TIMEOUT_S).close()
        except urllib.error.HTTPError:
            return  # it answered
        except (OSError, ValueError) as exc:
            raise InputError(source, f"no MLflow server answers ({getattr(exc, 'reason', exc)})", field) from None
    elif scheme == "file":
        _check_folder(Path(url2pathname(urlsplit(uri).path)), source, field)
    elif scheme.split("+")[0] in DATABASES:
        _check_database(uri, spec, source, field)
    elif not scheme:
        raise InputError(source, "not a URL (e.g. http://host:5000, postgresql://user@host/db, sqlite:///abs/path.db, "
                         "file:///abs/folder)", field)
    else:
        raise InputError(source, f"unknown scheme {scheme!r} (known: http, https, file, {', '.join(DATABASES)})",
                         field)


def _check_database(url: str, spec: SweepSpec, source: str | Path, field: str) -> None:
    """A SQLAlchemy URL: its dialect and driver are installed; a SQLite file's folder exists (or is in the sweep's
    storage, made with it); a server answers within TIMEOUT_S and lets us into the database."""
    from sqlalchemy import create_engine, make_url
    from sqlalchemy import exc as sa_exc

    try:
        parsed = make_url(url)
        backend = parsed.get_backend_name()
        timeout = {"connect_timeout": int(TIMEOUT_S)} if backend in ("postgresql", "mysql") else {}
        engine = create_engine(parsed, connect_args=timeout)
    except sa_exc.NoSuchModuleError:
        raise InputError(source, f"unknown database dialect {parsed.drivername!r}", field) from None
    except (sa_exc.ArgumentError, ValueError):
        raise InputError(source, "not a database URL (dialect://user:password@host:port/database)", field) from None
    except ImportError as exc:
        raise InputError(source, f"the driver for {parsed.drivername} is not installed ({exc.name})", field) from None
    try:
        if backend == "sqlite":
            folder = Path(parsed.database or ".").resolve().parent
            if not folder.is_dir() and not folder.is_relative_to(spec.storage):
                raise InputError(source, f"{folder}: no such folder for the SQLite file", field)
            return  # connecting would create the file
        with engine.connect():
            pass
    except sa_exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).split("(Background on this error")[0]
        raise InputError(source, f"cannot connect to the database ({reason})", field) from None
    finally:
        engine.dispose()
