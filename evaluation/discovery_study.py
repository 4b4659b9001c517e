"""Which trial settings make the quickstart's navigator robustly discover all 6 shapes factors, and how often: many
short trials (setting variants × training seeds) trained as concurrent `train` processes, each trial's best export
judged on validation codes only, so the test codes behind every reported figure stay unseen.

Usage: python evaluation/discovery_study.py [--variants softmax cumax ...] [--seeds 0 1 2 3 4 5] [--workers 16]
           [--budget-s 330] [--out runs/discovery-study] [--device cuda]
       python evaluation/discovery_study.py --report runs/discovery-study/results.jsonl --md OUT.md
       python evaluation/discovery_study.py --smoke-test          (two variants, 20 steps, on the CPU)

Every trial is the quickstart's base (sweeps/quickstart.yaml: attention softmax, λ_div 0.1, 600 steps with
evaluations at steps 300 and 600 on one validation set of 200 codes, as the quickstart had them when the study ran)
with one variant's changes and a training seed. Its best export (the higher n_discovered + score of the two) is
judged twice, at the export's own calibrated strengths:
  selection view  5 validation sets of 200 codes (heldout.validation_seeds(12345, 5)): what a sweep with
                  eval.validation_sets 5 saw when it selected (the per-set rule; margins are now pooled)
  study view      5 further validation sets of 1000 codes (validation_seeds(12345, 10)[5:]): the study's figure
robust_n_discovered, n_discovered and clean directions are those of heldout.robust_summary and
assessment.clean_on_test. Jobs are started variant by variant within a seed, seed after seed, until --budget-s has
passed; results.jsonl gains one line per trial as it ends.
"""

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from machine import describe  # noqa: E402

VALIDATION_SEED = 12345
VARIANTS: dict[str, dict] = {
    "softmax": {},
    "cumax": {"navigator.attention": "cumax"},
    "tau-0.1": {"loss.temperature": 0.1},
    "tau-0.5": {"loss.temperature": 0.5},
    "linear": {"loss.form": "linear"},
    "prototype": {"loss.variant": "prototype"},
    "k-24": {"navigator.num_directions": 24},
    "smoothing-output": {"navigator.smoothing": "output"},
    "adaptive": {"navigator.direction": "adaptive"},
    "layers-0-2": {"features.layers": [0, 1, 2]},
    "steps-900": {"steps": 900},
}


def trial(name: str, seed: int, out: str, device: str, smoke: bool) -> dict:
    """Trains variant `name` with training seed `seed` under out/<name>-s<seed>, then judges its best export."""
    import torch

    from stylediscover.assessment import clean_on_test, load_assessed
    from stylediscover.heldout import robust_summary, validation_seeds
    from stylediscover.sweep.spec import load_spec, trial_config
    from stylediscover.trainer import train

    base = load_spec(HERE.parent / "sweeps" / "quickstart.yaml").base
    study_base = {"steps": 600, "eval.every": 300, "eval.validation_sets": 1, "navigator.attention": "softmax",
                  "loss.diversity_weight": 0.1, "truncation_psi": 1.0}  # the quickstart's base as the study ran it
    changes = study_base | VARIANTS[name] | {"seed": seed, "device": device, "threads": 1}
    if smoke:
        changes |= {"steps": 20, "eval.every": 10, "eval.metrics.samples": 8}
    cfg = trial_config(base, changes)
    run_dir = Path(out) / f"{name}-s{seed}"
    start = time.perf_counter()
    last = train(cfg, run_dir, progress=False)
    train_s = time.perf_counter() - start
    torch.set_num_threads(1)
    export = run_dir / "best" / "directions.safetensors"
    assessed = load_assessed(export, device=torch.device(device))
    batch = 500 if device.startswith("cuda") else assessed.cfg.batch  # pairs per pass: the same values, faster
    views = {"selection": (validation_seeds(VALIDATION_SEED, 5), 8 if smoke else 200),
             "study": (validation_seeds(VALIDATION_SEED, 10)[5:], 16 if smoke else 1000)}
    result = {"variant": name, "seed": seed, "train_s": train_s, "best_step": last["best_step"],
              "validation": {"n_discovered": last["best_n_discovered"], "score": last["best_score"]}}
    for view, (seeds, samples) in views.items():
        per_set = [assessed.responses(assessed.cfg.model_copy(update={"samples": samples, "seed": s, "batch": batch}))
                   for s in seeds]
        summary = robust_summary(per_set, assessed.attributes)
        heldout = {"attributes": assessed.attributes, "responses": [r.tolist() for r in per_set]}
        result[view] = {"robust_n_discovered": summary["robust_n_discovered"],
                        "n_discovered": summary["n_discovered"]["mean"], "score": summary["score"]["mean"],
                        "robust": [f["attribute"] for f in summary["factors"] if f["robust"]],
                        "clean": clean_on_test(heldout, export)}
    result["eval_s"] = time.perf_counter() - start - train_s
    return result


