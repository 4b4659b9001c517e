"""How the shipped predictor reads a pure change of one factor on renders, in the metrics' units.

Usage: python evaluation/render_responses.py [--n 200] [--seed 5]
For n seeded renders, one factor is set to `high` in x+ and `low` in x− (all else equal) and
metrics.head_responses reads the pair: a clean predictor answers on that factor alone. Used in
evaluation/results/comparison.md to tell generator entanglement from predictor confusion.
"""

import argparse

import torch

from stylediscover.builtin import resolve_builtin
from stylediscover.metrics import head_responses
from stylediscover.predictor import load_predictor
from stylediscover.shapes.domain import DOMAIN as SHAPES
from stylediscover.shapes.factors import FACTOR_NAMES
from stylediscover.shapes.render import render

CHANGES = {"object_scale": (0.3, 0.45), "object_x": (0.35, 0.65)}


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    predictor = load_predictor(resolve_builtin("builtin:shapes", "predictor"))
    _, factors = SHAPES.render_seeded(args.n, args.seed)
    print("change".ljust(26) + "".join(f"{n[:12]:>13}" for n in FACTOR_NAMES))
    for name, (low, high) in CHANGES.items():
        plus, minus = factors.clone(), factors.clone()
        plus[:, FACTOR_NAMES.index(name)], minus[:, FACTOR_NAMES.index(name)] = high, low
        response = head_responses(predictor, predictor(render(plus)), predictor(render(minus)))
        print(f"{name} {low} → {high}".ljust(26) + "".join(f"{float(r):13.3f}" for r in response))


if __name__ == "__main__":
    main()
