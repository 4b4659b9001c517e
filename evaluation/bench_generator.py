"""Generator speed: synthesis images/s and forward+backward to W+ (float32 on the CPU; on a GPU also
bf16 autocast and channels_last at 512 px). Writes evaluation/results/generator_speed.md.

Usage: python evaluation/bench_generator.py [--threads 2] [--repeats 5]
Configs (random weights; speed does not depend on them):
  64 px:  channel_base 8192,  channel_max 256, z = w = 512, 8 mapping layers (the paper-like reference)
  256 px: channel_base 16384, channel_max 512 (NVIDIA's paper256 config)
  512 px: channel_base 32768, channel_max 512 (NVIDIA's FFHQ-512 config; GPU only)
"""

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe  # noqa: E402

from stylediscover.generators import Generator, GeneratorConfig  # noqa: E402

CONFIGS = {64: (8192, 256), 256: (16384, 512), 512: (32768, 512)}


def timed(fn, repeats: int, device: torch.device) -> float:
    """Median seconds of fn() over `repeats` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def bench(resolution: int, batch: int, device: torch.device, repeats: int, bf16: bool = False,
          channels_last: bool = False) -> tuple[float, float]:
    base, cmax = CONFIGS[resolution]
    torch.manual_seed(0)
    G = Generator(GeneratorConfig.from_channel_base(resolution, base, cmax, z_dim=512, w_dim=512)).to(device).eval()
    if channels_last:
        G = G.to(memory_format=torch.channels_last)
    ws = G.mapping(torch.randn(batch, 512, device=device)).detach()
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

    def forward() -> None:
        with torch.no_grad(), autocast:
            G.synthesis(ws)

    def forward_backward() -> None:
        w = ws.clone().requires_grad_(True)
        with autocast:
            loss = G.synthesis(w).float().square().mean()
        loss.backward()

    return batch / timed(forward, repeats, device), batch / timed(forward_backward, repeats, device)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "generator_speed.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    cpu = torch.device("cpu")
    for resolution, batch in ((64, 8), (256, 4)):
        fwd, fwd_bwd = bench(resolution, batch, cpu, args.repeats)
        rows.append(f"| cpu | {resolution} | {batch} | fp32 | {fwd:.2f} | {fwd_bwd:.2f} |")
    if torch.cuda.is_available():
        gpu = torch.device("cuda")
        for bf16, cl in ((False, False), (True, False), (True, True)):
            fwd, fwd_bwd = bench(512, 16, gpu, args.repeats, bf16, cl)
            mode = ("bf16 autocast" if bf16 else "fp32") + (" + channels_last" if cl else "")
            rows.append(f"| cuda | 512 | 16 | {mode} | {fwd:.1f} | {fwd_bwd:.1f} |")
    table = "\n".join([
        "# Generator speed", "",
        f"Machine: {describe()}", "",
        f"Command: `python evaluation/bench_generator.py --threads {args.threads} --repeats {args.repeats}`", "",
        "| device | px | batch | precision | synthesis images/s | forward+backward to W+ images/s |",
        "|---|---|---|---|---|---|", *rows, ""])
    args.out.write_text(table)
    print(table)


if __name__ == "__main__":
    main()
