"""A battery of malformed sweep specs, overrides and trial configs: each ends before Ray starts in exactly one line
`error: SPEC: FIELD: PROBLEM` on stderr and exit status 2, with no traceback, Ray not started and nothing written.

Every case runs through the CLI in-process (click's CliRunner); SUBPROCESS_CASES also run as a real process, to
show that nothing else reaches the terminal.
"""

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner
from conftest import tiny_spec

from stylediscover.cli import main
from stylediscover.sweep import preflight as preflight_module
from stylediscover.sweep.preflight import preflight
from stylediscover.sweep.spec import load_spec

ROOT = Path(__file__).parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


CLOSED = _free_port()  # nothing listens there
PG = "postgresql://postgres@127.0.0.1:5432"
NEEDS_PG = pytest.mark.skipif(not _listening(5432), reason="no PostgreSQL at 127.0.0.1:5432")
NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="refused only on machines without a CUDA GPU")


def dot(spec: dict, key: str, value) -> None:
    """Sets the dotted key in the spec dict, in place."""
    *parents, last = key.split(".")
    for part in parents:
        spec = spec.setdefault(part, {})
    spec[last] = value


def put(tmp: Path, name: str, content: str | bytes) -> Path:
    path = tmp / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def raw(content: str | bytes) -> Callable:
    """A case whose spec file is `content`."""
    return lambda spec, tmp: put(tmp, "spec.yaml", content)


def base_config(value, content: str | bytes | None = None) -> Callable:
    """A case whose spec takes its base from `base_config: value`, a file holding `content` when given."""
    def edit(spec: dict, tmp: Path) -> None:
        del spec["base"]
        spec["base_config"] = value
        if content is not None:
            put(tmp, value, content)
    return edit


def setting(key: str, value) -> Callable:
    return lambda spec, tmp: dot(spec, key, value)


def space(key: str, **param) -> Callable:
    return lambda spec, tmp: spec["search_space"].update({key: param})


def laughs(levels: int = 9) -> str:
    """A 'billion laughs': each level refers to the previous one ten times (10**levels values)."""
    rows = ['a0: &a0 "lol"'] + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels + 1)]
    return "\n".join(rows) + "\nname: tiny\n"


def flow_laughs(levels: int = 9) -> str:
    """The same as one flow-style YAML value, for --set."""
    value = '&a0 "lol"'
    for i in range(1, levels + 1):
        value = f"[{value}, " + ", ".join([f"*a{i - 1}"] * 9) + "]"
        value = f"&a{i} {value}" if i < levels else value
    return value


def storage_below_file(spec: dict, tmp: Path) -> None:
    put(tmp, "a-file", "x")
    spec["storage_path"] = str(tmp / "a-file" / "sweeps")


def sweep_folder_is_file(spec: dict, tmp: Path) -> None:
    (tmp / "sweeps").mkdir()
    put(tmp, "sweeps/tiny", "x")
    spec["storage_path"] = str(tmp / "sweeps")


def fifo_spec(spec: dict, tmp: Path) -> Path:
    os.mkfifo(tmp / "spec.yaml")
    return tmp / "spec.yaml"


def generator_folder(spec: dict, tmp: Path) -> None:
    (tmp / "folder").mkdir()
    spec["base"]["generator"] = str(tmp / "folder")


def base_config_folder(spec: dict, tmp: Path) -> None:
    (tmp / "configs").mkdir()
    base_config("configs")(spec, tmp)


def mlflow_below_file(spec: dict, tmp: Path) -> None:
    put(tmp, "a-file", "x")
    spec["mlflow"] = {"tracking_uri": (tmp / "a-file" / "mlruns").as_uri()}


def choice_of_predictors(spec: dict, tmp: Path) -> None:
    spec["search_space"]["predictor"] = {"type": "choice", "values": [spec["base"]["predictor"], "/nonexistent/p"]}


