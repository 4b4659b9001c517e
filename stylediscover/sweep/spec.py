"""Sweep specification (YAML), validated before Ray starts; every error names the file and the field.

A spec holds the base trial config (a TrainConfig, inline, or `base_config: path.yaml` updated key by key
by an inline `base`), a search space over dotted TrainConfig keys, the search algorithm, the scheduler,
trial counts and resources, storage, MLflow tracking and the selection rule. Every point of the search
space is validated as a TrainConfig up front (each choice value, and both ends of each range), so a bad
value fails here, not inside a Ray worker.
"""

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stylediscover.config import TrainConfig
from stylediscover.errors import InputError
from stylediscover.options import merged, read_yaml_mapping, set_dotted, validate


class Choice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["choice", "grid"]
    values: list[Any] = Field(min_length=1)


class Range(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["uniform", "loguniform", "randint"]
    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> "Range":
        if not self.low < self.high:
            raise ValueError(f"low must be below high, got {self.low} and {self.high}")
        if self.type == "loguniform" and self.low <= 0:
            raise ValueError("loguniform needs low > 0")
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
    model_config = ConfigDict(extra="forbid")
    rule: Literal["discovered_then_score", "score", "n_discovered"] = "discovered_then_score"
    attention_only: bool = Field(True, description="only trials whose navigator.attention is not 'none'")
    confirm_seed: int | None = Field(1, description="re-evaluate the selected export on codes of this seed "
                                     "(the trials' evaluations use metrics.seed); null skips it")
    confirm_samples: int | None = Field(None, ge=2, description="N codes per direction for it (default: the trials')")


class SweepSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
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


def _corners(param: Param) -> list[Any]:
    if isinstance(param, Choice):
        return param.values
    return [int(param.low), int(param.high) - 1] if param.type == "randint" else [param.low, param.high]


def load_spec(path: Path, overrides: dict[str, Any] | None = None) -> SweepSpec:
    """Reads and validates a sweep YAML; the search space is checked point by point against TrainConfig."""
    path = Path(path)
    data = read_yaml_mapping(path)
    if "base_config" in data:
        base = read_yaml_mapping(path.parent / data.pop("base_config"))
        data["base"] = merged(base, data["base"]) if isinstance(data.get("base"), dict) else data.get("base", base)
    for key, value in (overrides or {}).items():
        data = set_dotted(data, key, value)
    spec = validate(SweepSpec, data, path)
    base = spec.base.model_dump(mode="json")
    for key, param in spec.search_space.items():
        for value in _corners(param):
            try:
                TrainConfig.model_validate(set_dotted(base, key, value))
            except ValidationError as exc:
                err = exc.errors()[0]
                raise InputError(path, f"value {value!r} is invalid for {key}: {err['msg']} "
                                 f"(at {'.'.join(map(str, err['loc']))})", f"search_space.{key}") from None
    return spec
