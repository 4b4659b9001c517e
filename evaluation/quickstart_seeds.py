"""The quickstart's robust-discovery table over search seeds: `make quickstart`'s sweep run once per Optuna seed,
each selected export then tested on 5 held-out sets of 1000 codes.

Usage: python evaluation/quickstart_seeds.py [--seeds 0 1 2] [--storage runs/quickstart-seeds]
       [--out evaluation/results/quickstart-seeds.md] [--set KEY=VALUE ...]   (--set: passed on to each sweep run)
Each sweep is `stylediscover sweep run sweeps/quickstart.yaml --set name=quickstart-search<S> --set search.seed=<S>`
(a sweep already finished under --storage is kept, and its wall time read back from the folder's timing.json), timed
from start to exit; the held-out test is `stylediscover evaluate <sweep>/best/directions.safetensors --test-sets 5`.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from machine import describe  # noqa: E402

from stylediscover.assessment import assess_heldout, clean_on_test  # noqa: E402

CLI = Path(sys.executable).parent / "stylediscover"


def sweep(seed: int, storage: Path, changes: list[str]) -> tuple[Path, float]:
    """Runs (or finds) the quickstart sweep of Optuna seed `seed`; its folder and wall time in seconds."""
    folder = storage / f"quickstart-search{seed}"
    timing = folder / "timing.json"
    if not timing.exists():
        start = time.perf_counter()
        subprocess.run([str(CLI), "sweep", "run", str(HERE.parent / "sweeps" / "quickstart.yaml"), "--set",
                        f"name=quickstart-search{seed}", "--set", f"search.seed={seed}", "--set",
                        f"storage_path={storage}", *(arg for c in changes for arg in ("--set", c))], check=True)
        timing.write_text(json.dumps({"wall_s": time.perf_counter() - start}) + "\n")
    return folder, json.loads(timing.read_text())["wall_s"]


def test(folder: Path, sets: int, samples: int) -> dict:
    """The held-out test of the sweep's selected export (kept as heldout-<samples>.json in the sweep folder), with
    the number of its directions that are clean on the test codes (responses averaged over the sets)."""
    kept = folder / f"heldout-{samples}.json"
    if not kept.exists():
        export = folder / "best" / "directions.safetensors"
        result = assess_heldout(export, sets, samples, progress=True)
        kept.write_text(json.dumps(result | {"clean": clean_on_test(result, export)}) + "\n")
    return json.loads(kept.read_text())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--storage", type=Path, default=Path("runs/quickstart-seeds"))
    parser.add_argument("--sets", type=int, default=5)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "quickstart-seeds.md")
    parser.add_argument("--set", dest="changes", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    storage = args.storage.resolve()
    rows, attributes = [], None
    for seed in args.seeds:
        folder, wall = sweep(seed, storage, args.changes)
        summary = json.loads((folder / "summary.json").read_text())
        result = test(folder, args.sets, args.samples)
        attributes = [f["attribute"] for f in result["factors"]]
        found, scores = result["n_discovered"], result["score"]
        robust = (f", robust {summary['robust_n_discovered']}, weakest margin {summary['weakest_margin']:.3f}"
                  if "robust_n_discovered" in summary else "")
        sweep_test = f"{summary['heldout']['sets']} × {summary['heldout']['samples']}"
        rows.append(f"| {seed} | {wall / 60:.1f} ({sweep_test}) | {summary['trial_id']} ({summary['n_discovered']}, "
                    f"{summary['score']:.3f}{robust}) | {found['mean']:.2f} ± {found['std']:.2f} | "
                    f"{scores['mean']:.3f} ± {scores['std']:.3f} | {result['robust_n_discovered']} | "
                    f"{result['clean']} of {len(result['responses'][0])} | "
                    + " | ".join(f"{f['sets_with_margin']} of {result['sets']}" for f in result["factors"]) + " |")
    lines = [
        "# The quickstart over search seeds, on held-out test codes", "",
        f"Machine: {describe()}.", "",
        f"Command: `python evaluation/quickstart_seeds.py --seeds {' '.join(map(str, args.seeds))}"
        + "".join(f" --set {c}" for c in args.changes) + "`", "",
        "Per Optuna search seed: the sweep's wall time (start to exit, its own held-out test of sets × codes "
        "included), the trial it selected on validation codes (n_discovered and score on the first validation set; "
        "with several, robust factors and the weakest margin over them), and that export on "
        f"{args.sets} test sets of {args.samples} codes: n_discovered and score as mean ± std over the sets, the "
        "factors robustly discovered (margin ≥ 0.15 on ≥ 4 of 5 sets), the clean directions (dominant response at "
        "least twice the runner-up's, responses averaged over the sets), and per factor the sets won with the margin.",
        "", "| search seed | min | selected (validation) | test n_discovered | test score | robust of 6 | clean | "
        + " | ".join(attributes) + " |", "|---|" + "---|" * (6 + len(attributes)), *rows, ""]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