# (edit of the tiny spec, CLI arguments after SPEC, the field named, a part of the problem)
CASES = [
    # encodings and file types
    pytest.param(raw(b"\x80\x81\xfe\xff binary garbage \x00"), [], None, "not UTF-8 text", id="spec-invalid-utf8"),
    pytest.param(raw(b"name: tiny\x00\x01\x02"), [], None, "not valid YAML", id="spec-nul-bytes"),
    pytest.param(raw(""), [], None, "expected a mapping", id="spec-empty"),
    pytest.param(raw("- 1\n- 2\n"), [], None, "expected a mapping", id="spec-list"),
    pytest.param(raw("42"), [], None, "expected a mapping", id="spec-number"),
    pytest.param(raw("name: [unclosed\nbase: {"), [], None, "not valid YAML", id="spec-unclosed"),
    pytest.param(raw("name: !!python/object/apply:os.system [echo hi]"), [], None, "not valid YAML",
                 id="spec-python-tag"),
    pytest.param(raw("name: !!timestamp nonsense"), [], None, "not valid YAML", id="spec-bad-timestamp"),
    pytest.param(raw("num_samples: " + "9" * 5000), [], None, "not valid YAML", id="spec-huge-integer"),
    pytest.param(raw("name: " + "[" * 5000), [], None, "nested too deeply", id="spec-deep-nesting"),
    pytest.param(lambda spec, tmp: tmp / "nope.yaml", [], None, "no such file", id="spec-missing"),
    pytest.param(fifo_spec, [], None, "not a regular file", id="spec-fifo"),
    pytest.param(base_config("configs.yaml"), [], "base_config", "no such file", id="base-config-missing"),
    pytest.param(base_config_folder, [], "base_config", "is a directory", id="base-config-directory"),
    pytest.param(base_config(5), [], "base_config", "expected the path of a YAML file", id="base-config-number"),
    pytest.param(base_config(None), [], "base_config", "expected the path of a YAML file", id="base-config-null"),
    pytest.param(base_config(["a.yaml"]), [], "base_config", "expected the path", id="base-config-list"),
    pytest.param(base_config("base.yaml", b"\xff\xfegarbage"), [], "base_config", "not UTF-8 text",
                 id="base-config-invalid-utf8"),
    pytest.param(base_config("base.yaml", "[1, 2]"), [], "base_config", "expected a mapping",
                 id="base-config-not-mapping"),
    pytest.param(setting("base", 5), [], "base", "valid dictionary", id="base-not-mapping"),
    # size limits
    pytest.param(raw("# " + "x" * (3 << 20)), [], None, "are refused", id="spec-too-large"),
    pytest.param(base_config("base.yaml", "# " + "x" * (3 << 20)), [], "base_config", "are refused",
                 id="base-config-too-large"),
    pytest.param(raw(laughs()), [], None, "aliases expand to more than", id="billion-laughs"),
    pytest.param(base_config("base.yaml", laughs()), [], "base_config", "aliases expand", id="base-config-laughs"),
    pytest.param(lambda spec, tmp: None, ["--set", f"base.eval.grid_seed={flow_laughs()}"],
                 "--set base.eval.grid_seed", "aliases expand", id="set-billion-laughs"),
    pytest.param(raw("name: tiny\nbase: &a {navigator: *a}"), [], None, "refers to a value that contains it",
                 id="recursive-alias"),
    # dotted keys and overrides
    pytest.param(lambda spec, tmp: None, ["--set", "base.steps.x=1"], "--set base.steps.x", "not a mapping",
                 id="set-through-number"),
    pytest.param(lambda spec, tmp: None, ["--set", "name.x=1"], "--set name.x", "not a mapping",
                 id="set-through-string"),
    pytest.param(lambda spec, tmp: None, ["--set", "base.betas.0=1"], "--set base.betas.0", "not a mapping",
                 id="set-through-list"),
    pytest.param(lambda spec, tmp: None, ["--set", "bogus=1"], "--set bogus", "no such option", id="set-unknown-key"),
    pytest.param(lambda spec, tmp: None, ["--set", "base.stepz=5"], "--set base.stepz", "did you mean base.steps?",
                 id="set-unknown-base-key"),
    pytest.param(lambda spec, tmp: None, ["--set", "num_samples=many"], "--set num_samples", "valid integer",
                 id="set-wrong-type"),
    pytest.param(lambda spec, tmp: None, ["--set", "steps"], "--set", "expected key=value", id="set-no-equals"),
    pytest.param(lambda spec, tmp: None, ["--set", "=1"], "--set", "expected key=value", id="set-empty-key"),
    pytest.param(lambda spec, tmp: None, ["--set", "base..steps=1"], "--set base..steps", "empty part",
                 id="set-empty-part"),
    pytest.param(lambda spec, tmp: None, ["--set", "base.lr=[1"], "--set base.lr", "not valid YAML",
                 id="set-bad-yaml-value"),
    pytest.param(space("steps.x", type="choice", values=[1]), [], "search_space.steps.x", "not a mapping",
                 id="space-through-number"),
    pytest.param(space("stepz", type="choice", values=[1]), [], "search_space.stepz", "Extra inputs",
                 id="space-unknown-key"),
    # names
    pytest.param(setting("name", "."), [], "name", "should match pattern", id="name-dot"),
    pytest.param(setting("name", ".."), [], "name", "should match pattern", id="name-dotdot"),
    pytest.param(setting("name", "a/b"), [], "name", "should match pattern", id="name-slash"),
    pytest.param(setting("name", "a\\b"), [], "name", "should match pattern", id="name-backslash"),
    pytest.param(setting("name", "x" * 300), [], "name", "at most 100 characters", id="name-too-long"),
    pytest.param(setting("name", "-rf"), [], "name", "should match pattern", id="name-dash-first"),
    pytest.param(setting("name", ""), [], "name", "should match pattern", id="name-empty"),
    pytest.param(setting("name", 5), [], "name", "valid string", id="name-number"),
    pytest.param(lambda spec, tmp: None, ["--set", "name=.."], "--set name", "should match pattern",
                 id="set-name-dotdot"),
    # storage
    pytest.param(storage_below_file, [], "storage_path", "is not a directory", id="storage-below-file"),
    pytest.param(sweep_folder_is_file, [], "storage_path", "is not a directory", id="storage-sweep-is-file"),
    pytest.param(setting("storage_path", "/proc/stylediscover-sweeps"), [], "storage_path", "cannot write in /proc",
                 id="storage-under-proc"),
    pytest.param(setting("storage_path", "sweeps\0x"), [], "storage_path", "not a usable path", id="storage-nul"),
    pytest.param(setting("storage_path", "/tmp/it's"), [], "storage_path", "holds a '", id="storage-quote"),
    # MLflow tracking URI
    pytest.param(setting("mlflow.tracking_uri", "ftp://host/mlflow"), [], "mlflow.tracking_uri", "unknown scheme",
                 id="mlflow-unknown-scheme"),
    pytest.param(setting("mlflow.tracking_uri", "just some words"), [], "mlflow.tracking_uri", "not a URL",
                 id="mlflow-not-a-url"),
    pytest.param(setting("mlflow.tracking_uri", "/tmp/mlruns"), [], "mlflow.tracking_uri", "not a URL",
                 id="mlflow-plain-path"),
    pytest.param(setting("mlflow.tracking_uri", "http://[::1"), [], "mlflow.tracking_uri", "not a URL",
                 id="mlflow-broken-url"),
    pytest.param(setting("mlflow.tracking_uri", f"http://127.0.0.1:{CLOSED}"), [], "mlflow.tracking_uri",
                 "no MLflow server answers", id="mlflow-http-closed-port"),
    pytest.param(setting("mlflow.tracking_uri", f"https://127.0.0.1:{CLOSED}/mlflow"), [], "mlflow.tracking_uri",
                 "no MLflow server answers", id="mlflow-https-closed-port"),
    pytest.param(setting("mlflow.tracking_uri", f"postgresql://postgres@127.0.0.1:{CLOSED}/test"), [],
                 "mlflow.tracking_uri", "cannot connect to the database", id="mlflow-postgres-closed-port"),
    pytest.param(setting("mlflow.tracking_uri", f"{PG}/nonexistent_db"), [], "mlflow.tracking_uri",
                 'database "nonexistent_db" does not exist', id="mlflow-postgres-missing-db", marks=NEEDS_PG),
    pytest.param(setting("mlflow.tracking_uri", "sqlite:////nonexistent-folder/mlflow.db"), [],
                 "mlflow.tracking_uri", "no such folder", id="mlflow-sqlite-missing-folder"),
    pytest.param(mlflow_below_file, [], "mlflow.tracking_uri", "is not a directory", id="mlflow-file-below-file"),
    pytest.param(setting("mlflow.tracking_uri", "mysql://root@127.0.0.1/mlflow"), [], "mlflow.tracking_uri",
                 "not installed", id="mlflow-mysql-without-driver"),
    # Optuna study storage
    pytest.param(setting("search.study_storage", "optuna.db"), [], "search.study_storage", "not a database URL",
                 id="study-not-a-url"),
    pytest.param(setting("search.study_storage", "foo://x"), [], "search.study_storage", "unknown database dialect",
                 id="study-unknown-dialect"),
    pytest.param(setting("search.study_storage", "http://127.0.0.1:5000"), [], "search.study_storage",
                 "unknown database dialect", id="study-http-url"),
    pytest.param(setting("search.study_storage", "postgresql://u@127.0.0.1:notaport/db"), [],
                 "search.study_storage", "not a database URL", id="study-bad-port"),
    pytest.param(setting("search.study_storage", f"postgresql://postgres@127.0.0.1:{CLOSED}/test"), [],
                 "search.study_storage", "cannot connect to the database", id="study-nothing-listening"),
    pytest.param(setting("search.study_storage", f"{PG}/nonexistent_db"), [], "search.study_storage",
                 "cannot connect to the database", id="study-missing-database"),
    pytest.param(setting("search.study_storage", f"{PG}/nonexistent_db"), [], "search.study_storage",
                 'database "nonexistent_db" does not exist', id="study-missing-database-named", marks=NEEDS_PG),
    pytest.param(setting("search.study_storage", "postgresql://nobody:wrong@127.0.0.1:5432/test"), [],
                 "search.study_storage", 'role "nobody" does not exist', id="study-wrong-user", marks=NEEDS_PG),
    pytest.param(setting("search.study_storage", "sqlite:////nonexistent-folder/optuna.db"), [],
                 "search.study_storage", "no such folder", id="study-sqlite-missing-folder"),
    # files the trials load
    pytest.param(setting("base.generator", "/nonexistent/g.safetensors"), [], "base.generator", "no such file",
                 id="generator-missing"),
    pytest.param(setting("base.generator", "g.safetensors"), [], "base.generator", "absolute path",
                 id="generator-relative"),
    pytest.param(setting("base.generator", "ffhq9999"), [], "base.generator", "not a known generator",
                 id="generator-unknown-name"),
    pytest.param(generator_folder, [], "base.generator", "is a directory", id="generator-directory"),
    pytest.param(setting("base.generator", "builtin:cars"), [], "base.generator", "unknown built-in",
                 id="generator-unknown-builtin"),
    pytest.param(setting("base.predictor", "/nonexistent/p.safetensors"), [], "base.predictor", "no such file",
                 id="predictor-missing"),
    pytest.param(setting("base.predictor", "ffhq512"), [], "base.predictor", "not a built-in",
                 id="predictor-generator-name"),
    pytest.param(setting("base.features.weights", "/nonexistent/d.safetensors"), [], "base.features.weights",
                 "no such file", id="features-weights-missing"),
    pytest.param(setting("base.features", {"name": "alexnet", "weights": "/nonexistent/alexnet.pth"}), [],
                 "base.features.weights", "no such file", id="features-alexnet-weights-missing"),
    pytest.param(setting("base.features", {"name": "vgg16", "weights": "builtin:shapes"}), [],
                 "base.features.weights", "is not an absolute path", id="features-vgg-builtin"),
    pytest.param(choice_of_predictors, [], "search_space.predictor", "no such file", id="choice-predictor-missing"),
    pytest.param(space("generator", type="choice", values=["builtin:shapes", "/nonexistent/g.pkl"]), [],
                 "search_space.generator", "no such file", id="choice-generator-missing"),
    pytest.param(space("features", type="choice", values=[{"name": "discriminator", "weights": "/nonexistent/d"}]),
                 [], "search_space.features", "no such file", id="choice-features-missing"),
    # devices and resources (a local Ray)
    pytest.param(setting("base.device", "cuda"), [], "base.device", "no CUDA GPU", id="device-cuda", marks=NO_GPU),
    pytest.param(space("device", type="choice", values=["cpu", "cuda:0"]), [], "search_space.device", "no CUDA GPU",
                 id="choice-device-cuda", marks=NO_GPU),
    pytest.param(setting("resources.gpu", 1000), [], "resources.gpu", "this machine has", id="resources-gpu"),
    pytest.param(setting("resources.cpu", 100000), [], "resources.cpu", "this machine has", id="resources-cpu"),
    pytest.param(lambda spec, tmp: None, ["--address", f"127.0.0.1:{CLOSED}"], "--address",
                 "no Ray cluster answers", id="address-closed-port"),
    pytest.param(lambda spec, tmp: None, ["--address", "headnode"], "--address", "expected [ray://]host:port",
                 id="address-without-port"),
    # numbers
    pytest.param(setting("base.lr", float("inf")), [], "base.lr", "not a finite number", id="base-lr-inf"),
    pytest.param(setting("base.truncation_psi", float("nan")), [], "base.truncation_psi", "not a finite number",
                 id="base-truncation-nan"),
    pytest.param(setting("base.eval.metrics.scale", float("inf")), [], "base.eval.metrics.scale",
                 "not a finite number", id="base-metrics-scale-inf"),
    pytest.param(setting("base.betas", [0.0, float("nan")]), [], "base.betas.1", "not a finite number",
                 id="base-betas-nan"),
    pytest.param(setting("base.eval.metrics.truncation_psi", float("-inf")), [], "base.eval.metrics.truncation_psi",
                 "not a finite number", id="base-metrics-psi-minus-inf"),
    pytest.param(space("lr", type="uniform", low=float("-inf"), high=1.0), [], "search_space.lr.uniform.low",
                 "finite number", id="range-low-inf"),
    pytest.param(space("lr", type="loguniform", low=0.01, high=float("nan")), [], "search_space.lr.loguniform.high",
                 "finite number", id="range-high-nan"),
    pytest.param(space("truncation_psi", type="choice", values=[0.5, float("nan")]), [],
                 "search_space.truncation_psi", "infinite or NaN", id="choice-nan"),
    pytest.param(space("betas", type="choice", values=[[0.0, float("inf")]]), [], "search_space.betas",
                 "infinite or NaN", id="choice-nested-inf"),
    # ranges: every value a trial may draw
    pytest.param(space("batch", type="randint", low=2, high=9), [], "search_space.batch", "batch must be even",
                 id="randint-odd-batch"),
    pytest.param(space("batch", type="randint", low=2, high=1000), [], "search_space.batch", "batch must be even",
                 id="randint-wide-odd-batch"),
    pytest.param(space("steps", type="uniform", low=1, high=100), [], "search_space.steps", "use randint",
                 id="uniform-on-integer"),
    pytest.param(space("batch", type="loguniform", low=2, high=32), [], "search_space.batch", "use randint",
                 id="loguniform-on-integer"),
    pytest.param(space("steps", type="randint", low=1.5, high=9), [], "search_space.steps.randint",
                 "integer low and high", id="randint-fractional-bounds"),
    pytest.param(space("navigator.attention", type="randint", low=0, high=3), [], "search_space.navigator.attention",
                 "is invalid", id="randint-on-string"),
    pytest.param(space("lr", type="uniform", low=-1, high=1), [], "search_space.lr", "greater than 0",
                 id="uniform-negative-lr"),
    # search algorithms
    pytest.param(setting("search_space", {}), [], "search_space", "needs at least one parameter",
                 id="optuna-tpe-empty-space"),
    pytest.param(lambda spec, tmp: spec.update(search_space={}, search={"algorithm": "optuna_multi"}), [],
                 "search_space", "needs at least one parameter", id="optuna-multi-empty-space"),
    # plain validation, before Ray all the same
    pytest.param(setting("base.eval.every", 0), [], "base.eval.every", "greater than or equal to 1",
                 id="eval-every-zero"),
    pytest.param(setting("base.eval.metrics.samples", 1), [], "base.eval.metrics.samples", "greater than or equal",
                 id="metrics-samples-one"),
    pytest.param(setting("base.eval.metrics.batch", 0), [], "base.eval.metrics.batch", "greater than or equal",
                 id="metrics-batch-zero"),
    pytest.param(setting("num_samples", 0), [], "num_samples", "greater than or equal to 1", id="num-samples-zero"),
    pytest.param(setting("max_concurrent", -1), [], "max_concurrent", "greater than or equal", id="concurrency"),
    pytest.param(setting("resources.cpu", 0), [], "resources.cpu", "greater than 0", id="resources-cpu-zero"),
    pytest.param(setting("scheduler", {"type": "asha", "grace_period": 0}), [], "scheduler.grace_period",
                 "greater than or equal", id="scheduler-grace-zero"),
    pytest.param(setting("search.algorithm", "bayes"), [], "search.algorithm", "Input should be",
                 id="algorithm-unknown"),
    pytest.param(setting("surprise", 1), [], "surprise", "no such option", id="unknown-top-key"),
    pytest.param(space("lr", low=0.1, high=1), [], "search_space.lr", "discriminator", id="param-without-type"),
    pytest.param(space("lr", type="choice", values=[]), [], "search_space.lr.choice.values", "at least 1",
                 id="choice-no-values"),
    pytest.param(setting("search_space", [1, 2]), [], "search_space", "valid dictionary", id="space-not-mapping"),
    pytest.param(lambda spec, tmp: spec.update({1: "one"}), [], "1", "Keys should be strings", id="integer-key"),
]
SUBPROCESS_CASES = {"spec-invalid-utf8", "billion-laughs", "set-through-number", "name-dotdot", "storage-under-proc",
                    "mlflow-http-closed-port", "study-missing-database", "generator-missing", "base-lr-inf",
                    "randint-odd-batch"}


