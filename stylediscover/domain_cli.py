"""The command group of each embedded domain (`stylediscover shapes …`, `stylediscover faces …`): renders,
training its StyleGAN2 and its attribute predictor, and the generator's quality report. One factory makes
every domain's group; the domain's own options come from its `Domain` record."""

import json
from inspect import cleandoc
from pathlib import Path

import click

from stylediscover.domains import NAMES
from stylediscover.errors import InputError, friendly_errors
from stylediscover.options import load_options

SET_OPTION = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a training option.")
MAX_RENDERS = 10_000
MAX_QUALITY_SAMPLES = 20_000
HELP = {
    "render": """Writes a grid of {name} renders with their factors (JSON beside the PNG).

\b
Examples:
  stylediscover {name} render --n 64 --out renders.png
  stylediscover {name} render --factors --seed 1 --out factors.png
""",
    "train-generator": """Trains (or resumes) the {name} StyleGAN2; writes generator/discriminator.safetensors
into RUN_DIR.

\b
Example (the shipped model's command; training/README.md resumes the committed run):
  stylediscover {name} train-generator --run-dir runs/{name}-gan
  stylediscover {name} train-generator --run-dir runs/try --set steps=2000 --set r1_gamma=0.1
""",
    "train-predictor": """Trains the {name} attribute predictor on renders; reports held-out R² and accuracy.

\b
Example (the shipped predictor's command):
  stylediscover {name} train-predictor --out stylediscover/{name}/weights/predictor.safetensors
""",
    "quality-report": """Compares generated samples with renders through the predictor (spreads, means,
class frequencies, confidence, Fréchet distance of the predictor's features).

\b
Example:
  stylediscover {name} quality-report --out-dir evaluation/results/{name}-quality
""",
}


def _help(command: str, name: str) -> str:
    return cleandoc(HELP[command].replace("{name}", name))


def domain_group(name: str) -> click.Group:
    """The click group of domain `name` with its render, train-generator, train-predictor and quality-report."""

    @click.group(name=name, help=f"The embedded {name} domain: renders, its StyleGAN2 and its attribute predictor.")
    def group() -> None:
        pass

    @group.command("render", help=_help("render", name))
    @click.option("--n", "count", type=click.IntRange(1, MAX_RENDERS), default=64, show_default=True,
                  help="Number of renders.")
    @click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True)
    @click.option("--resolution", type=click.Choice(["16", "32", "64", "128", "256"]), default=None,
                  help="Image side in pixels (default: the domain's).")
    @click.option("--factors", "sheet", is_flag=True,
                  help="Instead: one row per factor, swept over its range on the face of --seed (7 columns).")
    @click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="PNG grid.")
    @friendly_errors
    def render(count: int, seed: int, resolution: str | None, sheet: bool, out: Path) -> None:
        from stylediscover.domains import get_domain
        from stylediscover.imaging import grid, save_png

        domain = get_domain(name)
        if sheet:
            save_png(grid(domain.factor_sheet(seed, resolution=int(resolution) if resolution else None), 7), out)
            out.with_suffix(".txt").write_text("\n".join(domain.factor_names) + "\n")
            click.echo(f"wrote {out} (rows: {', '.join(domain.factor_names)})")
            return
        images, factors = domain.render_seeded(count, seed, int(resolution) if resolution else None)
        save_png(grid(images), out)
        rows = [dict(zip(domain.factor_names, map(float, row))) for row in factors]
        out.with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")
        click.echo(f"wrote {out}")

    @group.command("train-generator", help=_help("train-generator", name))
    @click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path), required=True,
                  help="Run directory; an existing checkpoint there is resumed.")
    @SET_OPTION
    @friendly_errors
    def train_generator(run_dir: Path, overrides: tuple[str, ...]) -> None:
        from stylediscover.domains import get_domain
        from stylediscover.gan_training import GanTrainConfig, train

        options = run_dir / "options.json"
        base = json.loads(options.read_text()) if options.exists() else get_domain(name).gan
        cfg = load_options(GanTrainConfig, base, overrides, str(options) if options.exists() else "--set")
        if cfg.domain != name:
            raise InputError(options, f"this run trains the {cfg.domain} domain, not {name}", "domain")
        train(cfg, run_dir)

    @group.command("train-predictor", help=_help("train-predictor", name))
    @click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
                  help="Output .safetensors; held-out metrics go to the .json beside it.")
    @SET_OPTION
    @friendly_errors
    def train_predictor(out: Path, overrides: tuple[str, ...]) -> None:
        from stylediscover.domain_predictor import PredictorTrainConfig, train_predictor
        from stylediscover.domains import get_domain

        cfg = load_options(PredictorTrainConfig, {"domain": name} | get_domain(name).predictor, overrides, "--set")
        for key, value in train_predictor(cfg, out).items():
            click.echo(f"{key:<28} {value:.4f}")

    @group.command("quality-report", help=_help("quality-report", name))
    @click.option("--generator", "source", default=f"builtin:{name}", show_default=True)
    @click.option("--predictor", "predictor_source", default=f"builtin:{name}", show_default=True)
    @click.option("--n", "count", type=click.IntRange(100, MAX_QUALITY_SAMPLES), default=5000, show_default=True)
    @click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), required=True)
    @friendly_errors
    def quality_report(source: str, predictor_source: str, count: int, out_dir: Path) -> None:
        from stylediscover.builtin import resolve_builtin
        from stylediscover.domains import get_domain
        from stylediscover.gan_quality import quality_report
        from stylediscover.generators import load_generator
        from stylediscover.predictor import load_predictor

        command = f"stylediscover {name} quality-report --generator {source} --n {count} --out-dir {out_dir}"
        report = quality_report(get_domain(name), load_generator(source),
                                load_predictor(resolve_builtin(predictor_source, "predictor")), out_dir, count,
                                command=command)
        for row in report["checks"]:
            click.echo(f"{row['check']:<40} {row['generated']:8.4f} {row['renders']:8.4f}  "
                       f"{'ok' if row['ok'] else 'NO'}")
        click.echo(f"{'PASSED' if report['passed'] else 'NOT PASSED'}: {out_dir / 'report.md'}")

    return group


def domain_groups() -> list[click.Group]:
    return [domain_group(name) for name in NAMES]
