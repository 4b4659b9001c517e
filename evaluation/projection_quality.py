"""Projection quality on the embedded domain: renders the generator never saw, projected into W+, read by the predictor.

Usage: python evaluation/projection_quality.py [--n 16] [--steps 500] [--directions DIRS.safetensors]
                                              [--out evaluation/results/projection_quality.md]
For each factor, agreement between the predictor's reading of the target render and of its reconstruction:
R² for linear factors; for hues its circular analogue 1 − mean(1 − cos(2π·(h_rec − h_target))) / circular
variance of the targets; accuracy for the shape. Also the mean pixel MSE.
With --directions (an export for builtin:shapes), each direction is applied to every projection at ± its
manifest strength, and the table says how often its dominant attribute (found on generated samples) is also
the attribute it changes most on the projected renders.
"""

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from machine import describe  # noqa: E402

from stylediscover.builtin import resolve_builtin  # noqa: E402
from stylediscover.directions import load_directions  # noqa: E402
from stylediscover.edit import ProjectionConfig, edit_response, project  # noqa: E402
from stylediscover.features import FeatureConfig, load_features  # noqa: E402
from stylediscover.generators import load_generator  # noqa: E402
from stylediscover.predictor import load_predictor  # noqa: E402
from stylediscover.shapes.domain import DOMAIN as SHAPES  # noqa: E402
from stylediscover.shapes.factors import FACTORS  # noqa: E402

FRESH_SEED = 424242


def agreement(kind: str, target: torch.Tensor, recon: torch.Tensor) -> float:
    if kind == "categorical":
        return float((target.argmax(1) == recon.argmax(1)).float().mean())
    if kind == "hue":
        angle = 2 * math.pi * target
        variance = 1 - float(torch.sqrt(torch.cos(angle).mean() ** 2 + torch.sin(angle).mean() ** 2))
        distance = float((1 - torch.cos(2 * math.pi * (recon - target))).mean())
        return 1 - distance / max(variance, 1e-8)
    return 1 - float((recon - target).square().sum() / (target - target.mean()).square().sum().clamp(min=1e-12))


def edit_transfer(generator, predictor, directions_path: Path, results: list[dict]) -> list[str]:
    """Rows: per direction, how often its dominant attribute is the most-changed one on the projections."""
    directions = load_directions(directions_path, generator)
    names = directions.manifest["attributes"]
    rows = []
    for entry in directions.manifest["directions"]:
        k, dominant = entry["index"], names.index(entry["dominant_attribute"])
        responses = torch.stack([edit_response(generator, predictor, r["ws"], r["noise"],
                                               directions.edit_delta(r["ws"], k)) for r in results])
        hits = float((responses.argmax(dim=1) == dominant).float().mean())
        others = torch.cat([responses[:, :dominant], responses[:, dominant + 1:]], dim=1).amax(dim=1)
        rows.append(f"| {k} | {entry['dominant_attribute']} | {entry['response']:.3f} | "
                    f"{float(responses[:, dominant].mean()):.3f} | {float(others.mean()):.3f} | {hits:.2f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--directions", type=Path, default=None, help="an export for builtin:shapes")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "projection_quality.md")
    args = parser.parse_args()
    generator = load_generator("builtin:shapes")
    predictor = load_predictor(resolve_builtin("builtin:shapes", "predictor"))
    features = load_features(FeatureConfig())
    targets, _ = SHAPES.render_seeded(args.n, FRESH_SEED, generator.resolution)
    start = time.perf_counter()
    results = [project(generator, features, t[None], ProjectionConfig(steps=args.steps), progress=False)
               for t in targets]
    seconds_per_image = (time.perf_counter() - start) / args.n
    recon = torch.cat([r["image"] for r in results])
    with torch.no_grad():
        read_t, read_r = predictor.read(predictor(targets)), predictor.read(predictor(recon))
    measure = {"categorical": "accuracy", "hue": "circular R²", "linear": "R²"}
    rows = [f"| {f.name} | {measure[f.kind]} | "
            f"{agreement(f.kind, read_t[f.name], read_r[f.name]):.3f} |" for f in FACTORS]
    pixel = statistics.mean(r["pixel_mse"] for r in results)
    transfer = []
    if args.directions is not None:
        transfer = [
            f"Edits with `{args.directions}` on these projections (each direction at ± its manifest strength; "
            "responses in the metrics' units):", "",
            "| direction | dominant attribute | response on samples | response on projections | "
            "largest other on projections | share of projections where it is the most-changed |",
            "|---|---|---|---|---|---|", *edit_transfer(generator, predictor, args.directions, results), ""]
    command = f"python evaluation/projection_quality.py --n {args.n} --steps {args.steps}" + (
        f" --directions {args.directions}" if args.directions else "")
    table = "\n".join([
        "# Projection of unseen renders into W+ (embedded domain)", "",
        f"Machine: {describe()}", "",
        f"Command: `{command}`", "",
        f"{args.n} renders (seed {FRESH_SEED}, never used in training), {args.steps} projection steps each "
        f"({seconds_per_image:.1f} s per image), discriminator features + pixel loss. "
        f"Mean pixel MSE (images in [-1, 1]): {pixel:.4f}.", "",
        "Agreement of the predictor's readings of target and reconstruction:", "",
        "| factor | measure | agreement |", "|---|---|---|", *rows, "", *transfer])
    args.out.write_text(table)
    print(table)


if __name__ == "__main__":
    main()