def snapshot(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*") if "env" not in p.relative_to(root).parts}


@pytest.fixture
def env(tmp_path, monkeypatch) -> dict:
    """HOME and RAY_TMPDIR in tmp_path/env, for this process and the CLI's."""
    (tmp_path / "env" / "ray").mkdir(parents=True)
    values = {"HOME": str(tmp_path / "env"), "RAY_TMPDIR": str(tmp_path / "env" / "ray"),
              "RAY_USAGE_STATS_ENABLED": "0"}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return os.environ | values


def prepare(edit: Callable, tmp: Path, world: Path) -> tuple[Path, Path]:
    """The spec file of a case and its storage path (tmp/store unless the case sets another)."""
    spec = tiny_spec(world, tmp / "store")
    path = edit(spec, tmp)
    if path is None:
        path = tmp / "spec.yaml"
        path.write_text(yaml.safe_dump(spec))
    storage = spec.get("storage_path")
    return path, Path(storage if isinstance(storage, str) and "\0" not in storage else tmp / "store")


def assert_refused(code: int, stderr: str, spec_path: Path, field: str | None, message: str) -> None:
    lines = stderr.splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in stderr, stderr
    assert lines[0].startswith(f"error: {spec_path}: " + (f"{field}: " if field else "")), lines[0]
    assert message in lines[0], lines[0]


@pytest.mark.parametrize("edit, args, field, message", CASES)
def test_refused_before_ray(edit, args, field, message, tmp_path, tiny_world, env):
    spec_path, storage = prepare(edit, tmp_path, tiny_world)
    before = snapshot(tmp_path)
    result = CliRunner().invoke(main, ["sweep", "run", str(spec_path), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert_refused(result.exit_code, result.stderr, spec_path, field, message)
    assert snapshot(tmp_path) == before and (storage.is_relative_to(tmp_path) or not storage.exists())
    assert "ray" not in sys.modules or not sys.modules["ray"].is_initialized()
    assert not list((tmp_path / "env" / "ray").rglob("session_*"))


@pytest.mark.parametrize("edit, args, field, message", [c for c in CASES if c.id in SUBPROCESS_CASES])
def test_refused_in_a_real_process(edit, args, field, message, tmp_path, tiny_world, env):
    spec_path, storage = prepare(edit, tmp_path, tiny_world)
    before = snapshot(tmp_path)
    done = subprocess.run([sys.executable, "-m", "stylediscover.cli", "sweep", "run", str(spec_path), *args],
                          env=env, capture_output=True, text=True, timeout=120)
    assert_refused(done.returncode, done.stderr, spec_path, field, message)
    assert done.stdout == ""
    assert snapshot(tmp_path) == before and (storage.is_relative_to(tmp_path) or not storage.exists())
    assert not list((tmp_path / "env" / "ray").rglob("session_*"))


def test_spec_directory_is_refused_in_one_line(tmp_path, env):
    result = CliRunner().invoke(main, ["sweep", "run", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {tmp_path}: is a directory, expected a YAML file"


def test_too_little_free_space(tmp_path, tiny_world, env, monkeypatch):
    monkeypatch.setattr(preflight_module, "MIN_FREE_BYTES", 1 << 60)
    spec_path, _ = prepare(lambda spec, tmp: None, tmp_path, tiny_world)
    result = CliRunner().invoke(main, ["sweep", "run", str(spec_path)])
    assert_refused(result.exit_code, result.stderr, spec_path, "storage_path", "MiB for its trials' checkpoints")
    assert not (tmp_path / "store").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in read-only folders")
def test_read_only_storage(tmp_path, tiny_world, env):
    (tmp_path / "ro").mkdir(mode=0o555)
    spec_path, _ = prepare(setting("storage_path", str(tmp_path / "ro" / "sweeps")), tmp_path, tiny_world)
    result = CliRunner().invoke(main, ["sweep", "run", str(spec_path)])
    assert_refused(result.exit_code, result.stderr, spec_path, "storage_path", "cannot write in")
    assert list((tmp_path / "ro").iterdir()) == []


def test_resume_is_checked_too(tmp_path, tiny_world, env):
    """A saved sweep whose generator has gone is refused by `sweep resume` before Ray starts."""
    spec_path, _ = prepare(lambda spec, tmp: None, tmp_path, tiny_world)
    spec = load_spec(spec_path)
    spec.storage.mkdir(parents=True)
    saved = spec.model_copy(update={"base": spec.base.model_copy(update={"generator": "/nonexistent/g.safetensors"})})
    (spec.storage / "spec.json").write_text(saved.model_dump_json())
    before = snapshot(tmp_path)
    result = CliRunner().invoke(main, ["sweep", "resume", "tiny", "--storage-path", str(tmp_path / "store")])
    assert_refused(result.exit_code, result.stderr, spec.storage / "spec.json", "base.generator", "no such file")
    assert snapshot(tmp_path) == before
    assert "ray" not in sys.modules or not sys.modules["ray"].is_initialized()


@pytest.mark.parametrize("name", ["quickstart", "ablation-attention"])
def test_shipped_sweeps_pass(name, tmp_path):
    spec = load_spec(ROOT / "sweeps" / f"{name}.yaml", {"storage_path": str(tmp_path / "store")})
    preflight(spec, name)
    assert list(tmp_path.iterdir()) == []


def test_ffhq512_refused_for_its_absent_predictor(tmp_path, env):
    path = ROOT / "sweeps" / "ffhq512.yaml"
    result = CliRunner().invoke(main, ["sweep", "run", str(path), "--set", f"storage_path={tmp_path / 'store'}"])
    assert_refused(result.exit_code, result.stderr, path, "base.predictor",
                   "/data/predictors/ffhq-attributes.safetensors: no such file")


def test_ffhq512_with_its_predictor_passes_on_a_cluster(tmp_path, tiny_world):
    spec = load_spec(ROOT / "sweeps" / "ffhq512.yaml", {"base.predictor": str(tiny_world / "p.safetensors"),
                                                        "storage_path": str(tmp_path / "store")})
    preflight(spec, "ffhq512.yaml", address="auto")


@NEEDS_PG
def test_postgresql_study_and_tracking_pass(tmp_path, tiny_world):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(tiny_spec(tiny_world, tmp_path / "store", search={
        "algorithm": "optuna_tpe", "study_storage": f"{PG}/test"}, mlflow={"tracking_uri": f"{PG}/test"})))
    preflight(load_spec(path), path)


def test_tiny_spec_with_ranges_and_anchors_passes(tmp_path, tiny_world):
    spec = tiny_spec(tiny_world, tmp_path / "store")
    del spec["search_space"]
    path = put(tmp_path, "spec.yaml", yaml.safe_dump(spec) + """search_space:
  loss.diversity_weight: &range {type: loguniform, low: 0.01, high: 0.3}
  loss.temperature: *range
  steps: {type: randint, low: 2, high: 200}
  batch: {type: choice, values: [2, 4]}
""")
    preflight(load_spec(path), path)
    assert list(tmp_path.iterdir()) == [path]
