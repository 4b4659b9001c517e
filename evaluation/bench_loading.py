"""Peak memory of `stylediscover generators convert` on a good FFHQ-512-sized generator, against the same command
refusing a 20-byte file (the process's baseline: Python, torch and the CLI).

Usage: python evaluation/bench_loading.py   (writes evaluation/results/loading_memory.md)
A random-init generator (512 px, z = w = 512, channel base 32768, max 512, 8 mapping layers) is saved in the native
format and converted in a fresh process; each run's peak RSS is read with resource.getrusage.
"""

import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))


def peak_rss_mb(args: list[str]) -> tuple[int, float]:
    """Exit status and peak RSS (MB) of `stylediscover ARGS` in a fresh process."""
    script = textwrap.dedent(f"""
        import resource, sys
        from stylediscover.cli import main
        try:
            main({args!r})
        finally:
            print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, file=sys.stderr)
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    return run.returncode, float(run.stderr.strip().splitlines()[-1])


def main() -> None:
    import torch
    from machine import describe

    from stylediscover.generators import Generator, GeneratorConfig, save_native

    tmp = Path(tempfile.mkdtemp())
    torch.manual_seed(0)
    source = tmp / "g512.safetensors"
    save_native(Generator(GeneratorConfig.from_channel_base(512, 32768, 512, z_dim=512, w_dim=512,
                                                            mapping_layers=8)), source)
    junk = tmp / "junk.pkl"
    junk.write_bytes(b"\x80\x04not a pickle at all")
    code_junk, baseline = peak_rss_mb(["generators", "convert", str(junk), "--out", str(tmp / "j.safetensors")])
    code_good, good = peak_rss_mb(["generators", "convert", str(source), "--out", str(tmp / "out.safetensors")])
    size = source.stat().st_size / 2**20
    table = "\n".join([
        "# Memory of loading a generator", "",
        f"Machine: {describe()}", "",
        "Command: `python evaluation/bench_loading.py`", "",
        "| run | exit | peak RSS MB | above baseline MB | file MB |", "|---|---|---|---|---|",
        f"| refusing a 20-byte file (baseline) | {code_junk} | {baseline:.0f} | – | – |",
        f"| converting the FFHQ-512-sized generator | {code_good} | {good:.0f} | {good - baseline:.0f} | {size:.0f} |",
        "", "The network is built on the `meta` device and takes over the loaded tensors "
        "(`stylediscover/weights.py: build_module`) instead of allocating its own weights first; the figure "
        "includes writing the native copy.", ""])
    (HERE / "results" / "loading_memory.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
