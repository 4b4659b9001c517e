"""Why object scale is the factor the quickstart loses: how the shipped generator couples object size with the
predictor's shape reading.

Usage: python evaluation/scale_entanglement.py [--out evaluation/results/scale-entanglement.md]

The predictor reads a pure scale change of renders cleanly (evaluation/render_responses.py). Here, in the metrics'
units (responses as `metrics.head_changes` → `responses_of`, x+ against x− averaged over codes; margin = 1 −
runner-up / dominant response, as `heldout.factor_margins`):
1. the shipped generator along the W direction that best predicts each linear reading (least squares over FIT
   codes), applied at every W+ layer at ± one standard deviation of the codes' projections on it; for object scale
   also the part orthogonal to the shape and position directions (InterFaceGAN's conditional edit);
2. the shape head per quartile of the object-scale reading, on generated images (truncation ψ 0.5, the metrics'
   setting, and ψ 1) and on renders.
Codes: seeds FIT_SEED and EVAL_SEED, neither a validation nor a test seed of the metrics (heldout.py); nothing here
selects or tunes anything.
"""

import argparse
import sys
from pathlib import Path

import torch

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from machine import describe  # noqa: E402

from stylediscover.builtin import resolve_builtin  # noqa: E402
from stylediscover.gan_quality import generated, read_all  # noqa: E402
from stylediscover.generators import load_generator  # noqa: E402
from stylediscover.heldout import factor_margins, heldout_seeds, validation_seeds  # noqa: E402
from stylediscover.metrics import MetricsConfig, codes, head_changes, responses_of  # noqa: E402
from stylediscover.predictor import load_predictor  # noqa: E402
from stylediscover.shapes.domain import DOMAIN  # noqa: E402
from stylediscover.shapes.factors import FACTOR_NAMES, SHAPES  # noqa: E402

FIT_SEED, FIT_CODES = 4242, 6000
EVAL_SEED, EVAL_CODES = 777, 1000
CHUNK = 250


def margin_row(responses: torch.Tensor, attributes: list[str]) -> str:
    """responses [A] of one edit → its dominant attribute, response, runner-up and margin as table cells."""
    order = responses.argsort(descending=True)
    top, second = int(order[0]), int(order[1])
    margin = float(factor_margins(responses[None])[0][top])
    return (f"{attributes[top]} | {float(responses[top]):.3f} | {attributes[second]} "
            f"({float(responses[second] / responses[top]):.2f} of it) | {margin:.3f}")


@torch.no_grad()
def changes(predictor, plus: torch.Tensor, minus: torch.Tensor) -> torch.Tensor:
    """Images x+ and x− [N, 3, H, W] → responses [A] (mean signed changes over the N pairs)."""
    parts = [head_changes(predictor, predictor(p), predictor(m)) for p, m in zip(plus.split(CHUNK), minus.split(CHUNK))]
    return responses_of(predictor, torch.cat(parts).mean(dim=0))


@torch.no_grad()
def synthesise(generator, ws: torch.Tensor) -> torch.Tensor:
    return torch.cat([generator.synthesis(part, noise_mode="const") for part in ws.split(CHUNK)])


def generator_edits(generator, predictor, attributes: list[str]) -> list[str]:
    w_fit = generator.mapping(codes(generator.z_dim, FIT_CODES, FIT_SEED), truncation_psi=0.5)[:, 0]
    read = read_all(predictor, synthesise(generator, w_fit[:, None].repeat(1, generator.num_ws, 1)))
    centred = w_fit - w_fit.mean(dim=0)
    design = torch.cat([centred, torch.ones(len(centred), 1)], dim=1)

    def fitted(target: torch.Tensor) -> torch.Tensor:
        return torch.linalg.lstsq(design, target[:, None]).solution[:-1, 0]

    def r2(target: torch.Tensor, direction: torch.Tensor) -> float:
        residual = target - target.mean() - centred @ direction
        return float(1 - residual.var() / target.var())

    scale, x = fitted(read["object_scale"]), fitted(read["object_x"])
    fits = {"object_scale": r2(read["object_scale"], scale), "object_x": r2(read["object_x"], x)}
    shapes = [fitted(read["object_shape"][:, i]) for i in range(read["object_shape"].shape[1])]
    basis, _ = torch.linalg.qr(torch.stack([*shapes, x], dim=1))
    candidates = {"object_scale, least squares": scale, "object_scale, ⊥ shape and object_x": scale - basis @ (
        basis.T @ scale), "object_x, least squares": x}
    w_eval = generator.mapping(codes(generator.z_dim, EVAL_CODES, EVAL_SEED), truncation_psi=0.5)
    rows = []
    for name, direction in candidates.items():
        direction = direction / direction.norm()
        delta = float((centred @ direction).std()) * direction
        responses = changes(predictor, synthesise(generator, w_eval + delta), synthesise(generator, w_eval - delta))
        fit = f" (R² {fits[name.split(',')[0]]:.2f})" if "least squares" in name else ""
        rows.append(f"| generator: W direction of {name}{fit}, ± 1 std, all layers | "
                    f"{margin_row(responses, attributes)} |")
    return rows


def confidence_rows(generator, predictor) -> list[str]:
    sources = {f"generated (ψ {psi})": generated(generator, EVAL_CODES, EVAL_SEED, psi) for psi in (0.5, 1.0)}
    sources["renders"] = DOMAIN.render_seeded(EVAL_CODES, EVAL_SEED, generator.resolution)[0]
    rows = []
    for name, images in sources.items():
        read = read_all(predictor, images)
        confidence = read["object_shape"].max(dim=1).values
        quartile = read["object_scale"].argsort().argsort() * 4 // len(confidence)
        cells = []
        for q in range(4):
            inside = quartile == q
            shares = read["object_shape"][inside].mean(dim=0)
            sure = float((confidence[inside] >= 0.9).float().mean())
            cells.append(f"{float(confidence[inside].mean()):.3f} ({sure:.2f}); "
                         + " / ".join(f"{float(v):.2f}" for v in shares))
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=HERE / "results" / "scale-entanglement.md")
    args = parser.parse_args()
    torch.set_num_threads(2)
    metrics_seed = MetricsConfig().seed
    for seed in (FIT_SEED, EVAL_SEED):
        if seed in validation_seeds(metrics_seed, 20) or seed in heldout_seeds(metrics_seed, 20):
            raise SystemExit(f"seed {seed} is one of the metrics' validation or test seeds")
    generator = load_generator("builtin:shapes").eval()
    predictor = load_predictor(resolve_builtin("builtin:shapes", "predictor")).eval()
    attributes = [head.name for head in predictor.config.heads]
    assert attributes == list(FACTOR_NAMES)
    lines = ["# Object scale and shape in the shipped generator", "",
             f"Machine: {describe()}", "", "Command: `python evaluation/scale_entanglement.py`", "",
             f"Responses and margins as the metrics compute them (see the script's docstring), over {EVAL_CODES} "
             f"codes or renders of seed {EVAL_SEED}; directions fitted on {FIT_CODES} codes of seed {FIT_SEED}.", "",
             "| edit | dominant | response | runner-up | margin |", "|---|---|---|---|---|",
             *generator_edits(generator, predictor, attributes), "",
             "Shape head per quartile of the object-scale reading (smallest objects first): mean largest class "
             "probability (share of images with it ≥ 0.9); mean probability of " + " / ".join(SHAPES) + ".", "",
             "| images | quartile 1 | quartile 2 | quartile 3 | quartile 4 |", "|---|---|---|---|---|",
             *confidence_rows(generator, predictor), ""]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
