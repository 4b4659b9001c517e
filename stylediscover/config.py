"""Trial configuration: one config → one trained navigator (validated with pydantic; errors name the field)."""

from typing import Annotated, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from stylediscover.builtin import DEFAULT, discriminator_for
from stylediscover.features import FeatureConfig
from stylediscover.heldout import MAX_VALIDATION_SETS
from stylediscover.losses import LossConfig
from stylediscover.metrics import MetricsConfig
from stylediscover.navigator import NavigatorConfig
from stylediscover.numbers import FiniteFloat
from stylediscover.precision import Precision


def default_device() -> torch.device:
    """The GPU when one is visible (Ray makes a trial's own visible), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


MAX_STEPS = 10_000_000
MAX_BATCH = 4096
Beta = Annotated[FiniteFloat, Field(ge=0, lt=1)]  # an Adam β


class EvalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    every: int = Field(250, ge=1, le=MAX_STEPS, description="steps between evaluations (and at the last step)")
    metrics: MetricsConfig = MetricsConfig()
    validation_sets: int = Field(1, ge=1, le=MAX_VALIDATION_SETS, description=(
        "sets of metrics.samples validation codes per evaluation (seeds heldout.validation_seeds, the first "
        "metrics.seed): with several, the evaluation also reports robust_n_discovered and weakest_margin over them "
        "(margins of their codes pooled, heldout.py), which then order a trial's evaluations (metrics.objective) and "
        "the selection rule robust_then_margin"))
    grid_strengths: int = Field(7, ge=2, le=101, description="columns of the traversal grid, from −s to +s")
    grid_seed: int = 0


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    generator: str = DEFAULT
    predictor: str = DEFAULT
    features: FeatureConfig = FeatureConfig()
    navigator: NavigatorConfig = NavigatorConfig(num_directions=10, pca_dim=64)
    class_index: int | None = Field(None, ge=0, description="the class a conditional generator is trained and "
                                    "evaluated on (required for conditional generators, which have c_dim classes)")
    fixed_directions: Literal["ganspace", "sefa"] | None = Field(
        None, description="source of u_k when navigator.direction is 'fixed'")
    loss: LossConfig = LossConfig()
    steps: int = Field(1500, ge=1, le=MAX_STEPS)
    batch: int = Field(12, ge=2, le=MAX_BATCH, description="codes per step; even (halves A and B of the binary "
                       "variant)")
    micro_batch: int = Field(0, ge=0, le=MAX_BATCH, description="images per synthesis + feature pass within a "
                             "step's one graph; 0: automatic: on CPUs about 32k output pixels per pass (8 images at "
                             "64 px, 32 at 32 px), which keeps working sets in cache; on GPUs the whole pass")
    lr: FiniteFloat = Field(0.05, gt=0, le=100)
    betas: tuple[Beta, Beta] = (0.0, 0.99)
    style_mixing_groups: int = Field(2, ge=1, le=64, description="contiguous layer groups with independent z")
    truncation_psi: FiniteFloat = Field(1.0, ge=0, le=2, description="truncation of the training codes")
    pca_samples: int = Field(100_000, ge=100, le=10_000_000)
    eval: EvalConfig = EvalConfig()
    checkpoint_every: int = Field(100, ge=1, le=MAX_STEPS)
    seed: int = Field(0, ge=0, lt=2**63)
    threads: int = Field(2, ge=1, le=1024)
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$",
                        description="'auto' (a visible GPU, else the CPU), 'cpu', 'cuda' or 'cuda:N'")
    precision: Precision = Field("auto", description="training passes: fp32 | tf32 | bf16 (autocast) | auto (the "
                                 "GPU default of stylediscover.precision on GPUs, fp32 on CPUs); evaluation is fp32")
    compile: bool = Field(False, description="torch.compile the synthesis + feature pass (GPUs; costs a compile per "
                          "pass shape at start)")
    deterministic: bool = Field(False, description="deterministic GPU kernels: reruns and resumes bit-identical on "
                                "one GPU, at some speed (CPU runs are always deterministic)")

    @property
    def torch_device(self) -> torch.device:
        return default_device() if self.device == "auto" else torch.device(self.device)

    @model_validator(mode="after")
    def _consistent(self) -> "TrainConfig":
        if self.batch % 2:
            raise ValueError(f"batch must be even, got {self.batch}")
        if (self.navigator.direction == "fixed") != (self.fixed_directions is not None):
            raise ValueError("fixed_directions is required exactly when navigator.direction is 'fixed'")
        if self.features.name == "discriminator":
            self.features.weights = discriminator_for(self.generator, self.features.weights)
        return self
