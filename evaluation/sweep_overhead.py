"""Ray + MLflow overhead of a finished sweep: its span against the summed compute of its trials.

Usage: python evaluation/sweep_overhead.py runs/sweeps/<name> [--concurrency 2]
Reads every trial's result.json (Ray Tune): compute = Σ time_total_s of each trial's last result;
span = last result's timestamp − first trial's start (its first timestamp minus its first time_this_iter_s,
so it includes the driver's trial start-up but not Ray's own start-up); ideal = compute / concurrency.
"""

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    trials = []
    for path in sorted(args.sweep_dir.glob("run_trial_*/result.json")):
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        trials.append((lines[0]["timestamp"] - lines[0]["time_this_iter_s"], lines[-1]["timestamp"],
                       lines[-1]["time_total_s"]))
    compute = sum(t[2] for t in trials)
    span = max(t[1] for t in trials) - min(t[0] for t in trials)
    ideal = compute / args.concurrency
    print(f"trials {len(trials)}, summed compute {compute:.0f} s, ideal with {args.concurrency} slots {ideal:.0f} s, "
          f"span {span:.0f} s, overhead {span - ideal:.0f} s ({100 * (span - ideal) / ideal:.0f} %)")


if __name__ == "__main__":
    main()
