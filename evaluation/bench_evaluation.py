"""Seconds of the metrics' response pass (metrics.attribute_responses) per 1000 codes × 16 directions, on the
committed quickstart export with builtin:shapes, at each direction's recorded strength.

Usage: python evaluation/bench_evaluation.py [--samples 1000] [--seed 2] [--repeats 2] [--before COMMIT]
       python evaluation/bench_evaluation.py --roofline
Checks the responses against evaluation/results/evaluation_reference.json (written by the code before the
speed-up, f556144, with --write-reference). --before COMMIT also times that commit's attribute_responses (its
stylediscover/metrics.py, read with git show), alternating with the current one, so both meet the same load.
--roofline prints the pass's multiply-adds per image (torch's FLOP counter over synthesis and predictor) and the
machine's float32 matrix-product rate on one thread, hence the fewest seconds per 1000 codes x 16 directions that
float32 arithmetic allows on all cores.
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
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


def responses_of_commit(commit: str):
    """attribute_responses of stylediscover/metrics.py at `commit`, loaded as a module of its own."""
    source = subprocess.run(["git", "show", f"{commit}:stylediscover/metrics.py"], cwd=HERE.parent, check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / f"metrics_{commit}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.attribute_responses


def roofline(generator, predictor) -> None:
    """Multiply-adds per image of the response pass, the one-thread float32 GEMM rate, and the time floor."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.set_num_threads(1)
    ws = generator.mapping(torch.randn(1, generator.z_dim), truncation_psi=0.5)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        predictor(generator.synthesis(ws))
    macs = counter.get_total_flops() / 2
    rates = []
    for n in (512, 1024, 2048):
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b
        start = time.perf_counter()
        for _ in range(5):
            a @ b
        rates.append(5 * n**3 / (time.perf_counter() - start))
    cores = os.cpu_count() or 1
    floor = 32000 * macs / max(rates) / cores
    print(f"machine: {describe()}")
    print(f"multiply-adds per image (synthesis + predictor): {macs / 1e6:.1f} M; float32 GEMM, one thread: "
          f"{', '.join(f'{r / 1e9:.1f}' for r in rates)} G multiply-adds/s (n = 512, 1024, 2048)")
    print(f"floor at the best GEMM rate on {cores} cores: {floor:.2f} s per 1000 codes x 16 directions "
          f"(32 000 images)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--before", default=None, help="a commit whose attribute_responses is timed too")
    parser.add_argument("--write-reference", action="store_true")
    parser.add_argument("--roofline", action="store_true", help="the time floor of float32 arithmetic instead")
    args = parser.parse_args()
    generator = load_generator("builtin:shapes")
    predictor = load_predictor(resolve_builtin("builtin:shapes", "predictor"))
    if args.roofline:
        return roofline(generator, predictor)
    directions = load_directions(EXPORT, generator)
    k_dirs = len(directions.deltas)
    scales = directions.strengths()
    cfg = MetricsConfig.model_validate(directions.manifest["config"]["eval"]["metrics"]
                                       | {"samples": args.samples, "seed": args.seed})
    paths = {"now": attribute_responses} | ({args.before: responses_of_commit(args.before)} if args.before else {})
    times: dict[str, list[float]] = {name: [] for name in paths}
    results: dict[str, torch.Tensor] = {}
    for _ in range(args.repeats):
        for name, fn in paths.items():
            start = time.perf_counter()
            with exact():
                results[name] = fn(generator, directions.delta, k_dirs, predictor, cfg, scales)
            times[name].append(time.perf_counter() - start)
    print(f"machine: {describe()}")
    with open("/proc/loadavg") as f:
        print(f"load average at the end: {f.read().split()[:3]}")
    for name, runs in times.items():
        per_unit = min(runs) * (1000 / args.samples) * (16 / k_dirs)
        print(f"{name}: {per_unit:.2f} s per 1000 codes x 16 directions (runs: {', '.join(f'{t:.2f}' for t in runs)} "
              f"s for {args.samples} codes x {k_dirs} directions)")
    if args.before:
        print(f"speed-up: {min(times[args.before]) / min(times['now']):.2f}x; largest difference between the two: "
              f"{(results['now'] - results[args.before]).abs().max().item():.2e}")
    if args.write_reference:
        REFERENCE.write_text(json.dumps({"samples": args.samples, "seed": args.seed,
                                         "responses": results["now"].tolist()}) + "\n")
    elif REFERENCE.exists():
        ref = json.loads(REFERENCE.read_text())
        if (ref["samples"], ref["seed"]) == (args.samples, args.seed):
            diff = (results["now"] - torch.tensor(ref["responses"])).abs().max().item()
            print(f"largest difference from the reference responses: {diff:.2e}")


if __name__ == "__main__":
    main()
