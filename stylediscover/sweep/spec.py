"""Sweep specification (YAML), validated before Ray starts; every error names the file and the field.

A spec holds the base trial config (a TrainConfig, inline, or `base_config: path.yaml` updated key by key
by an inline `base`), a search space over dotted TrainConfig keys, the search algorithm, the scheduler,
trial counts and resources, storage, MLflow tracking and the selection rule. The search space is validated
as TrainConfig values up front (see `_probes`), and no number may be infinite or NaN, so a bad value fails
here, not inside a Ray worker. What the sweep needs from the machine is checked by `preflight`.
"""

import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stylediscover.config import TrainConfig
from stylediscover.errors import InputError
from stylediscover.heldout import TEST_SAMPLES, TEST_SETS
from stylediscover.options import apply_overrides, merged, read_yaml_mapping, set_dotted, validate


class Choice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["choice", "grid"]
    values: list[Any] = Field(min_length=1)


class Range(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["uniform", "loguniform", "randint"]
    low: float = Field(allow_inf_nan=False)
    high: float = Field(allow_inf_nan=False, description="randint: excluded (Ray and Optuna draw low..high-1)")

    @model_validator(mode="after")
    def _ordered(self) -> "Range":
        if not self.low < self.high:
            raise ValueError(f"low must be below high, got {self.low} and {self.high}")
        if self.type == "loguniform" and self.low <= 0:
            raise ValueError("loguniform needs low > 0")
        if self.type == "randint" and not (self.low.is_integer() and self.high.is_integer()):
            raise ValueError(f"randint needs integer low and high, got {self.low} and {self.high}")
        return self


Param = Annotated[Choice | Range, Field(discriminator="type")]


class SearchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    algorithm: Literal["random", "grid", "optuna_tpe", "optuna_multi"] = "optuna_tpe"
    seed: int = 0
    study_storage: str | None = Field(None, description="Optuna storage URL; default SQLite under the sweep storage")


class SchedulerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["asha", "none"] = "none"
    metric: Literal["score", "n_discovered", "objective"] = "objective"
    grace_period: int = Field(1, ge=1, description="evaluations before a trial may be stopped")
    reduction_factor: float = Field(2.0, gt=1)


class ResourcesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cpu: float = Field(1.0, gt=0)
    gpu: float = Field(0.0, ge=0)


class MlflowConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tracking_uri: str | None = Field(None, description="default: SQLite file under the sweep storage")
    experiment: str = "stylediscover"


class SelectionConfig(BaseModel):
    """How the best trial is chosen (on its validation figures) and how its export is tested (held-out codes)."""

    model_config = ConfigDict(extra="forbid")
    rule: Literal["discovered_then_score", "score", "n_discovered"] = "discovered_then_score"
    attention_only: bool = Field(True, description="only trials whose navigator.attention is not 'none'")
    test_sets: int = Field(TEST_SETS, ge=0, description="R held-out test sets the selected export is evaluated on "
                           "(seeds derived from metrics.seed, see stylediscover/heldout.py); 0 skips the test")
    test_samples: int = Field(TEST_SAMPLES, ge=2, description="codes per test set")

    @model_validator(mode="before")
    @classmethod
    def _drop_confirmation(cls, data: Any) -> Any:
        """Sweeps saved before the held-out split carry confirm_seed / confirm_samples: the test replaces them."""
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if k not in ("confirm_seed", "confirm_samples")}
        return data


class SweepSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", max_length=100,
                      description="a plain folder name: letters, digits, _ . - (not first: . -)")
    base: TrainConfig
    search_space: dict[str, Param] = {}
    search: SearchConfig = SearchConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    num_samples: int = Field(8, ge=1, description="trials (for grid: repeats of the whole grid)")
    max_concurrent: int = Field(2, ge=1)
    resources: ResourcesConfig = ResourcesConfig()
    max_failures: int = Field(2, ge=0, description="retries of a failed trial, from its last checkpoint")
    storage_path: str = "runs/sweeps"
    mlflow: MlflowConfig = MlflowConfig()
    selection: SelectionConfig = SelectionConfig()

    @model_validator(mode="after")
    def _grid_needs_grid(self) -> "SweepSpec":
        has_grid = any(p.type == "grid" for p in self.search_space.values())
        if self.search.algorithm == "grid" and not has_grid:
            raise ValueError("search.algorithm 'grid' needs at least one 'grid' parameter")
        if has_grid and self.search.algorithm != "grid":
            raise ValueError("'grid' parameters need search.algorithm 'grid'")
        if self.search.algorithm == "grid" and any(p.type != "grid" for p in self.search_space.values()):
            raise ValueError("search.algorithm 'grid' takes only 'grid' parameters")
        return self

    @property
    def storage(self) -> Path:
        return Path(self.storage_path).resolve() / self.name

    @property
    def tracking_uri(self) -> str:
        return self.mlflow.tracking_uri or f"sqlite:///{self.storage / 'mlflow.db'}"

    @property
    def artifact_location(self) -> str | None:
        """Artifacts of the embedded store live beside it; a tracking server chooses its own."""
        return None if self.mlflow.tracking_uri else (self.storage / "mlruns").as_uri()

    @property
    def study_storage(self) -> str:
        return self.search.study_storage or f"sqlite:///{self.storage / 'optuna.db'}"


