"""`stylediscover generators`: the built-in and known generators, format conversion and sampling."""

import json
from pathlib import Path

import click

from stylediscover.cli_params import FORCE, PSI, parse_seeds
from stylediscover.errors import friendly_errors


@click.group()
def generators() -> None:
    """Known checkpoints, format conversion and sampling."""


@generators.command("list")
def generators_list() -> None:
    """Lists the built-in generators and the known checkpoint names with where they download from.

    \b
    Example:
      stylediscover generators list
    """
    from stylediscover.domains import NAMES, weights_dir
    from stylediscover.generators.registry import KNOWN_CHECKPOINTS, cache_dir

    for domain in NAMES:
        path = weights_dir(domain) / "generator.safetensors"
        click.echo(f"{'builtin:' + domain:<12} {'':>5}   shipped, offline   {path}")
    for entry in KNOWN_CHECKPOINTS.values():
        cached = "cached" if (cache_dir() / entry.filename).exists() else "not cached"
        click.echo(f"{entry.name:<12} {entry.resolution:>5}px  {entry.format:<14} {cached:<10}  {entry.description}")
        click.echo(f"{'':<12} {entry.url}")
    click.echo(f"cache: {cache_dir()}  (set STYLEDISCOVER_CACHE to move it)")


@generators.command("convert")
@click.argument("source")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output .safetensors file (weights + JSON config in its metadata).")
@FORCE
@friendly_errors
def generators_convert(source: str, out: Path, force: bool) -> None:
    """Converts SOURCE (a known name or a .pkl / .pt / .safetensors path) to the native format.

    \b
    Example:
      stylediscover generators convert network-snapshot.pkl --out ffhq512.safetensors
    """
    from stylediscover.generators import load_generator, save_native
    from stylediscover.outputs import check_outputs

    check_outputs([out], force)
    generator = load_generator(source, require_class=False)
    save_native(generator, out, source=str(source))
    c = generator.config
    click.echo(f"wrote {out}: {c.resolution}px, num_ws={c.num_ws}, w_dim={c.w_dim}")


@generators.command("sample")
@click.option("--generator", "source", required=True, help="Known name or checkpoint path.")
@click.option("--seeds", default="0-15", show_default=True, help="Seeds, e.g. '0-7,42'.")
@click.option("--psi", "truncation_psi", type=PSI, default=1.0, show_default=True, help="Truncation ψ.")
@click.option("--noise-mode", type=click.Choice(["const", "random", "none"]), default="const", show_default=True)
@click.option("--cols", type=int, default=None, help="Grid columns (default: square).")
@click.option("--class", "class_index", type=int, default=None, help="Class of a conditional generator.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Output PNG.")
@FORCE
@friendly_errors
def generators_sample(source: str, seeds: str, truncation_psi: float, noise_mode: str, cols: int | None,
                      class_index: int | None, out: Path, force: bool) -> None:
    """Writes a PNG grid of images for the given seeds (z ~ N(0, I) seeded per image).

    \b
    Example:
      stylediscover generators sample --generator ffhq512 --seeds 0-7 --psi 0.7 --out grid.png
    """
    import torch

    from stylediscover.generators import load_generator
    from stylediscover.imaging import grid, save_png
    from stylediscover.outputs import check_outputs

    check_outputs([out, out.with_suffix(".json")], force)
    generator = load_generator(source, class_index)
    seed_list = parse_seeds(seeds)
    z = torch.stack([torch.randn(generator.z_dim, generator=torch.Generator().manual_seed(s)) for s in seed_list])
    with torch.no_grad():
        images = generator(z, truncation_psi, noise_mode)
    save_png(grid(images, cols), out)
    options = dict(generator=str(source), seeds=seed_list, psi=truncation_psi, noise_mode=noise_mode,
                   class_index=class_index)
    out.with_suffix(".json").write_text(json.dumps(options, indent=2) + "\n")
    click.echo(f"wrote {out} ({len(seed_list)} images, {generator.resolution}px)")
