"""Quality of a shapes generator as the attribute predictor sees it, against renders.

Checks (issue thresholds): (a) each factor's spread — standard deviation for linear factors,
circular variance 1 − |mean(exp(2πi·h))| for hues — within 15% of the renders', shape frequencies
each within ±0.1 of the renders'; (b) shape-head confidence ≥ 0.9 on at least 90% of samples.
Writes report.md, report.json, histograms.png and samples-vs-renders.png into the output directory.
"""

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from stylediscover.generators import Generator  # noqa: E402
from stylediscover.imaging import grid, save_png  # noqa: E402
from stylediscover.predictor import AttributePredictor  # noqa: E402
from stylediscover.shapes.factors import FACTORS, SHAPES  # noqa: E402
from stylediscover.shapes.render import render_seeded  # noqa: E402

SPREAD_TOLERANCE = 0.15
FREQUENCY_TOLERANCE = 0.1
CONFIDENCE = 0.9
CONFIDENT_FRACTION = 0.9


@torch.no_grad()
def read_all(predictor: AttributePredictor, images: torch.Tensor) -> dict[str, torch.Tensor]:
    readings = [predictor.read(predictor(chunk)) for chunk in images.split(250)]
    return {k: torch.cat([r[k] for r in readings]) for k in readings[0]}


def spread(values: torch.Tensor, kind: str) -> float:
    if kind == "hue":
        angle = 2 * math.pi * values
        return float(1 - torch.sqrt(torch.cos(angle).mean() ** 2 + torch.sin(angle).mean() ** 2))
    return float(values.std())


@torch.no_grad()
def generated(generator: Generator, n: int, seed: int, psi: float = 1.0) -> torch.Tensor:
    z = torch.randn(n, generator.z_dim, generator=torch.Generator().manual_seed(seed))
    return torch.cat([generator(chunk, psi, noise_mode="const") for chunk in z.split(250)])


def quality_report(generator: Generator, predictor: AttributePredictor, out_dir: Path, n: int = 2000,
                   seed: int = 0, command: str = "") -> dict:
    """Computes the checks, writes the report files, returns the report dict (with `passed`)."""
    fake = generated(generator, n, seed)
    real, _ = render_seeded(n, seed + 1, generator.resolution)
    rf, rr = read_all(predictor, fake), read_all(predictor, real)
    rows, passed = [], True
    for f in FACTORS:
        if f.kind == "categorical":
            gen_freq = torch.bincount(rf[f.name].argmax(1), minlength=len(SHAPES)).float() / n
            real_freq = torch.bincount(rr[f.name].argmax(1), minlength=len(SHAPES)).float() / n
            for c, name in enumerate(SHAPES):
                ok = abs(float(gen_freq[c] - real_freq[c])) <= FREQUENCY_TOLERANCE
                passed &= ok
                rows.append({"check": f"frequency {name}", "generated": float(gen_freq[c]),
                             "renders": float(real_freq[c]), "target": f"±{FREQUENCY_TOLERANCE}", "ok": ok})
            confident = float((rf[f.name].amax(1) >= CONFIDENCE).float().mean())
            ok = confident >= CONFIDENT_FRACTION
            passed &= ok
            rows.append({"check": f"shape confidence ≥ {CONFIDENCE}", "generated": confident,
                         "renders": float((rr[f.name].amax(1) >= CONFIDENCE).float().mean()),
                         "target": f"≥ {CONFIDENT_FRACTION}", "ok": ok})
        else:
            g, r = spread(rf[f.name], f.kind), spread(rr[f.name], f.kind)
            ok = abs(g / r - 1) <= SPREAD_TOLERANCE
            passed &= ok
            label = "circular variance" if f.kind == "hue" else "std"
            rows.append({"check": f"{f.name} {label}", "generated": g, "renders": r,
                         "target": f"ratio 1 ± {SPREAD_TOLERANCE}", "ok": ok})
    out_dir.mkdir(parents=True, exist_ok=True)
    _histograms(rf, rr, out_dir / "histograms.png")
    save_png(torch.cat([grid(fake[:64], 8), grid(real[:64], 8)], dim=2), out_dir / "samples-vs-renders.png")
    report = {"passed": bool(passed), "n": n, "seed": seed, "command": command, "checks": rows}
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"# Shapes generator quality ({'PASSED' if passed else 'NOT PASSED'})", "",
             f"Command: `{command}`", "", f"{n} generated samples (ψ = 1, seed {seed}) against {n} renders, "
             "both read by the shipped attribute predictor.", "",
             "| check | generated | renders | target | ok |", "|---|---|---|---|---|"]
    lines += [f"| {r['check']} | {r['generated']:.4f} | {r['renders']:.4f} | {r['target']} | "
              f"{'yes' if r['ok'] else 'NO'} |" for r in rows]
    lines += ["", "Left: 64 generated samples; right: 64 renders. ![](samples-vs-renders.png)", "",
              "Per-factor histograms: ![](histograms.png)", ""]
    (out_dir / "report.md").write_text("\n".join(lines))
    return report


def _histograms(fake: dict, real: dict, path: Path) -> None:
    fig, axes = plt.subplots(2, 3, figsize=(12, 6))
    for ax, f in zip(axes.flat, FACTORS):
        if f.kind == "categorical":
            bins = np.arange(len(SHAPES) + 1) - 0.5
            ax.hist(real[f.name].argmax(1).numpy(), bins=bins, alpha=0.5, label="renders", density=True)
            ax.hist(fake[f.name].argmax(1).numpy(), bins=bins, alpha=0.5, label="generated", density=True)
            ax.set_xticks(range(len(SHAPES)), SHAPES)
        else:
            lo, hi = (0, 1) if f.kind == "hue" else (f.low - 0.1 * (f.high - f.low), f.high + 0.1 * (f.high - f.low))
            bins = np.linspace(lo, hi, 31)
            ax.hist(real[f.name].numpy(), bins=bins, alpha=0.5, label="renders", density=True)
            ax.hist(fake[f.name].numpy(), bins=bins, alpha=0.5, label="generated", density=True)
        ax.set_title(f.name)
    axes.flat[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