def trial_config(base: TrainConfig, params: dict[str, Any]) -> TrainConfig:
    """The base config with the sampled dotted parameters applied."""
    data = base.model_dump(mode="json")
    for key, value in params.items():
        data = set_dotted(data, key, value)
    return TrainConfig.model_validate(data)


def _probes(param: Param) -> list[Any]:
    """The values of a parameter that are validated before Ray starts.

    choice, grid: every value. randint (the integers low..high-1, as Ray and Optuna draw them): every one when
    there are at most 100, else the two lowest, the middle one and the two highest; TrainConfig's constraints
    are bounds and parity, which these catch. uniform, loguniform: both ends and the middle (geometric for
    loguniform), each of which must also stay a float, so a float range on an integer field is refused.
    """
    if isinstance(param, Choice):
        return param.values
    low, high = param.low, param.high
    if param.type == "randint":
        values = range(int(low), int(high))
        return list(values) if len(values) <= 100 else [*values[:2], values[len(values) // 2], *values[-2:]]
    return [low, (low * high) ** 0.5 if param.type == "loguniform" else (low + high) / 2, high]


def _non_finite(value: Any, path: str = "") -> str | None:
    """The dotted path (relative to `value`) of the first infinite or NaN float in nested mappings and lists,
    "" for `value` itself, or None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else path
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list | tuple) else ()
    for key, item in items:
        found = _non_finite(item, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


def _dotted(data: dict, key: str) -> Any:
    for part in key.split("."):
        data = data[part]
    return data


def _check_value(base: dict, key: str, param: Param, value: Any, path: Path) -> None:
    """`value` of search_space[key] must be finite and make a valid TrainConfig (of the same type for ranges)."""
    field = f"search_space.{key}"
    if _non_finite(value) is not None:
        raise InputError(path, f"value {value!r} holds an infinite or NaN number", field)
    try:
        data = set_dotted(base, key, value)
    except ValueError as exc:
        raise InputError(path, str(exc), field) from None
    try:
        cfg = TrainConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        at = ".".join(map(str, err["loc"]))
        raise InputError(path, f"value {value!r} is invalid for {key}: {err['msg']}" + (f" (at {at})" if at else ""),
                         field) from None
    if isinstance(param, Range) and param.type != "randint" and not isinstance(_dotted(cfg.model_dump(), key), float):
        raise InputError(path, f"{param.type} draws fractional numbers but {key} takes whole ones: use randint", field)


def load_spec(path: Path, overrides: dict[str, Any] | None = None) -> SweepSpec:
    """Reads and validates a sweep YAML; the search space is checked value by value against TrainConfig (see
    `_probes`) and no number may be infinite or NaN."""
    path = Path(path)
    data = read_yaml_mapping(path)
    if "base_config" in data:
        ref = data.pop("base_config")
        if not isinstance(ref, str) or not ref:
            raise InputError(path, f"expected the path of a YAML file, got {ref!r}", "base_config")
        try:
            base = read_yaml_mapping(path.parent / ref)
        except InputError as exc:
            raise InputError(path, f"{exc.source}: {exc.problem}", "base_config") from None
        data["base"] = merged(base, data["base"]) if isinstance(data.get("base"), dict) else data.get("base", base)
    overrides = overrides or {}
    spec = validate(SweepSpec, apply_overrides(data, overrides, path), path, overrides)
    base = spec.base.model_dump()
    bad = _non_finite(base)
    if bad is not None:
        raise InputError(path, "not a finite number", f"base.{bad}")
    for key, param in spec.search_space.items():
        for value in _probes(param):
            _check_value(base, key, param, value, path)
    return spec
