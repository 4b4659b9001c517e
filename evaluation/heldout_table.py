"""The robust-discovery table of an export on held-out test codes, and the code-set noise that sets ROBUST_MARGIN.

Usage: python evaluation/heldout_table.py [--export evaluation/results/quickstart-best/directions.safetensors]
       [--sets 5] [--samples 1000] [--out evaluation/results/quickstart-heldout.md]
Writes the table to --out and the whole evaluation (what a sweep writes to best/heldout.json) beside it as .json.
The table is what `stylediscover evaluate EXPORT --test-sets 5` prints. The noise: for every direction and attribute,
the standard deviation of its normalised response ã_kj between the test sets, and for every attribute won on every
set, the standard deviation of its winning margin.
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from machine import describe  # noqa: E402

from stylediscover.assessment import assess_heldout  # noqa: E402
from stylediscover.heldout import robust_table  # noqa: E402
from stylediscover.metrics import normalised  # noqa: E402


def noise(result: dict) -> tuple[torch.Tensor, list[tuple[str, float]]]:
    """Standard deviations between sets: of ã_kj [K, A], and of the margin of each attribute won on every set."""
    per_set = torch.stack([normalised(torch.tensor(r)) for r in result["responses"]])
    margins = [(f["attribute"], statistics.stdev(f["margins"])) for f in result["factors"]
               if None not in f["margins"]]
    return per_set.std(dim=0), margins


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--export", type=Path, default=HERE / "results" / "quickstart-best" / "directions.safetensors")
    parser.add_argument("--sets", type=int, default=5)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "quickstart-heldout.md")
    args = parser.parse_args()
    start = time.perf_counter()
    result = assess_heldout(args.export, args.sets, args.samples, progress=True)
    wall = time.perf_counter() - start
    spread, margins = noise(result)
    finite = spread[~spread.isnan()]
    widest = max(margins, key=lambda m: m[1]) if margins else ("none", float("nan"))
    export = args.export.resolve().relative_to(HERE.parent.resolve())
    lines = [
        f"# Held-out robust discovery: `{export}`", "",
        f"Machine: {describe()}; {wall:.0f} s in all.", "",
        f"Command: `python evaluation/heldout_table.py --export {export} --sets {args.sets} --samples {args.samples}` "
        f"(the table alone: `stylediscover evaluate {export} --test-sets {args.sets}`)", "",
        f"{result['sets']} test sets of {result['samples']} codes, seeds {', '.join(map(str, result['seeds']))}, "
        f"derived from the validation seed {result['validation_seed']} (the codes that chose this export); strengths "
        "of the export's validation calibration. Margin: 1 − the second-largest normalised response of the "
        "attribute's winning direction (0 for a tie); – where no direction wins the attribute.", "",
        *robust_table(result), "",
        "## The noise between code sets (what ROBUST_MARGIN must exceed)", "",
        f"Standard deviation between the {result['sets']} sets of a direction's normalised response ã_kj, over all "
        f"{finite.numel()} direction × attribute entries: median {finite.median():.4f}, 90th percentile "
        f"{finite.quantile(0.9):.4f}, largest {finite.max():.4f}.", "",
        "Standard deviation of the winning margin of each attribute won on every set: "
        + ", ".join(f"{name} {s:.4f}" for name, s in margins)
        + f"; largest {widest[1]:.4f} ({widest[0]}).", "",
        f"ROBUST_MARGIN = {result['robust_margin']} is {result['robust_margin'] / widest[1]:.1f}× the largest "
        "margin spread.", ""]
    args.out.write_text("\n".join(lines))
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
