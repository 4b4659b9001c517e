"""The MLflow model of a directions export: a pyfunc model registered once per experiment as `<experiment>-directions`,
the alias `best` on the version registered last (a sweep's finish registers its selection: the alias is the selection
of the sweep that finished last, see MODEL_DESCRIPTION); `mlflow.pyfunc.load_model("models:/<name>@best")` loads it
offline. Each version carries the sha256 of its directions.safetensors (tag `stylediscover.directions_sha256`), so
registering a run's export again (a resumed sweep) adds no version while the alias still points at it; its description
(given by the caller) says what it is.

Artifacts: the export's directions.safetensors and directions.json, its traversal.png when it has one, and the
generator file when the manifest's generator is a local path. `builtin:<domain>` resolves from the installed package;
a known name (`stylediscover generators list`) from the download cache, downloaded when missing. The generator is
resolved only when seeds or rendering need it, and its file must have the manifest's sha256; edits of W+ codes need
the directions only.

predict(context, model_input, params) → DataFrame, one row per input row:
  model_input  DataFrame: `w_plus` (a [L, d] list or array per row), or `seed` (z ~ N(0, I) seeded as `generators
               sample`) with an optional `truncation` ψ (default 1); MLflow makes a dict one row
  params       directions {index (a string, as JSON keys are) or dominant-attribute name: multiple of the direction's
               recommended strength, a float (MLflow's check refuses integers but 1)} (names resolve as `stylediscover
               edit --direction NAME`), render (bool),
               image_format ("png": PNG bytes, or "array": uint8 [H, W, 3])
  returns      `w_plus`: float32 [L, d], ws + Σ_k m_k · s_k · D_k(ws) (s_k: direction k's recommended strength); and
               with render, `image`: G(w_plus) with the generator's constant noise
"""

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types.schema import Array, ColSpec, DataType, Object, ParamSchema, ParamSpec, Property, Schema
from packaging.version import Version

from stylediscover.builtin import PREFIX
from stylediscover.directions import Directions, load_directions
from stylediscover.errors import InputError
from stylediscover.explore.engine import seed_codes
from stylediscover.generators import KNOWN_CHECKPOINTS, Generator, generator_path, load_generator
from stylediscover.generators.registry import sha256_of
from stylediscover.imaging import grid, pixels, png_bytes
from stylediscover.sweep.stores import exclusive

ALIAS = "best"
DIRECTIONS_SHA_TAG = "stylediscover.directions_sha256"
MODEL_NAME = "directions"
IMAGE_FORMATS = ("png", "array")
MODEL_DESCRIPTION = (
    "Directions selected by the sweeps of this experiment (stylediscover), one version per sweep finish. Alias `best`: "
    "the version registered last, i.e. the selection of the sweep that finished last (or redid its finish) in this "
    "experiment. Each sweep selects on its own validation codes, so `best` is not a comparison across sweeps: compare "
    "the versions' held-out figures in their descriptions.")
REQUIREMENTS = ("stylediscover", "mlflow", "torch", "torchvision", "numpy", "pandas", "safetensors", "pillow")


def registered_name(experiment_name: str) -> str:
    """The registered model of an experiment's selected directions."""
    return f"{experiment_name}-directions"


class DirectionsModel(mlflow.pyfunc.PythonModel):
    """Applies an export's directions to W+ codes (see the module docstring)."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.path = Path(context.artifacts["directions"])  # the manifest artifact lies beside it, as in the export
        self.directions: Directions = load_directions(self.path)
        self.generator_file = context.artifacts.get("generator")
        self._generator: Generator | None = None

    def generator(self) -> Generator:
        """The export's generator, loaded on first use and checked against the manifest's sha256 and W+ shape."""
        if self._generator is None:
            manifest = self.directions.manifest
            path = Path(self.generator_file or generator_path(manifest["generator"]["source"]))
            if sha256_of(path) != manifest["generator"]["sha256"]:
                raise InputError(path, f"sha256 differs from the directions' generator ({manifest['generator']})")
            generator = load_generator(path, manifest["config"].get("class_index")).eval()
            self.directions = load_directions(self.path, generator)
            self._generator = generator
        return self._generator

    def codes(self, frame: pd.DataFrame) -> torch.Tensor:
        """ws [B, L, d] from the `w_plus` column, or from `seed` (and `truncation`)."""
        shape = tuple(self.directions.deltas.shape[1:])
        if ("w_plus" in frame) == ("seed" in frame):
            raise InputError("model_input", "give one of the columns w_plus and seed")
        if "w_plus" in frame:
            ws = torch.from_numpy(np.stack([np.asarray(np.stack(list(w)), dtype=np.float32) for w in frame["w_plus"]]))
            if tuple(ws.shape[1:]) != shape:
                raise InputError("model_input", f"each code must be num_ws × w_dim = {shape[0]} × {shape[1]}, "
                                 f"got {tuple(ws.shape[1:])}", "w_plus")
            return ws
        psi = frame["truncation"].fillna(1.0) if "truncation" in frame else pd.Series(1.0, index=frame.index)
        ws = torch.empty(len(frame), *shape)
        for value in psi.unique():
            rows = (psi == value).to_numpy()
            ws[torch.tensor(rows)] = seed_codes(self.generator(), [int(s) for s in frame["seed"][rows]], float(value))
        return ws

    def predict(self, context: mlflow.pyfunc.PythonModelContext, model_input: pd.DataFrame,
                params: dict | None = None) -> pd.DataFrame:
        params = params or {}
        image_format = params.get("image_format", "png")
        if image_format not in IMAGE_FORMATS:
            raise InputError("params", f"expected one of {IMAGE_FORMATS}, got {image_format!r}", "image_format")
        with torch.no_grad():
            edited = self.directions.apply(self.codes(model_input), params.get("directions") or {})
            out = pd.DataFrame({"w_plus": list(edited.numpy())})
            if params.get("render"):
                pictures = [grid(image[None]) for image in self.generator().synthesis(edited, noise_mode="const")]
                out["image"] = [png_bytes(p) if image_format == "png" else pixels(p) for p in pictures]
        return out


def signature(directions: Directions) -> ModelSignature:
    """Inputs (w_plus or seed and truncation) and params, the directions by index and by name, for the MLflow UI
    and for checking requests."""
    entries = directions.manifest["directions"]
    keys = [str(e["index"]) for e in entries] + sorted({e["dominant_attribute"] for e in entries})
    inputs = Schema([ColSpec(Array(Array(DataType.double)), "w_plus", required=False),
                     ColSpec(DataType.long, "seed", required=False),
                     ColSpec(DataType.double, "truncation", required=False)])
    params = ParamSchema([
        ParamSpec("directions", Object([Property(k, DataType.double, required=False) for k in keys]), {}),
        ParamSpec("render", DataType.boolean, False),
        ParamSpec("image_format", DataType.string, "png")])
    return ModelSignature(inputs=inputs, params=params)


def pinned_requirements() -> list[str]:
    """The model's pip requirements at the installed versions (local labels such as +cu130 dropped)."""
    return [f"{name}=={Version(version(name)).public}" for name in REQUIREMENTS]


