"""User-labelled predictors: CSV and FFHQ-Features-Dataset layouts, training, and clear errors."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from stylediscover.cli import main
from stylediscover.errors import InputError
from stylediscover.imaging import grid, save_png
from stylediscover.labels import FFHQ_ATTRIBUTES, ffhq_targets, read_csv_labels, read_ffhq_features
from stylediscover.predictor import load_predictor
from stylediscover.shapes.domain import DOMAIN as SHAPES
from stylediscover.shapes.factors import FACTOR_NAMES

FACE = {"smile": 0.9, "age": 31.0, "gender": "female",
        "headPose": {"pitch": 0.0, "roll": -2.1, "yaw": 10.3},
        "facialHair": {"moustache": 0.0, "beard": 0.1, "sideburns": 0.0}, "glasses": "ReadingGlasses",
        "emotion": {"anger": 0.0, "contempt": 0.0, "disgust": 0.0, "fear": 0.0, "happiness": 0.9,
                    "neutral": 0.1, "sadness": 0.0, "surprise": 0.0},
        "hair": {"bald": 0.05, "invisible": False, "hairColor": [{"color": "brown", "confidence": 0.98},
                                                                 {"color": "black", "confidence": 0.6}]},
        "makeup": {"eyeMakeup": True, "lipMakeup": False},
        "exposure": {"exposureLevel": "goodExposure", "value": 0.6}, "blur": {"blurLevel": "low", "value": 0.02}}


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """240 renders as PNG files with their factors in a CSV (hue columns as cos/sin-free numbers)."""
    root = tmp_path_factory.mktemp("labelled")
    images, factors = SHAPES.render_seeded(240, seed=3, resolution=32)
    rows = ["file," + ",".join(["object_scale", "object_x"])]
    for i, (img, f) in enumerate(zip(images, factors)):
        save_png(grid(img[None]), root / f"{i:05d}.png")
        rows.append(f"{i:05d}.png,{f[FACTOR_NAMES.index('object_scale')]:.4f},{f[FACTOR_NAMES.index('object_x')]:.4f}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def test_ffhq_features_layout_to_targets(tmp_path):
    values = dict(zip(FFHQ_ATTRIBUTES, ffhq_targets(FACE)))
    assert values["gender"] == 0 and values["glasses"] == 1 and values["hair_brown"] == 0.98
    assert values["hair_black"] == 0.6 and values["eye_makeup"] == 1 and values["lip_makeup"] == 0
    assert values["yaw"] == 10.3 and values["exposure"] == 0.6
    Image.new("RGB", (8, 8)).save(tmp_path / "00000.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "00001.png")
    (tmp_path / "00000.json").write_text(json.dumps([{"faceRectangle": {}, "faceAttributes": FACE}]))
    (tmp_path / "00001.json").write_text("[]")
    paths, targets, names = read_ffhq_features(tmp_path, tmp_path)
    assert [p.name for p in paths] == ["00000.png"] and targets.shape == (1, len(FFHQ_ATTRIBUTES))
    (tmp_path / "00002.json").write_text(json.dumps([{"faceAttributes": {"smile": 1}}]))
    with pytest.raises(InputError, match="00002.json: faceAttributes: unexpected layout"):
        read_ffhq_features(tmp_path, tmp_path)


def test_csv_errors_name_line_and_field(tmp_path, labelled):
    bad = tmp_path / "bad.csv"
    bad.write_text("file,size\n00000.png,big\n")
    with pytest.raises(InputError, match="bad.csv: attributes: line 2: attribute values must be numbers"):
        read_csv_labels(bad, labelled)
    missing = tmp_path / "missing.csv"
    missing.write_text("file,size\nnope.png,1\n")
    with pytest.raises(InputError, match="missing.csv: file: line 2: no image"):
        read_csv_labels(missing, labelled)


def test_train_small_predictor_from_csv(labelled, tmp_path):
    out = tmp_path / "p.safetensors"
    result = CliRunner().invoke(main, ["predictor", "train", "--images", str(labelled), "--csv",
                                       str(labelled / "labels.csv"), "--backbone", "small", "--resolution", "32",
                                       "--epochs", "25", "--batch", "16", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["backbone"] == "small" and report["held_out"] == 24
    assert report["held_out_r2"]["object_x"] > 0.5
    model = load_predictor(out)
    images, factors = SHAPES.render_seeded(8, seed=11, resolution=32)
    x = model.read(model(images))["object_x"]
    assert x.shape == (8,) and torch.isfinite(x).all()
    assert np.corrcoef(x.numpy(), factors[:, FACTOR_NAMES.index("object_x")].numpy())[0, 1] > 0.5


def test_resnet50_without_weights_offline_is_a_clear_error(labelled, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-hub"))
    result = CliRunner().invoke(main, ["predictor", "train", "--images", str(labelled), "--csv",
                                       str(labelled / "labels.csv"), "--backbone", "resnet50",
                                       "--out", str(tmp_path / "r.safetensors")])
    assert result.exit_code == 2
    assert "--resnet-weights PATH" in result.output and "--backbone small" in result.output
