"""The registered MLflow model of an export (sweep/registry.py), from an embedded store: loaded by alias, its edits
checked against `stylediscover edit`."""

import json
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from explore_world import copy_export
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from PIL import Image

from stylediscover.builtin import resolve_builtin
from stylediscover.cli import main
from stylediscover.directions import load_directions
from stylediscover.edit import noise_layers, save_latent
from stylediscover.errors import InputError
from stylediscover.explore.engine import seed_codes
from stylediscover.generators import load_generator
from stylediscover.sweep.registry import ALIAS, register_export, registered_name, tracking_uri_set

EXPORT = Path(__file__).parents[1] / "evaluation" / "results" / "quickstart-best"
EXPERIMENT = "stylediscover"
NAME = registered_name(EXPERIMENT)
SEEDS, PSI = [0, 1], 0.7


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[str, MlflowClient, str]:
    """An embedded store with the experiment and a parent run holding version 1 of the quickstart's export."""
    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment(EXPERIMENT, artifact_location=(root / "mlruns").as_uri())
    run_id = client.create_run(experiment).info.run_id
    client.set_terminated(run_id, "FINISHED")
    register_export(uri, EXPERIMENT, run_id, EXPORT)
    return uri, client, run_id


@pytest.fixture(scope="module")
def model(store) -> mlflow.pyfunc.PyFuncModel:
    with tracking_uri_set(store[0]):
        return mlflow.pyfunc.load_model(f"models:/{NAME}@{ALIAS}")


def cli_edit(generator, ws: torch.Tensor, key: str, multiple: float, folder: Path) -> np.ndarray:
    """`stylediscover edit LATENT --direction KEY --strengths MULTIPLE` of one code ws [1, L, d] (with the
    generator's own noise maps) → pixels [H, W, 3]."""
    latent, out = folder / "latent.npz", folder / "edit.png"
    noise = [layer.noise_const for layer in noise_layers(generator)]
    save_latent(latent, {"ws": ws, "noise": noise, "pixel_mse": 0.0, "perceptual": 0.0}, "seeds")
    result = CliRunner().invoke(main, ["edit", str(latent), "--directions", str(EXPORT / "directions.safetensors"),
                                       "--direction", key, "--strengths", str(multiple), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return np.asarray(Image.open(out).convert("RGB"))


@pytest.mark.parametrize("key, multiple", [("object_hue", 1.5), ("5", -2.0)])
def test_model_edits_as_the_cli(model, key, multiple, tmp_path):
    generator = load_generator("builtin:shapes").eval()
    directions = load_directions(EXPORT / "directions.safetensors", generator)
    with torch.no_grad():
        ws = seed_codes(generator, SEEDS, PSI)
        k = directions.index(key)
        expected = ws + multiple * directions.edit_delta(ws, k)
    params = {"directions": {key: multiple}, "render": True, "image_format": "array"}
    from_seeds = model.predict(pd.DataFrame({"seed": SEEDS, "truncation": PSI}), params=params)
    from_codes = model.predict(pd.DataFrame({"w_plus": list(ws.numpy())}), params=params)
    for out in (from_seeds, from_codes):
        np.testing.assert_allclose(np.stack(out["w_plus"]), expected.numpy(), rtol=0, atol=1e-6)
    for i, seed in enumerate(SEEDS):
        folder = tmp_path / f"seed{seed}"
        folder.mkdir()
        cli_pixels = cli_edit(generator, ws[i:i + 1], key, multiple, folder)
        np.testing.assert_array_equal(from_seeds["image"][i], cli_pixels)
        np.testing.assert_array_equal(from_codes["image"][i], cli_pixels)
    png = model.predict({"seed": SEEDS[0], "truncation": PSI}, params=params | {"image_format": "png"})
    assert len(png) == 1 and png["image"][0].startswith(b"\x89PNG")


def test_requests_are_checked(model):
    codes = pd.DataFrame({"w_plus": [np.zeros((8, 128))]})
    with pytest.raises(MlflowException, match="nose_length"):
        model.predict(codes, params={"directions": {"nose_length": 1.0}})
    with pytest.raises(InputError, match="num_ws × w_dim = 8 × 128"):
        model.predict(pd.DataFrame({"w_plus": [np.zeros((8, 64))]}), params={})
    with pytest.raises(InputError, match="one of the columns"):
        model.predict(pd.DataFrame({"w_plus": [np.zeros((8, 128))], "seed": [0]}))
    with pytest.raises(InputError, match="given twice"):
        model.predict(codes, params={"directions": {"wall_hue": 1.0, str(load_directions(
            EXPORT / "directions.safetensors").index("wall_hue")): 1.0}})
    assert np.array_equal(model.predict(codes)["w_plus"][0], np.zeros((8, 128), np.float32))


def test_reregistering_moves_the_alias_and_keeps_the_run(store, tmp_path):
    """A second sweep's export with its generator as a local file: version 2 carries that file and becomes best."""
    uri, client, first_run = store
    export = tmp_path / "export"
    shutil.copytree(EXPORT, export)
    generator_file = shutil.copy(resolve_builtin("builtin:shapes", "generator"), tmp_path / "g.safetensors")
    manifest = json.loads((export / "directions.json").read_text())
    manifest["generator"]["source"] = manifest["config"]["generator"] = str(generator_file)
    (export / "directions.json").write_text(json.dumps(manifest))
    run_id = client.create_run(client.get_run(first_run).info.experiment_id).info.run_id
    version = register_export(uri, EXPERIMENT, run_id, export)
    assert str(version.version) == str(client.get_model_version_by_alias(NAME, ALIAS).version) == "2"
    assert client.get_model_version(NAME, "1").run_id == first_run
    assert client.get_run(first_run).info.status == "FINISHED" and client.get_run(run_id).info.status == "RUNNING"
    with pytest.raises(InputError, match="not in MLflow experiment"):
        register_export(uri, "another", run_id, export)
    Path(generator_file).unlink()
    with tracking_uri_set(uri):
        second = mlflow.pyfunc.load_model(f"models:/{NAME}@{ALIAS}")
    rendered = second.predict(pd.DataFrame({"seed": [3]}), params={"render": True, "image_format": "array"})
    assert rendered["image"][0].shape == (32, 32, 3)


def test_registering_the_same_export_again_adds_no_version(tmp_path):
    """A resumed sweep registers its export again: the version under `best` is kept while it holds that run's
    directions; changed directions make a new version, and the alias moves to it."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment(EXPERIMENT, artifact_location=(tmp_path / "mlruns").as_uri())
    run_id = client.create_run(experiment).info.run_id
    first = register_export(uri, EXPERIMENT, run_id, EXPORT)
    again = register_export(uri, EXPERIMENT, run_id, EXPORT)
    assert str(first.version) == str(again.version) == "1"
    assert len(client.search_model_versions(f"name = '{NAME}'")) == 1
    assert len(client.search_logged_models([experiment])) == 1, "the model was logged twice"
    changed = register_export(uri, EXPERIMENT, run_id, copy_export(tmp_path / "changed", negate=True))
    assert str(changed.version) == str(client.get_model_version_by_alias(NAME, ALIAS).version) == "2"
    assert client.get_model_version(NAME, "2").tags["stylediscover.directions_sha256"] != \
        client.get_model_version(NAME, "1").tags["stylediscover.directions_sha256"]