@contextmanager
def quiet() -> Iterator[None]:
    """Without MLflow's progress bars, its advice on pickled models and on input examples."""
    logger = logging.getLogger("mlflow.pyfunc")
    level, progress = logger.level, os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    logger.setLevel(logging.ERROR)
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*An input example was not provided")
            yield
    finally:
        logger.setLevel(level)
        if progress is None:
            del os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"]
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = progress


@contextmanager
def tracking_uri_set(uri: str) -> Iterator[None]:
    """MLflow's global tracking URI set to `uri` for the block, restored after it."""
    previous = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)


def _registered(client: MlflowClient, name: str, run_id: str, digest: str) -> ModelVersion | None:
    """The version under the alias `best` if it is run `run_id`'s and holds directions with sha256 `digest`."""
    try:
        aliases = client.get_registered_model(name).aliases
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        return None
    if ALIAS not in aliases:
        return None
    version = client.get_model_version(name, aliases[ALIAS])
    return version if version.run_id == run_id and version.tags.get(DIRECTIONS_SHA_TAG) == digest else None


def register_export(tracking_uri: str, experiment_name: str, run_id: str, export_dir: Path,
                    description: str = "") -> ModelVersion:
    """Logs the export in `export_dir` as a pyfunc model of run `run_id` (which keeps its status, and a finished run
    its end time), registers it as a new version of `<experiment_name>-directions` in the same store, described by
    `description`, and points the alias `best` at it; returns the version under `best` instead (its description set
    to `description`) when that already holds this run's directions."""
    directions_file = (Path(export_dir) / "directions.safetensors").resolve()
    directions = load_directions(directions_file)
    artifacts = {"directions": str(directions_file), "manifest": str(directions_file.with_suffix(".json"))}
    if directions_file.with_name("traversal.png").is_file():
        artifacts["traversal"] = str(directions_file.with_name("traversal.png"))
    source = str(directions.manifest["generator"]["source"])
    if not (source.startswith(PREFIX) or source in KNOWN_CHECKPOINTS):
        if not Path(source).is_file():
            raise InputError(source, "the export's generator file is missing: the model could not render")
        artifacts["generator"] = source
    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    run = client.get_run(run_id).info
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None or experiment.experiment_id != run.experiment_id:
        raise InputError(tracking_uri, f"run {run_id} is not in MLflow experiment {experiment_name!r}")
    name = registered_name(experiment_name)
    digest = sha256_of(directions_file)
    registered = _registered(client, name, run_id, digest)
    if registered is not None:
        return client.update_model_version(name, registered.version, description)
    with tracking_uri_set(tracking_uri), quiet():  # the registry finds `models:/<id>` through the global tracking URI
        try:
            with mlflow.start_run(run_id=run_id):
                info = mlflow.pyfunc.log_model(name=MODEL_NAME, python_model=DirectionsModel(), artifacts=artifacts,
                                               signature=signature(directions), pip_requirements=pinned_requirements())
        finally:
            client.set_terminated(run_id, run.status, run.end_time)
        with exclusive(tracking_uri):  # versions of concurrent sweeps, and the alias on the newest of them
            try:
                client.create_registered_model(name, description=MODEL_DESCRIPTION)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                client.update_registered_model(name, MODEL_DESCRIPTION)  # models registered before it was written
            model_version = client.create_model_version(name, info.model_uri, run_id=run_id, model_id=info.model_id,
                                                        tags={DIRECTIONS_SHA_TAG: digest}, description=description)
            client.set_registered_model_alias(name, ALIAS, model_version.version)
    return model_version
