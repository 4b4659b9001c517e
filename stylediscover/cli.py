"""The `stylediscover` command line."""

from pathlib import Path

import click

from stylediscover.builtin import DEFAULT
from stylediscover.cli_params import FORCE, PSI, STRENGTH, parse_floats
from stylediscover.domain_cli import domain_groups
from stylediscover.errors import friendly_errors as _friendly_errors
from stylediscover.explore.cli import explore
from stylediscover.generators_cli import generators
from stylediscover.options import load_options, read_yaml_mapping
from stylediscover.predictor_cli import predictor
from stylediscover.sweep_cli import sweep


@click.group()
@click.version_option(package_name="stylediscover")
def main() -> None:
    """Discover semantic directions in StyleGAN generators (ContraFeat), swept with Ray Tune."""


for _group in (explore, sweep, generators, predictor):
    main.add_command(_group)
for _group in domain_groups():
    main.add_command(_group)


@main.command()
@click.argument("config_path", metavar="CONFIG.yaml", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a dotted option.")
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output directory (default runs/<config name>); an existing checkpoint is resumed.")
@_friendly_errors
def train(config_path: Path, overrides: tuple[str, ...], run_dir: Path | None) -> None:
    """Trains one navigator from CONFIG.yaml (a TrainConfig) and exports its directions.

    \b
    Examples:
      stylediscover train configs/shapes-binary.yaml
      stylediscover train configs/shapes-binary.yaml --set loss.form=infonce --set loss.temperature=0.2
    """
    from stylediscover.config import TrainConfig
    from stylediscover.sweep.preflight import preflight_trial
    from stylediscover.trainer import train as train_trial

    cfg = load_options(TrainConfig, read_yaml_mapping(config_path), overrides, config_path)
    run_dir = run_dir or Path("runs") / config_path.stem
    preflight_trial(cfg, config_path, run_dir)
    m = train_trial(cfg, run_dir)
    robust = (f" (robustly {m['robust_n_discovered']} over {cfg.eval.validation_sets} validation sets, weakest "
              f"margin {m['weakest_margin']:.3f})" if "robust_n_discovered" in m else "")
    click.echo(f"last evaluation (step {m['step']}): score {m['score']:.3f}, n_discovered {m['n_discovered']}{robust}; "
               f"directions: {run_dir / 'directions.safetensors'}")
    if "best_step" in m:
        click.echo(f"best evaluation (step {m['best_step']}): score {m['best_score']:.3f}, n_discovered "
                   f"{m['best_n_discovered']}; directions: {run_dir / 'best' / 'directions.safetensors'}")


@main.command()
@click.argument("directions_path", metavar="DIRECTIONS", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--generator", "generator_source", default=None, help="Default: the one in the manifest.")
@click.option("--predictor", "predictor_source", default=None, help="Default: the one in the manifest.")
@click.option("--samples", type=int, default=None, help="N codes per direction.")
@click.option("--scale", type=STRENGTH, default=None, help="Edit strength s (default: the manifest's).")
@click.option("--psi", type=PSI, default=None, help="Truncation ψ of the codes.")
@click.option("--calibrate/--no-calibrate", default=None,
              help="Per-direction strengths giving equal feature change (default: as the trial did).")
@click.option("--seed", type=int, default=None, help="Seed of the codes (default: the trial's, metrics.seed).")
@click.option("--test-sets", type=click.IntRange(min=1), default=None,
              help="Held-out test instead: R sets of test codes (seeds derived from the validation seed, never "
                   "equal to it; --samples per set, default 1000), with the robust-discovery table.")
@_friendly_errors
def evaluate(directions_path: Path, generator_source: str | None, predictor_source: str | None,
             samples: int | None, scale: float | None, psi: float | None, calibrate: bool | None,
             seed: int | None, test_sets: int | None) -> None:
    """Recomputes score and n_discovered of exported directions and prints the response matrix; another
    --seed gives codes the training-time evaluations never saw; --test-sets R gives the held-out test (the
    sweep's) as a table: per attribute on how many sets it is discovered, the margin of its winning direction over
    that direction's runner-up per set, and whether it is robustly discovered; n_discovered and score as
    mean ± std over the sets.

    \b
    Examples:
      stylediscover evaluate runs/shapes-binary/directions.safetensors --samples 500
      stylediscover evaluate runs/shapes-binary/best/directions.safetensors --samples 1000 --seed 1
      stylediscover evaluate runs/shapes-binary/best/directions.safetensors --test-sets 5
    """
    from stylediscover.assessment import assess, assess_heldout

    if test_sets is not None:
        if seed is not None:
            raise click.UsageError("--seed and --test-sets exclude each other: the test seeds derive from the "
                                   "validation seed")
        from stylediscover.heldout import TEST_SAMPLES, robust_table

        result = assess_heldout(directions_path, test_sets, samples or TEST_SAMPLES, generator_source,
                                predictor_source, progress=True, scale=scale, truncation_psi=psi, calibrate=calibrate)
        click.echo(f"held-out test: {result['sets']} sets of {result['samples']} codes, seeds "
                   f"{', '.join(map(str, result['seeds']))} (validation seed {result['validation_seed']})")
        click.echo("\n".join(robust_table(result)))
        return
    result = assess(directions_path, generator_source, predictor_source, samples=samples, scale=scale,
                    truncation_psi=psi, calibrate=calibrate, seed=seed)
    if result["scales"] is not None:
        click.echo("calibrated scales: " + ", ".join(f"{s:.3f}" for s in result["scales"]))
    names = result["attributes"]
    click.echo("direction  " + "  ".join(f"{n[:12]:>12}" for n in names))
    for k, row in enumerate(result["responses"]):
        click.echo(f"{k:>9}  " + "  ".join(f"{v:12.4f}" for v in row))
    click.echo(f"score {result['score']:.4f}  n_discovered {result['n_discovered']} of {len(names)}  "
               f"(scale {result['scale']}, N {result['samples']}, psi {result['truncation_psi']}, "
               f"seed {result['seed']})")


@main.command()
@click.argument("directions_path", metavar="DIRECTIONS", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--generator", "generator_source", default=None, help="Default: the one in the manifest.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--scale", type=STRENGTH, default=None,
              help="Largest strength for every row (default: each direction's own recommended strength).")
@click.option("--strengths", type=click.IntRange(min=2), default=7, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@FORCE
@_friendly_errors
def traverse(directions_path: Path, generator_source: str | None, seed: int, scale: float | None, strengths: int,
             out: Path, force: bool) -> None:
    """Writes a traversal grid: one labelled row per direction (index, dominant attribute, response, margin over the
    runner-up, layer range, quality), clean directions first, each from −s to +s at its own strength s.

    \b
    Example:
      stylediscover traverse runs/shapes-binary/directions.safetensors --out grid.png
    """
    import torch

    from stylediscover.directions import direction_entries, display_order, load_directions, row_label
    from stylediscover.generators import load_generator
    from stylediscover.outputs import check_outputs
    from stylediscover.plots import traversal_grid

    check_outputs([out], force)
    manifest = load_directions(directions_path).manifest
    generator = load_generator(generator_source or manifest["config"]["generator"],
                               manifest["config"].get("class_index"))
    directions = load_directions(directions_path, generator)
    k_dirs = len(directions.deltas)
    scales = torch.tensor([scale or directions.strength(k) for k in range(k_dirs)])
    responses = torch.tensor([e["responses"] for e in manifest["directions"]])
    entries = direction_entries(responses, directions.attention, manifest["attributes"], scales)
    traversal_grid(generator, directions.all_deltas, scales, strengths, seed, out, [row_label(e) for e in entries],
                   display_order(entries))
    counts = {q: sum(e["quality"] == q for e in entries) for q in ("clean", "entangled", "inactive")}
    click.echo(f"wrote {out}: {counts['clean']} clean, {counts['entangled']} entangled, "
               f"{counts['inactive']} inactive directions")


@main.command()
@click.argument("image", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--generator", "source", default=DEFAULT, show_default=True)
@click.option("--features", "feature_name", default="discriminator", show_default=True,
              type=click.Choice(["discriminator", "alexnet", "vgg16", "lpips-alex", "lpips-vgg"]))
@click.option("--features-weights", default=None,
              help="Weights of the feature network: a path or builtin:<domain> (default: a built-in generator's own "
                   "discriminator, torchvision's ImageNet weights for the backbones).")
@click.option("--steps", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--class", "class_index", type=int, default=None, help="Class of a conditional generator.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="latent .npz")
@FORCE
@_friendly_errors
def project(image: Path, source: str, feature_name: str, features_weights: str, steps: int, seed: int,
            class_index: int | None, out: Path, force: bool) -> None:
    """Projects IMAGE into W+; writes the latent (.npz) and a side-by-side PNG (target | reconstruction).

    \b
    Examples:
      stylediscover project photo.png --out latent.npz
      stylediscover project face.png --generator ffhq512 --features lpips-vgg --out face.npz
    """
    import torch

    from stylediscover.builtin import discriminator_for
    from stylediscover.edit import ProjectionConfig, load_image, save_latent
    from stylediscover.edit import project as run_projection
    from stylediscover.features import FeatureConfig, load_features
    from stylediscover.generators import load_generator
    from stylediscover.imaging import grid, save_png
    from stylediscover.outputs import check_outputs

    check_outputs([out, out.with_suffix(".png")], force)
    generator = load_generator(source, class_index)
    target = load_image(image, generator.resolution)
    weights = discriminator_for(source, features_weights) if feature_name == "discriminator" else features_weights
    features = load_features(FeatureConfig(name=feature_name, weights=weights), "--features")
    result = run_projection(generator, features, target, ProjectionConfig(steps=steps, seed=seed))
    save_latent(out, result, str(image))
    save_png(grid(torch.cat([target, result["image"]]), cols=2), out.with_suffix(".png"))
    click.echo(f"wrote {out} and {out.with_suffix('.png')}: pixel MSE {result['pixel_mse']:.5f}, "
               f"perceptual {result['perceptual']:.5f}")


@main.command()
@click.argument("source_path", metavar="[IMAGE_OR_LATENT]", type=click.Path(dir_okay=False, path_type=Path),
                required=False)
@click.option("--directions", "directions_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Exported directions (with --recipe: default the recipe's).")
@click.option("--direction", "keys", multiple=True,
              help="Direction index or dominant-attribute name (repeatable: one row each).")
@click.option("--recipe", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="An edit recipe saved by `stylediscover explore`: reproduces its image exactly.")
@click.option("--strengths", default="-2,-1,0,1,2", show_default=True, help="Multiples of the manifest's scale.")
@click.option("--generator", "generator_source", default=None, help="Default: the one in the manifest.")
@click.option("--steps", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Projection steps for an image input.")
@click.option("--class", "class_index", type=int, default=None,
              help="Class of a conditional generator (default: the trial's).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Edit strip PNG.")
@FORCE
@_friendly_errors
def edit(source_path: Path | None, directions_path: Path | None, keys: tuple[str, ...], recipe: Path | None,
         strengths: str, generator_source: str | None, steps: int, class_index: int | None, out: Path,
         force: bool) -> None:
    """Applies exported directions to a projected latent (.npz) or an image (projected first) → edit strip; or
    renders an explorer recipe (its generator and directions must have the recipe's sha256).

    \b
    Examples:
      stylediscover edit latent.npz --directions best/directions.safetensors --direction wall_hue --out strip.png
      stylediscover edit photo.png --directions best/directions.safetensors --direction 3 --direction 5 --out s.png
      stylediscover edit --recipe recipe.json --out edited.png
    """
    from stylediscover.directions import load_directions
    from stylediscover.edit import ProjectionConfig, load_image, load_latent, render_edits
    from stylediscover.edit import project as run_projection
    from stylediscover.features import FeatureConfig, load_features
    from stylediscover.generators import load_generator
    from stylediscover.imaging import grid, save_png
    from stylediscover.outputs import check_outputs

    if recipe is None and (source_path is None or directions_path is None or not keys):
        raise click.UsageError("give IMAGE_OR_LATENT, --directions and --direction (or --recipe)")
    check_outputs([out], force)
    if recipe is not None:
        from stylediscover.explore.recipe import render_recipe

        save_png(render_recipe(recipe, directions_path, generator_source), out)
        click.echo(f"wrote {out} from {recipe}")
        return
    manifest = load_directions(directions_path).manifest
    generator = load_generator(generator_source or manifest["config"]["generator"],
                               manifest["config"].get("class_index") if class_index is None else class_index)
    directions = load_directions(directions_path, generator)
    if source_path.suffix == ".npz":
        ws, noise = load_latent(source_path, generator)
    else:
        features_cfg = FeatureConfig.model_validate(manifest["config"]["features"])
        result = run_projection(generator, load_features(features_cfg), load_image(source_path, generator.resolution),
                                ProjectionConfig(steps=steps))
        ws, noise = result["ws"], result["noise"]
    values = parse_floats(strengths, "--strengths")
    indices = [directions.index(k) for k in keys]
    deltas = [directions.edit_delta(ws, k) for k in indices]
    save_png(grid(render_edits(generator, ws, noise, deltas, values), cols=len(values)), out)
    rows = [(k, manifest["directions"][k]["dominant_attribute"], directions.strength(k),
             manifest["directions"][k].get("quality", "unrated")) for k in indices]
    click.echo(f"wrote {out}: rows (index, attribute, scale, quality) {rows}, strengths ×{values}")



if __name__ == "__main__":
    main()
