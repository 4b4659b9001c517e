"""Edit recipes: the JSON the explorer downloads beside an edited image, which `stylediscover edit --recipe FILE`
renders again bit for bit.

{format, generator {source, class_index, sha256}, directions {path, sha256},
 strengths [{index, attribute, multiple, strength}]  (strength = multiple × the direction's recommended strength,
                                                      the value applied),
 samples {seeds, truncation} | latent {name, npz_base64}  (a projected image: the latent .npz of `project`)}
The image is the grid (imaging.grid) of the edited samples, or the one edited projected image.
"""

import base64
import binascii
from pathlib import Path
from typing import Annotated, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from stylediscover.directions import load_directions
from stylediscover.edit import latent_from_bytes
from stylediscover.errors import InputError
from stylediscover.explore.engine import MAX_MULTIPLE, RENDER_THREADS, LoadedExport, render_strengths, seed_codes
from stylediscover.generators import generator_path, load_generator
from stylediscover.generators.registry import sha256_of
from stylediscover.imaging import grid
from stylediscover.latents import MAX_LATENT_BYTES
from stylediscover.manifest import MAX_DIRECTIONS, MAX_STRENGTH
from stylediscover.safe_files import read_model

FORMAT = "stylediscover.recipe/1"
MAX_RECIPE_BYTES = 2 * MAX_LATENT_BYTES
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GeneratorRef(_Strict):
    source: str = Field(min_length=1, max_length=4096)
    class_index: int | None = Field(None, ge=0, le=1_000_000)
    sha256: Sha256


class DirectionsRef(_Strict):
    path: str = Field(min_length=1, max_length=4096)
    sha256: Sha256


class Strength(_Strict):
    index: int = Field(ge=0, lt=MAX_DIRECTIONS)
    attribute: str = Field("", max_length=200)
    multiple: float = Field(allow_inf_nan=False, ge=-MAX_MULTIPLE, le=MAX_MULTIPLE)
    strength: float = Field(allow_inf_nan=False, ge=-MAX_MULTIPLE * MAX_STRENGTH, le=MAX_MULTIPLE * MAX_STRENGTH)


class Samples(_Strict):
    seeds: list[Annotated[int, Field(ge=0, lt=2**63)]] = Field(min_length=1, max_length=64)
    truncation: float = Field(ge=0, le=2)


class Latent(_Strict):
    name: str = Field("", max_length=200)
    npz_base64: str = Field(min_length=1, max_length=4 * (MAX_LATENT_BYTES // 3 + 1))


class Recipe(_Strict):
    format: Literal["stylediscover.recipe/1"]
    generator: GeneratorRef
    directions: DirectionsRef
    strengths: list[Strength] = Field(max_length=MAX_DIRECTIONS)
    samples: Samples | None = None
    latent: Latent | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "Recipe":
        if (self.samples is None) == (self.latent is None):
            raise ValueError("give exactly one of samples and latent")
        indices = [s.index for s in self.strengths]
        if len(set(indices)) != len(indices):
            raise ValueError("a direction is given twice in strengths")
        return self


def make_recipe(export: LoadedExport, multiples: dict[int, float], samples: dict | None = None,
                latent: tuple[str, bytes] | None = None) -> dict:
    """The recipe of an export's edit: `samples` {seeds, truncation} or `latent` (name, .npz bytes)."""
    gen = export.generator
    strengths = export.strengths(multiples)
    doc = {"format": FORMAT,
           "generator": {"source": gen.source, "class_index": gen.class_index, "sha256": gen.sha256},
           "directions": {"path": str(export.ref.path.resolve()), "sha256": export.sha256},
           "strengths": [{"index": k, "attribute": export.entries[k]["dominant_attribute"], "multiple": multiples[k],
                          "strength": s} for k, s in sorted(strengths.items())]}
    if latent is not None:
        doc["latent"] = {"name": latent[0], "npz_base64": base64.b64encode(latent[1]).decode("ascii")}
    else:
        doc["samples"] = samples
    return doc


def read_recipe(path: Path) -> Recipe:
    """A validated recipe (a regular file of at most MAX_RECIPE_BYTES); problems name the file and the dotted
    field."""
    return read_model(path, Recipe, MAX_RECIPE_BYTES, "recipe")


def _checked(recipe_path: Path, field: str, file: Path, expected: str) -> Path:
    try:
        actual = sha256_of(file)
    except InputError as exc:
        raise InputError(recipe_path, f"{file}: {exc.problem}", field) from None
    if actual != expected:
        raise InputError(recipe_path, f"{file} has sha256 {actual[:12]}…, the recipe was made with "
                         f"{expected[:12]}…", f"{field}.sha256")
    return file


def render_recipe(path: Path, directions_path: Path | None = None, generator_source: str | None = None) -> torch.Tensor:
    """The recipe's picture, [3, H, W] in [0, 1]; `directions_path` and `generator_source` replace the recipe's
    (their sha256 must still match). Renders on RENDER_THREADS threads, as the explorer's server does."""
    path = Path(path)
    recipe = read_recipe(path)
    directions_file = _checked(path, "directions", Path(directions_path or recipe.directions.path),
                               recipe.directions.sha256)
    source = generator_source or recipe.generator.source
    try:
        generator_file = generator_path(source)
    except InputError as exc:
        raise InputError(path, exc.problem, "generator.source") from None
    _checked(path, "generator", generator_file, recipe.generator.sha256)
    generator = load_generator(generator_file, recipe.generator.class_index, "generator.class_index").eval()
    directions = load_directions(directions_file, generator)
    k_dirs = len(directions.deltas)
    for i, s in enumerate(recipe.strengths):
        if s.index >= k_dirs:
            raise InputError(path, f"no direction {s.index} (the directions have {k_dirs})", f"strengths.{i}.index")
    strengths = {s.index: s.strength for s in recipe.strengths}
    torch.set_num_threads(RENDER_THREADS)
    with torch.inference_mode():
        if recipe.samples is not None:
            ws, noise = seed_codes(generator, recipe.samples.seeds, recipe.samples.truncation), []
        else:
            try:
                data = base64.b64decode(recipe.latent.npz_base64, validate=True)
            except binascii.Error as exc:
                raise InputError(path, f"not base64 ({exc})", "latent.npz_base64") from None
            ws, noise = latent_from_bytes(data, f"{path}: latent.npz_base64", generator)
        images = render_strengths(generator, ws, noise, directions.all_deltas(ws), strengths)
    return grid(images)
