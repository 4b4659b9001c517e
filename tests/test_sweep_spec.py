"""Sweep specs: invalid input is refused with the file and field named, before Ray or MLflow start."""

import pytest
import yaml
from conftest import tiny_config

from stylediscover.errors import InputError
from stylediscover.sweep.spec import load_spec, trial_config


def write(tmp_path, spec: dict):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture
def base(tiny_world):
    return tiny_config(tiny_world).model_dump(mode="json")


def test_valid_spec_and_trial_config(tmp_path, base):
    spec = load_spec(write(tmp_path, {"name": "ok", "base": base, "search_space": {
        "loss.temperature": {"type": "loguniform", "low": 0.05, "high": 1.0},
        "navigator.attention": {"type": "choice", "values": ["softmax", "cumax"]}}}))
    cfg = trial_config(spec.base, {"loss.temperature": 0.1, "navigator.attention": "cumax"})
    assert cfg.loss.temperature == 0.1 and cfg.navigator.attention == "cumax"
    assert spec.tracking_uri.startswith("sqlite:///") and spec.tracking_uri.endswith("ok/mlflow.db")


def test_inline_base_updates_base_config_key_by_key(tmp_path, base):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    spec = load_spec(write(tmp_path, {"name": "ok", "base_config": "base.yaml",
                                      "base": {"features": {"input_map": True}, "loss": {"form": "infonce"}}}))
    assert spec.base.features.input_map and spec.base.loss.form == "infonce"
    assert spec.base.features.weights == base["features"]["weights"]
    assert spec.base.loss.variant == base["loss"]["variant"] and spec.base.steps == base["steps"]


@pytest.mark.parametrize("edit, field, message", [
    (lambda s: s["search_space"].update({"navigator.attention": {"type": "choice", "values": ["softmax", "bogus"]}}),
     "search_space.navigator.attention", "value 'bogus' is invalid"),
    (lambda s: s["search_space"].update({"loss.temperature": {"type": "loguniform", "low": 0, "high": 1}}),
     "search_space.loss.temperature.loguniform", "loguniform needs low > 0"),
    (lambda s: s["search_space"].update({"batch": {"type": "choice", "values": [4, 7]}}),
     "search_space.batch", "batch must be even"),
    (lambda s: s.update({"num_samples": 0}), "num_samples", "greater than or equal to 1"),
    (lambda s: s["base"]["navigator"].update({"attention": "sideways"}), "base.navigator.attention", "Input should be"),
    (lambda s: s.update({"scheduler": {"type": "hyperband"}}), "scheduler.type", "Input should be"),
    (lambda s: s.update({"name": "has space"}), "name", "should match pattern"),
    (lambda s: s["search_space"].update({"lr": {"type": "grid", "values": [0.1]}}), None, "search.algorithm 'grid'"),
    (lambda s: s.update({"unknown_key": 1}), "unknown_key", "no such option"),
    (lambda s: s.update({"selection": {"confirm_samples": 500}}), "selection.confirm_samples", "selection.test_sets"),
    (lambda s: s.update({"selection": {"rule": "robust_then_margin"}}), "selection.rule", "base.eval.validation_sets"),
    (lambda s: s["search_space"].update({"eval.validation_sets": {"type": "choice", "values": [1, 5]}}),
     "search_space.eval.validation_sets", "not searchable"),
])
def test_invalid_specs_name_file_and_field(tmp_path, base, edit, field, message):
    spec = {"name": "bad", "base": base, "search_space": {}, "storage_path": str(tmp_path / "store")}
    edit(spec)
    path = write(tmp_path, spec)
    with pytest.raises(InputError) as info:
        load_spec(path)
    text = str(info.value)
    assert text.startswith(str(path)) and message in text
    if field:
        assert f": {field}: " in text
    assert not (tmp_path / "store").exists()


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(InputError, match="nope.yaml: no such file"):
        load_spec(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(InputError, match="not valid YAML"):
        load_spec(bad)


@pytest.mark.parametrize("name", ["quickstart", "ffhq512", "ablation-attention"])
def test_shipped_sweeps_validate(name):
    from pathlib import Path

    spec = load_spec(Path(__file__).parents[1] / "sweeps" / f"{name}.yaml")
    assert spec.name == name and spec.search_space


def test_search_space_entries_can_be_overridden(tmp_path, base):
    path = write(tmp_path, {"name": "ok", "base": base, "search_space": {
        "navigator.attention": {"type": "choice", "values": ["softmax", "cumax"]},
        "loss.temperature": {"type": "loguniform", "low": 0.05, "high": 1.0}}})
    spec = load_spec(path, {"search_space.navigator.attention.values": ["cumax"],
                            "search_space.loss.temperature": None,
                            "search_space.loss.diversity_weight": {"type": "uniform", "low": 0.0, "high": 0.5}})
    assert {k: v.model_dump() for k, v in spec.search_space.items()} == {
        "navigator.attention": {"type": "choice", "values": ["cumax"]},
        "loss.diversity_weight": {"type": "uniform", "low": 0.0, "high": 0.5}}
    with pytest.raises(InputError, match="--set search_space.steps: expected a parameter mapping"):
        load_spec(path, {"search_space.steps": 3})


@pytest.mark.parametrize("key, nearest", [("base.stepz", "base.steps"), ("max_concurent", "max_concurrent"),
                                          ("base.loss.temprature", "base.loss.temperature")])
def test_unknown_override_names_the_nearest_key(tmp_path, base, key, nearest):
    with pytest.raises(InputError) as refused:
        load_spec(write(tmp_path, {"name": "ok", "base": base}), {key: 1})
    assert refused.value.field == f"--set {key}" and f"did you mean {nearest}?" in refused.value.problem


@pytest.mark.parametrize("edit, field, nearest", [
    (lambda s: s.update({"selecton": {"rule": "score"}}), "selecton", "selection"),
    (lambda s: s.update({"selection": {"tests_sets": 2}}), "selection.tests_sets", "selection.test_sets"),
    (lambda s: s["base"].update({"stepz": 4}), "base.stepz", "base.steps"),
    (lambda s: s["base"]["loss"].update({"temprature": 0.2}), "base.loss.temprature", "base.loss.temperature"),
    (lambda s: s["search_space"].update({"loss.form": {"type": "choice", "valuse": ["linear"]}}),
     "search_space.loss.form.choice.valuse", "search_space.loss.form.choice.values"),
])
def test_yaml_key_typos_name_the_nearest_key(tmp_path, base, edit, field, nearest):
    """A misspelt key in the file gets the nearest key at its place, before the problems it causes (the right key
    then missing), as a misspelt --set key does."""
    spec = {"name": "bad", "base": base, "search_space": {}, "storage_path": str(tmp_path / "store")}
    edit(spec)
    with pytest.raises(InputError) as refused:
        load_spec(write(tmp_path, spec))
    assert refused.value.field == field and refused.value.problem == f"no such option; did you mean {nearest}?"


def test_yaml_key_typo_in_a_trial_config_names_the_nearest_key(tmp_path):
    from stylediscover.config import TrainConfig
    from stylediscover.options import load_options

    with pytest.raises(InputError) as refused:
        load_options(TrainConfig, {"navigator": {"atention": "softmax"}}, (), tmp_path / "c.yaml")
    assert str(refused.value) == f"{tmp_path / 'c.yaml'}: navigator.atention: no such option; did you mean " \
                                 "navigator.attention?"
