"""The parts of a sweep spec that need no trial config (and so no torch): search space types, search,
scheduler, resources, storage, MLflow and selection; what read-only commands load (`sweep status`, `best`)."""

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


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
    """How the best trial is chosen (on its validation figures) and how its export is tested (held-out codes).
    The defaults are stylediscover.heldout's TEST_SETS and TEST_SAMPLES (kept here as numbers: no torch import)."""

    model_config = ConfigDict(extra="forbid")
    rule: Literal["discovered_then_score", "score", "n_discovered", "robust_then_margin"] = Field(
        "discovered_then_score", description="robust_then_margin: robust_n_discovered over the validation sets, then "
        "weakest_margin, then score (needs base.eval.validation_sets ≥ 2; see heldout.py)")
    attention_only: bool = Field(True, description="only trials whose navigator.attention is not 'none'")
    test_sets: int = Field(5, ge=0, description="R held-out test sets the selected export is evaluated on "
                           "(seeds derived from metrics.seed, see stylediscover/heldout.py); 0 skips the test")
    test_samples: int = Field(1000, ge=2, description="codes per test set")

    @model_validator(mode="before")
    @classmethod
    def _drop_confirmation(cls, data: Any) -> Any:
        """Sweeps saved before the held-out split carry confirm_seed / confirm_samples: the test replaces them."""
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if k not in ("confirm_seed", "confirm_samples")}
        return data


class SweepSettings(BaseModel):
    """A sweep spec without its base trial config: all that reading a sweep's records needs."""
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", max_length=100,
                      description="a plain folder name: letters, digits, _ . - (not first: . -)")
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
    def _grid_needs_grid(self) -> "SweepSettings":
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
        """For a new experiment: the embedded store's artifacts live beside it, a database's (shared by sweeps) in
        the storage path's mlruns/ (not the driver's working directory); a tracking server chooses its own."""
        if self.mlflow.tracking_uri is None:
            return (self.storage / "mlruns").as_uri()
        return None if self.mlflow.tracking_uri.startswith(("http:", "https:")) else \
            (self.storage.parent / "mlruns").as_uri()

    @property
    def study_storage(self) -> str:
        return self.search.study_storage or f"sqlite:///{self.storage / 'optuna.db'}"
