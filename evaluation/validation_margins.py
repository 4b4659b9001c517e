"""Per factor, the margins a sweep's selection sees on its validation sets against those of test sets of 1000 codes.

Usage: python evaluation/validation_margins.py EXPORT [EXPORT ...] [--test-sets 2]
       [--out evaluation/results/validation-margins.md]
For each export (directions.safetensors): the margin of each factor's winning direction (heldout.factor_margins) on
each of the manifest's validation sets (eval.validation_sets × metrics.samples codes, seeds heldout.validation_seeds),
on those codes pooled (metrics.mean_changes of the sets averaged, what an evaluation now selects on), and on the
first --test-sets held-out test sets of 1000 codes; the rows, with the machine, go to --out.
"""

import argparse
import sys
from pathlib import Path

import torch

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from machine import describe  # noqa: E402

from stylediscover.assessment import load_assessed  # noqa: E402
from stylediscover.heldout import TEST_SAMPLES, factor_margins, heldout_seeds, validation_seeds  # noqa: E402
from stylediscover.metrics import responses_of  # noqa: E402


def margins_of(export: Path, test_sets: int) -> tuple[list[str], int, dict[str, torch.Tensor]]:
    """Attribute names, codes per validation set, and the factor margins [sets, A] (NaN: not discovered) per view
    of one export (strengths as its manifest records them)."""
    assessed = load_assessed(export, recorded_strengths=True)
    cfg = assessed.cfg
    sets = assessed.directions.manifest["config"]["eval"].get("validation_sets", 1)

    def changes(seed: int, samples: int) -> torch.Tensor:
        return assessed.mean_changes(cfg.model_copy(update={"seed": seed, "samples": samples}))

    def margins(per_set: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack([factor_margins(responses_of(assessed.predictor, c))[0] for c in per_set])

    validation = [changes(seed, cfg.samples) for seed in validation_seeds(cfg.seed, sets)]
    test = [changes(seed, TEST_SAMPLES) for seed in heldout_seeds(cfg.seed, test_sets)]
    views = {"validation": margins(validation), "pooled": margins([torch.stack(validation).mean(dim=0)]),
             "test": margins(test)}
    return assessed.attributes, cfg.samples, views


def cell(values: torch.Tensor) -> str:
    return ", ".join("–" if v.isnan() else f"{v:.3f}" for v in values)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("exports", type=Path, nargs="+")
    parser.add_argument("--test-sets", type=int, default=2)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "validation-margins.md")
    args = parser.parse_args()
    rows = []
    for export in args.exports:
        attributes, samples, views = margins_of(export, args.test_sets)
        sets = len(views["validation"])
        for j, name in enumerate(attributes):
            rows.append(f"| {export.parent.name} | {name} | {cell(views['validation'][:, j])} | "
                        f"{cell(views['pooled'][:, j])} | {cell(views['test'][:, j])} |")
    header = [f"| export | factor | margin per validation set ({sets} × {samples} codes) | validation codes pooled "
              f"({sets * samples}) | margin per test set ({args.test_sets} × {TEST_SAMPLES}) |",
              "|---|---|---|---|---|"]
    command = "python evaluation/validation_margins.py " + " ".join(str(e) for e in args.exports)
    intro = ("Per factor, the margin of its winning direction over that direction's runner-up attribute "
             "(heldout.factor_margins; – where the factor is not discovered) on each validation set the export's "
             "evaluation saw, on those codes pooled (what a trial's evaluation selects on), and on held-out test "
             "sets of 1000 codes (what a reported figure is measured on). Robust on test: ≥ 0.15 on 4 of 5 sets.")
    text = ["# Validation margins against test margins", "", intro, "", f"Machine: {describe()}.", "",
            f"Command: `{command} --test-sets {args.test_sets}`", "", *header, *rows]
    args.out.write_text("\n".join(text) + "\n")
    print("\n".join(text))


if __name__ == "__main__":
    main()
