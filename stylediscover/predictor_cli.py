"""`stylediscover predictor`: attribute predictors trained on your own labelled images."""

from pathlib import Path

import click

from stylediscover.errors import friendly_errors


@click.group()
def predictor() -> None:
    """Attribute predictors for your own domain (the metrics' P)."""


@predictor.command("train")
@click.option("--images", "image_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="CSV with a 'file' column and one numeric column per attribute.")
@click.option("--ffhq-json", "json_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of FFHQ-Features-Dataset JSON files (one per image).")
@click.option("--backbone", type=click.Choice(["auto", "resnet50", "small"]), default="auto", show_default=True)
@click.option("--resnet-weights", default=None, help="Local torchvision ResNet-50 state dict (offline).")
@click.option("--resolution", type=int, default=None, help="Input side (default 224 for resnet50, 64 small).")
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--batch", type=click.IntRange(min=2), default=32, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@friendly_errors
def predictor_train(image_dir: Path, csv_path: Path | None, json_dir: Path | None, backbone: str,
                    resnet_weights: str | None, resolution: int | None, epochs: int, batch: int, out: Path) -> None:
    """Trains an attribute regressor on labelled images; prints held-out R² per attribute.

    \b
    Examples:
      stylediscover predictor train --images ffhq/images1024x1024 --ffhq-json ffhq-features/json --out ffhq.safetensors
      stylediscover predictor train --images my/images --csv my/labels.csv --backbone small --out mine.safetensors
    """
    from stylediscover.errors import InputError
    from stylediscover.labels import read_csv_labels, read_ffhq_features
    from stylediscover.predictor_training import train_labelled

    if (csv_path is None) == (json_dir is None):
        raise InputError("--csv/--ffhq-json", "give exactly one of --csv and --ffhq-json")
    paths, targets, names = (read_csv_labels(csv_path, image_dir) if csv_path
                             else read_ffhq_features(json_dir, image_dir))
    r2 = train_labelled(paths, targets, names, out, backbone, resnet_weights, resolution, epochs, batch)
    for name, value in r2.items():
        click.echo(f"{name:<16} R² {value:.3f}")
    click.echo(f"wrote {out}")