def run(args: argparse.Namespace) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "results.jsonl"
    done = {(r["variant"], r["seed"]) for r in map(json.loads, results.read_text().splitlines())} \
        if results.exists() else set()
    queue = [(v, s) for s in args.seeds for v in args.variants if (v, s) not in done]
    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
        running = {}
        while queue or running:
            while queue and len(running) < args.workers and time.perf_counter() - start < args.budget_s:
                v, s = queue.pop(0)
                running[pool.submit(trial, v, s, str(args.out), args.device, args.smoke_test)] = (v, s)
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                v, s = running.pop(future)
                try:
                    line = future.result()
                except Exception as exc:  # a failed trial is a result of the study too
                    line = {"variant": v, "seed": s, "error": f"{type(exc).__name__}: {exc}"}
                with open(results, "a") as f:
                    f.write(json.dumps(line) + "\n")
                print(f"{time.perf_counter() - start:6.0f} s  {v} s{s}: "
                      f"{line.get('study', {}).get('robust_n_discovered', line.get('error'))}", flush=True)
    print(f"{len(queue)} jobs not started (budget)", flush=True)
    (args.out / "machine.txt").write_text(describe() + "\n")
    (args.out / "command.txt").write_text("python evaluation/discovery_study.py " + " ".join(sys.argv[1:]) + "\n")


def report(path: Path, md: Path) -> None:
    """The study's table: per variant, trials, how many are robust 6 of 6 in each view, means of the figures."""
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    machine, command = ((path.parent / f).read_text().strip() for f in ("machine.txt", "command.txt"))
    rows = ["| variant | changes | trials | failed | robust 6 of 6 (study) | mean robust (study) | mean clean (study) "
            "| mean n_discovered (study) | robust 6 of 6 (selection view) | both views agree |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for name in VARIANTS:
        mine = [r for r in lines if r["variant"] == name]
        if not mine:
            continue
        ok = [r for r in mine if "error" not in r]
        if not ok:
            rows.append(f"| {name} | {_changes(name)} | {len(mine)} | {len(mine)} | – | – | – | – | – | – |")
            continue
        study = [r["study"] for r in ok]
        sel = [r["selection"] for r in ok]
        agree = sum((a["robust_n_discovered"] == 6) == (b["robust_n_discovered"] == 6) for a, b in zip(study, sel))
        rows.append(f"| {name} | {_changes(name)} | {len(mine)} | {len(mine) - len(ok)} | "
                    f"{sum(s['robust_n_discovered'] == 6 for s in study)} of {len(ok)} | "
                    f"{statistics.fmean(s['robust_n_discovered'] for s in study):.2f} | "
                    f"{statistics.fmean(s['clean'] for s in study):.1f} | "
                    f"{statistics.fmean(s['n_discovered'] for s in study):.2f} | "
                    f"{sum(s['robust_n_discovered'] == 6 for s in sel)} of {len(ok)} | {agree} of {len(ok)} |")
    plot(lines, md.with_suffix(".png"))
    md.write_text("\n".join([
        "# Discovery study: which trial settings discover all 6 shapes factors robustly", "",
        f"Machine: {machine}.", "", f"Command: `{command}`", "",
        "Each trial: the quickstart's base (`sweeps/quickstart.yaml`, attention softmax, λ_div 0.1, evaluations at "
        "steps 300 and 600 on 200 validation codes) with one variant's changes, one training seed, trained on the GPU "
        "as one of 16 concurrent `train` processes; its best export judged on validation codes only (no test codes): "
        "the *study view* is 5 sets of 1000 codes, the *selection view* 5 sets of 200 (what a sweep with "
        "`eval.validation_sets: 5` selects on). Robust: margin ≥ 0.15 on ≥ 4 of 5 sets (heldout.py).", "",
        *rows, "", f"![robust 6 of 6 per variant]({md.with_suffix('.png').name})", ""]) + "\n")


def plot(lines: list[dict], path: Path) -> None:
    """Per variant, each trial's robustly discovered factors in the study view (dots, jittered), and the share of
    trials robust 6 of 6 (bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in VARIANTS if any(r["variant"] == n and "error" not in r for r in lines)]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.45 * len(names) + 1.5), sharey=True)
    for i, name in enumerate(names):
        robust = [r["study"]["robust_n_discovered"] for r in lines if r["variant"] == name and "error" not in r]
        left.scatter(robust, [i + 0.08 * (j - len(robust) / 2) for j in range(len(robust))], color="tab:blue", s=18)
        share = sum(x == 6 for x in robust) / len(robust)
        right.barh(i, share, color="tab:green")
        right.text(share + 0.02, i, f"{sum(x == 6 for x in robust)} of {len(robust)}", va="center", fontsize=8)
    left.set_yticks(range(len(names)), names)
    left.set_xticks(range(7))
    left.invert_yaxis()
    left.set_xlabel("factors robustly discovered (study view), per trial")
    right.set_xlabel("share of trials robust 6 of 6")
    right.set_xlim(0, 1.15)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _changes(name: str) -> str:
    return ", ".join(f"`{k}={v}`" for k, v in VARIANTS[name].items()) or "(base)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--budget-s", type=float, default=330.0, help="no job starts after this many seconds")
    parser.add_argument("--out", type=Path, default=Path("runs/discovery-study"))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--smoke-test", action="store_true", help="two variants, one seed, 20 steps, on the CPU")
    parser.add_argument("--report", type=Path, help="results.jsonl to tabulate instead of running")
    parser.add_argument("--md", type=Path, default=HERE / "results" / "discovery-study.md")
    args = parser.parse_args()
    if args.report:
        report(args.report, args.md)
        return
    if args.smoke_test:
        args.variants, args.seeds, args.workers, args.device = ["softmax", "prototype"], [0], 2, "cpu"
    run(args)


if __name__ == "__main__":
    main()
