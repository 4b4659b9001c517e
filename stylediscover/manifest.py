"""The directions manifest (`<name>.json` beside `<name>.safetensors`, see stylediscover.directions) as a validated
model: every count, size and number bounded, cross-references checked, before any tensor is read.

`read_manifest` returns the model and the manifest as a dict of the fields the file gave (what Directions.manifest
holds), so code indexing it never meets a missing, mistyped or inconsistent entry.
"""

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stylediscover.features import FeatureConfig
from stylediscover.navigator import NavigatorConfig
from stylediscover.safe_files import read_model

FORMAT = "stylediscover.directions/1"
MAX_MANIFEST_BYTES = 4 << 20
MAX_DIRECTIONS = 1024
MAX_ATTRIBUTES = 256
MAX_LAYERS = 64
MAX_W_DIM = 4096
MAX_STRENGTH = 1e4
MAX_RESPONSE = 1e6

Finite = Annotated[float, Field(allow_inf_nan=False, strict=True)]
Response = Annotated[float, Field(allow_inf_nan=False, strict=True, ge=0, le=MAX_RESPONSE)]
Strength = Annotated[float, Field(allow_inf_nan=False, strict=True, gt=0, le=MAX_STRENGTH)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Count = Annotated[int, Field(strict=True)]


class _Open(BaseModel):
    """Fields beyond the known ones are kept (newer writers add some); the known ones are strict."""

    model_config = ConfigDict(extra="allow")


class GeneratorInfo(_Open):
    source: str = Field(min_length=1, max_length=4096)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    num_ws: Count = Field(ge=1, le=MAX_LAYERS)
    w_dim: Count = Field(ge=1, le=MAX_W_DIM)
    resolution: Count | None = Field(None, ge=4, le=8192)


class EvalPart(_Open):
    metrics: dict[str, Any]


class ManifestConfig(_Open):
    """The parts of the trial config that reading an export uses; the rest is kept as it is."""

    generator: str = Field(min_length=1, max_length=4096)
    predictor: str = Field(min_length=1, max_length=4096)
    class_index: Count | None = Field(None, ge=0, le=1_000_000)
    features: FeatureConfig
    navigator: NavigatorConfig
    eval: EvalPart


class Entry(_Open):
    index: Count = Field(ge=0, lt=MAX_DIRECTIONS)
    dominant_attribute: Name
    response: Response
    scale: Strength | None = None
    responses: list[Response] = Field(min_length=1, max_length=MAX_ATTRIBUTES)
    layers: tuple[Count, Count]
    runner_up: Name | None = None
    margin: Finite | None = None
    quality: Literal["clean", "entangled", "inactive"] | None = None


class Manifest(_Open):
    format: Literal["stylediscover.directions/1"]
    generator: GeneratorInfo
    config: ManifestConfig
    scale: Strength
    attributes: list[Name] = Field(min_length=1, max_length=MAX_ATTRIBUTES)
    directions: list[Entry] = Field(min_length=1, max_length=MAX_DIRECTIONS)
    quality_thresholds: dict[str, Finite] | None = None
    metrics: dict[str, Any] | None = None
    heldout: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "Manifest":
        k_dirs, names, num_ws = len(self.directions), set(self.attributes), self.generator.num_ws
        if self.config.navigator.num_directions != k_dirs:
            raise ValueError(f"{k_dirs} direction entries for config.navigator.num_directions = "
                             f"{self.config.navigator.num_directions}")
        for k, e in enumerate(self.directions):
            where = f"directions.{k}"
            if e.index != k:
                raise ValueError(f"{where}.index is {e.index}, expected {k} (entries in index order)")
            if len(e.responses) != len(self.attributes):
                raise ValueError(f"{where}.responses has {len(e.responses)} values for {len(names)} attributes")
            unknown = {e.dominant_attribute, e.runner_up or e.dominant_attribute} - names
            if unknown:
                raise ValueError(f"{where} names attribute {min(unknown)!r}, not among the attributes")
            if not 0 <= e.layers[0] <= e.layers[1] < num_ws:
                raise ValueError(f"{where}.layers {list(e.layers)} is not a range within the {num_ws} W+ layers")
        return self


def read_manifest(path: Path) -> tuple[Manifest, dict]:
    """The validated manifest at `path` and the dict of the fields it gave (nested models included)."""
    model = read_model(path, Manifest, MAX_MANIFEST_BYTES, "directions manifest")
    return model, model.model_dump(exclude_unset=True)
