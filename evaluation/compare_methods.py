"""ContraFeat against GANSpace and SeFa on the embedded domain: mean ± std of both metrics over seeds.

Usage: python evaluation/compare_methods.py [--seeds 0 1 2] [--steps 600] [--out evaluation/results/comparison.md]
Methods (all K directions, evaluated with calibrated per-direction strengths so that every method's
edits change the discriminator features equally; the strengths' median is eval.metrics.scale):
  contrafeat-binary      configs/shapes-binary.yaml
  contrafeat-prototype   configs/shapes-prototype.yaml
  contrafeat-infonce-map configs/shapes-binary.yaml + InfoNCE, τ 0.2, features.input_map
  contrafeat-infonce-map-k16  the same with K = 16 (the quickstart's base)
  ganspace-k16, sefa-k16 the baselines with K = 16 (the others use K = 12)
  ganspace               top-K PCA directions of W on all layers (no training)
  ganspace+attention     the same directions, fixed, with a learned softmax attention (binary loss)
  sefa                   top-K eigenvectors of the stacked style-affine weights on all layers (no training)
  sefa+attention         the same, fixed, with a learned softmax attention (binary loss)
Trained methods are evaluated at steps 200, 400 and 600: the table gives the last evaluation and, apart,
the best one by objective (what a sweep selects). Runs go to runs/compare/<method>-seed<k>/ (resumable);
the table to --out.
"""

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import yaml

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from machine import describe  # noqa: E402

from stylediscover.config import TrainConfig  # noqa: E402
from stylediscover.options import set_dotted  # noqa: E402
from stylediscover.shapes.factors import FACTOR_NAMES  # noqa: E402
from stylediscover.trainer import Trial, evaluate, train  # noqa: E402

CONFIGS = HERE.parent / "configs"

METHODS = {
    "contrafeat-binary": ("shapes-binary.yaml", {}),
    "contrafeat-prototype": ("shapes-prototype.yaml", {}),
    "contrafeat-infonce-map": ("shapes-binary.yaml", {"loss.form": "infonce", "loss.temperature": 0.2,
                                                      "features.input_map": True}),
    "contrafeat-infonce-map-k16": ("shapes-binary.yaml", {"loss.form": "infonce", "loss.temperature": 0.2,
                                                          "features.input_map": True, "navigator.num_directions": 16}),
    "ganspace": ("shapes-binary.yaml", {"navigator.direction": "fixed", "navigator.attention": "none",
                                        "fixed_directions": "ganspace"}),
    "ganspace+attention": ("shapes-binary.yaml", {"navigator.direction": "fixed", "fixed_directions": "ganspace"}),
    "sefa": ("shapes-binary.yaml", {"navigator.direction": "fixed", "navigator.attention": "none",
                                    "fixed_directions": "sefa"}),
    "sefa+attention": ("shapes-binary.yaml", {"navigator.direction": "fixed", "fixed_directions": "sefa"}),
    "ganspace-k16": ("shapes-binary.yaml", {"navigator.direction": "fixed", "navigator.attention": "none",
                                            "fixed_directions": "ganspace", "navigator.num_directions": 16}),
    "sefa-k16": ("shapes-binary.yaml", {"navigator.direction": "fixed", "navigator.attention": "none",
                                        "fixed_directions": "sefa", "navigator.num_directions": 16}),
}


def method_config(method: str, seed: int, steps: int | None) -> TrainConfig:
    file, changes = METHODS[method]
    data = yaml.safe_load((CONFIGS / file).read_text())
    for key, value in ({"seed": seed, "eval.metrics.calibrate": True} | changes).items():
        data = set_dotted(data, key, value)
    if steps is not None:
        data = set_dotted(set_dotted(data, "steps", steps), "eval.every", steps)
    return TrainConfig.model_validate(data)


def run(method: str, seed: int, steps: int | None, root: Path) -> dict:
    cfg = method_config(method, seed, steps)
    run_dir = root / f"{method}-seed{seed}"
    done = run_dir / "final.json"
    if done.exists():
        return json.loads(done.read_text())
    start = time.perf_counter()
    if cfg.navigator.attention == "none" and cfg.navigator.direction == "fixed":
        run_dir.mkdir(parents=True, exist_ok=True)
        metrics = evaluate(Trial(cfg), run_dir, 0)
    else:
        metrics = train(cfg, run_dir)
    metrics |= {"method": method, "seed": seed, "wall_s": round(time.perf_counter() - start, 1)}
    done.write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def allocation(root: Path, method: str, seeds: list[int]) -> Counter:
    """How many directions have each attribute as their strongest response, summed over seeds."""
    counts: Counter = Counter()
    for seed in seeds:
        latest = json.loads(sorted((root / f"{method}-seed{seed}").glob("responses-*.json"))[-1].read_text())
        names = latest["attributes"]
        counts.update(names[max(range(len(row)), key=row.__getitem__)] for row in latest["responses"])
    return counts


def summary_row(method: str, results: list[dict], prefix: str) -> str:
    """| method | score mean ± std | n_discovered mean ± std | n_discovered per seed | of the `prefix` metrics."""
    scores = [r[prefix + "score"] for r in results]
    found = [r[prefix + "n_discovered"] for r in results]
    spread = lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0  # noqa: E731
    return (f"| {method} | {statistics.mean(scores):.3f} ± {spread(scores):.3f} | "
            f"{statistics.mean(found):.2f} ± {spread(found):.2f} | {', '.join(map(str, found))} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=None, help="override the configs' training steps")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--runs", type=Path, default=Path("runs/compare"))
    parser.add_argument("--out", type=Path, default=HERE / "results" / "comparison.md")
    args = parser.parse_args()
    rows, best_rows, allocations = [], [], []
    for method in args.methods:
        results = [run(method, seed, args.steps, args.runs) for seed in args.seeds]
        rows.append(summary_row(method, results, ""))
        print(rows[-1], flush=True)
        if "best_step" in results[0]:
            steps = ", ".join(str(r["best_step"]) for r in results)
            best_rows.append(summary_row(method, results, "best_") + f" {steps} |")
        counts = allocation(args.runs, method, args.seeds)
        allocations.append(f"| {method} | " + " | ".join(str(counts[name]) for name in FACTOR_NAMES) + " |")
    command = " ".join(["python evaluation/compare_methods.py", "--seeds", *map(str, args.seeds)]
                       + (["--steps", str(args.steps)] if args.steps else []))
    table = "\n".join([
        "# ContraFeat vs GANSpace and SeFa on the embedded shapes domain", "",
        f"Machine: {describe()}", "", f"Command: `{command}`", "",
        f"Seeds {args.seeds}; K = 12 directions (16 for *-k16), 6 factors; strengths calibrated per direction to equal "
        "discriminator-feature change (median = eval.metrics.scale); 200 codes per direction, ψ = 0.5.", "",
        "| method | score (mean ± std) | n_discovered of 6 (mean ± std) | n_discovered per seed |",
        "|---|---|---|---|", *rows, "",
        "The best evaluation of each trained run (by objective = n_discovered + score, on the same codes):", "",
        "| method | score (mean ± std) | n_discovered of 6 (mean ± std) | n_discovered per seed | step per seed |",
        "|---|---|---|---|---|", *best_rows, "",
        f"Directions per dominant attribute, summed over the {len(args.seeds)} seeds "
        f"({len(args.seeds)} × K directions per method):", "",
        "| method | " + " | ".join(FACTOR_NAMES) + " |", "|---|" + "---|" * len(FACTOR_NAMES), *allocations, ""])
    args.out.write_text(table)
    print(table)


if __name__ == "__main__":
    main()
