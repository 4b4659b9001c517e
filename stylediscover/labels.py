"""Labelled image sets for attribute predictors: a CSV of attributes, or the FFHQ-Features-Dataset layout.

CSV: a `file` column (image path relative to the image folder) and one numeric column per attribute.
FFHQ-Features-Dataset: one JSON per image (`00000.json` ↔ `00000.png`), a list of faces whose first
entry's `faceAttributes` become these numeric targets (FFHQ_ATTRIBUTES, in order):
  smile, age, gender (male = 1), headPose.{pitch, roll, yaw}, facialHair.{moustache, beard, sideburns},
  glasses (any glasses = 1), emotion.{anger, contempt, disgust, fear, happiness, neutral, sadness,
  surprise}, hair.bald, hair colour confidences {black, blond, brown, gray, red}, makeup.{eye, lip}
  (true = 1), exposure.value, blur.value.
Images with no face in their JSON are skipped.
"""

import csv
import json
from pathlib import Path

import numpy as np

from stylediscover.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
HAIR_COLOURS = ("black", "blond", "brown", "gray", "red")
EMOTIONS = ("anger", "contempt", "disgust", "fear", "happiness", "neutral", "sadness", "surprise")
FFHQ_ATTRIBUTES = (["smile", "age", "gender", "pitch", "roll", "yaw", "moustache", "beard", "sideburns", "glasses"]
                   + list(EMOTIONS) + ["bald"] + [f"hair_{c}" for c in HAIR_COLOURS]
                   + ["eye_makeup", "lip_makeup", "exposure", "blur"])


def ffhq_targets(face: dict) -> list[float]:
    """One face's `faceAttributes` dict → the FFHQ_ATTRIBUTES vector."""
    pose, hair_bits = face["headPose"], face["facialHair"]
    hair = face.get("hair", {})
    colours = {c["color"]: float(c["confidence"]) for c in hair.get("hairColor", [])}
    makeup = face.get("makeup", {})
    return ([float(face["smile"]), float(face["age"]), float(face["gender"] == "male"),
             float(pose["pitch"]), float(pose["roll"]), float(pose["yaw"]),
             float(hair_bits["moustache"]), float(hair_bits["beard"]), float(hair_bits["sideburns"]),
             float(face.get("glasses", "NoGlasses") != "NoGlasses")]
            + [float(face["emotion"][e]) for e in EMOTIONS] + [float(hair.get("bald", 0.0))]
            + [colours.get(c, 0.0) for c in HAIR_COLOURS]
            + [float(bool(makeup.get("eyeMakeup"))), float(bool(makeup.get("lipMakeup")))]
            + [float(face.get("exposure", {}).get("value", 0.5)), float(face.get("blur", {}).get("value", 0.0))])


def _image_for(stem: str, image_dir: Path, source: Path) -> Path:
    for suffix in IMAGE_SUFFIXES:
        if (image_dir / f"{stem}{suffix}").is_file():
            return image_dir / f"{stem}{suffix}"
    raise InputError(source, f"no image named {stem}.* in {image_dir}")


def read_ffhq_features(json_dir: Path, image_dir: Path) -> tuple[list[Path], np.ndarray, list[str]]:
    """(image paths, targets [N, A] float32, attribute names) from the FFHQ-Features-Dataset layout."""
    paths, rows = [], []
    files = sorted(Path(json_dir).glob("*.json"))
    if not files:
        raise InputError(json_dir, "no *.json files")
    for file in files:
        try:
            faces = json.loads(file.read_text())
        except json.JSONDecodeError as exc:
            raise InputError(file, f"not valid JSON ({exc})") from None
        if not faces:
            continue
        try:
            rows.append(ffhq_targets(faces[0]["faceAttributes"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(file, f"unexpected layout ({type(exc).__name__}: {exc})", "faceAttributes") from None
        paths.append(_image_for(file.stem, Path(image_dir), file))
    return paths, np.asarray(rows, dtype=np.float32), list(FFHQ_ATTRIBUTES)


def read_csv_labels(csv_path: Path, image_dir: Path) -> tuple[list[Path], np.ndarray, list[str]]:
    """(image paths, targets [N, A] float32, attribute names) from a CSV with a `file` column."""
    try:
        with open(csv_path, newline="") as f:
            reader = csv.DictReader(f)
            names = [n for n in (reader.fieldnames or []) if n != "file"]
            if "file" not in (reader.fieldnames or []) or not names:
                raise InputError(csv_path, "needs a 'file' column and at least one attribute column", "header")
            paths, rows = [], []
            for line, row in enumerate(reader, start=2):
                path = Path(image_dir) / row["file"]
                if not path.is_file():
                    raise InputError(csv_path, f"line {line}: no image {path}", "file")
                try:
                    rows.append([float(row[n]) for n in names])
                except (TypeError, ValueError):
                    raise InputError(csv_path, f"line {line}: attribute values must be numbers", "attributes") from None
                paths.append(path)
    except FileNotFoundError:
        raise InputError(csv_path, "no such file") from None
    return paths, np.asarray(rows, dtype=np.float32), names
