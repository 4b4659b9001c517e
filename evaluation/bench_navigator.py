"""Navigator training speed: seconds per step and peak memory, binary and prototype variants.

Usage: python evaluation/bench_navigator.py [--steps 5] [--threads 2] [--setting reference|shapes|faces|all]
                                           [--micro-batch 64 0]
Settings:
  reference  the paper-like reference of issue 4, for comparison with the authors' code: a random-init
             64 px generator (z = w = 512, channel base 8192, max 256, 8 mapping layers, fp32), K = 30,
             `pca` directions n = 100, `softmax` attention with Gaussian smoothing 3, λ_div 0.1, 2
             style-mixing groups, batch 8, AlexNet slices with random weights.
  shapes     the embedded domain's shipped generator with its discriminator features (configs/shapes-binary.yaml).
  faces      the faces domain's shipped 64 px generator with its discriminator features and their 64 px input
             map, K = 20 (configs/faces-binary.yaml).
Each setting runs once per micro-batch size (images per synthesis + feature pass; 64 = the whole step in one
pass, as before micro-batching; 0 = the automatic default). Each configuration runs in a fresh subprocess so
peak RSS is its own. Writes evaluation/results/navigator_speed.md.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
AUTHORS = {"binary": 3.2, "prototype": 2.7}


def reference_config(variant: str, root: Path, threads: int, micro_batch: int, **changes):
    """The `reference` setting's trial config (a random-init generator saved under `root`); `changes` are
    TrainConfig fields on top."""
    import torch

    from stylediscover.config import TrainConfig
    from stylediscover.generators import Generator, GeneratorConfig, save_native

    torch.manual_seed(0)
    g = Generator(GeneratorConfig.from_channel_base(64, 8192, 256, z_dim=512, w_dim=512, mapping_layers=8))
    save_native(g, root / "g.safetensors")
    return TrainConfig(generator=str(root / "g.safetensors"), features={"name": "alexnet", "weights": "random"},
                       navigator={"num_directions": 30, "direction": "pca", "pca_dim": 100, "attention": "softmax",
                                  "smooth_kernel": 3},
                       loss={"variant": variant, "diversity_weight": 0.1}, batch=8, pca_samples=20_000,
                       threads=threads, micro_batch=micro_batch, **changes)


def build(cfg):
    """The trial of `cfg` and a function running one optimiser step of it (returns the loss)."""
    import torch

    from stylediscover.trainer import Trial, training_loss

    trial = Trial(cfg)
    opt = torch.optim.Adam(trial.parameters(), lr=cfg.lr, betas=cfg.betas)

    def step():
        loss = training_loss(trial)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    return trial, step


def measure(setting: str, variant: str, steps: int, threads: int, micro_batch: int) -> dict:
    """Runs in a subprocess: builds the trial, times `steps` optimiser steps after one warm-up."""
    import torch

    from stylediscover.config import TrainConfig

    torch.set_num_threads(threads)
    if setting == "reference":
        cfg = reference_config(variant, Path(tempfile.mkdtemp()), threads, micro_batch)
    else:
        import yaml

        config = yaml.safe_load((HERE.parent / "configs" / f"{setting}-binary.yaml").read_text())
        cfg = TrainConfig.model_validate(config | {"loss": {"variant": variant, "diversity_weight": 0.1},
                                                   "threads": threads, "micro_batch": micro_batch})
    _, step = build(cfg)
    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - start) / steps
    return {"setting": setting, "variant": variant, "batch": cfg.batch, "micro_batch": micro_batch,
            "s_per_step": seconds, "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--setting", choices=["reference", "shapes", "faces", "all"], default="all")
    parser.add_argument("--micro-batch", type=int, nargs="+", default=[64, 0])
    parser.add_argument("--one", nargs=3, metavar=("SETTING", "VARIANT", "MICRO_BATCH"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "navigator_speed.md")
    args = parser.parse_args()
    if args.one:
        setting, variant, micro_batch = args.one
        print(json.dumps(measure(setting, variant, args.steps, args.threads, int(micro_batch))))
        return
    from machine import describe

    settings = ["reference", "shapes", "faces"] if args.setting == "all" else [args.setting]
    rows = []
    for setting in settings:
        for variant in ("binary", "prototype"):
            for micro_batch in args.micro_batch:
                out = subprocess.run([sys.executable, __file__, "--one", setting, variant, str(micro_batch),
                                      "--steps", str(args.steps), "--threads", str(args.threads)],
                                     capture_output=True, text=True, check=True)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                ref = AUTHORS[variant] if setting == "reference" else None
                speedup = f"{ref / r['s_per_step']:.1f}×" if ref else "–"
                rows.append(f"| {setting} | {variant} | {r['batch']} | {micro_batch} | {r['s_per_step']:.3f} | "
                            f"{r['peak_rss_gb']:.2f} | {ref if ref else '–'} | {speedup} |")
                print(rows[-1], flush=True)
    table = "\n".join([
        "# Navigator training speed", "",
        f"Machine: {describe()}", "",
        f"Command: `python evaluation/bench_navigator.py --steps {args.steps} --threads {args.threads} "
        f"--setting {args.setting} --micro-batch {' '.join(map(str, args.micro_batch))}`", "",
        "Authors' code on a 2-core machine of this kind (issue 4): 3.2 s per binary step, 2.7 s per prototype "
        "step, about 3.4 GB peak.", "",
        "| setting | variant | batch | micro-batch | s/step | peak RSS GB | authors s/step | speed-up |",
        "|---|---|---|---|---|---|---|---|", *rows, ""])
    args.out.write_text(table)
    print(table)


if __name__ == "__main__":
    main()
