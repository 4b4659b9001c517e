"""Seconds of the metrics' response pass (metrics.attribute_responses) per 1000 codes × 16 directions, on the
committed quickstart export with builtin:shapes, at each direction's recorded strength.

Usage: python evaluation/bench_evaluation.py [--samples 1000] [--seed 2] [--repeats 2]
Writes the responses of the first repeat to evaluation/results/evaluation_reference.json (--write-reference)
or checks them against that file (the default), and prints the timing line.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from machine import describe  # noqa: E402

from stylediscover.builtin import resolve_builtin  # noqa: E402
from stylediscover.directions import load_directions  # noqa: E402
from stylediscover.generators import load_generator  # noqa: E402
from stylediscover.metrics import MetricsConfig, attribute_responses  # noqa: E402
from stylediscover.precision import exact  # noqa: E402
from stylediscover.predictor import load_predictor  # noqa: E402

EXPORT = HERE / "results" / "quickstart-best" / "directions.safetensors"
REFERENCE = HERE / "results" / "evaluation_reference.json"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--write-reference", action="store_true")
    args = parser.parse_args()
    generator = load_generator("builtin:shapes")
    directions = load_directions(EXPORT, generator)
    predictor = load_predictor(resolve_builtin("builtin:shapes", "predictor"))
    k_dirs = len(directions.deltas)
    scales = torch.tensor([directions.strength(k) for k in range(k_dirs)])
    cfg = MetricsConfig.model_validate(directions.manifest["config"]["eval"]["metrics"]
                                       | {"samples": args.samples, "seed": args.seed})
    times, responses = [], None
    for _ in range(args.repeats):
        start = time.perf_counter()
        with exact():
            out = attribute_responses(generator, directions.delta, k_dirs, predictor, cfg, scales)
        times.append(time.perf_counter() - start)
        responses = out if responses is None else responses
    per_unit = min(times) * (1000 / args.samples) * (16 / k_dirs)
    print(f"machine: {describe()}")
    print(f"s per 1000 codes x 16 directions: {per_unit:.2f} (runs: {', '.join(f'{t:.2f}' for t in times)} s for "
          f"{args.samples} codes x {k_dirs} directions)")
    if args.write_reference:
        REFERENCE.write_text(json.dumps({"samples": args.samples, "seed": args.seed,
                                         "responses": responses.tolist()}) + "\n")
    elif REFERENCE.exists():
        ref = json.loads(REFERENCE.read_text())
        if (ref["samples"], ref["seed"]) == (args.samples, args.seed):
            diff = (responses - torch.tensor(ref["responses"])).abs().max().item()
            print(f"largest difference from the reference responses: {diff:.2e}")


if __name__ == "__main__":
    main()
