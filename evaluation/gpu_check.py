"""The GPU check: correctness on CUDA, speed against the device's peak, and trials packed on one card.

Usage (on a CUDA machine; evaluation/gpu_check.sh installs what the image lacks, then runs this):
  python evaluation/gpu_check.py --out DIR [--budget-s 330]         all parts; figures appended to DIR/gpu.json
  python evaluation/gpu_check.py --report DIR/gpu.json [MORE.json ...] --md evaluation/results/gpu.md
                                                                  (later files override parts; text after the
                                                                  notes marker of an existing --md is kept)
  python evaluation/gpu_check.py --out DIR --smoke                  the same code paths, tiny, on any device
Parts, in order (each writes its figures as soon as it ends, so a run cut short keeps what it measured):
  peaks        matrix-product rates of the card in fp32, tf32 and bf16 (8192³, the ceilings used below)
  correctness  quickstart-sized trials (600 steps, evaluations at 300 and 600) as concurrent `stylediscover train`
               processes: fp32 / tf32 / bf16 × training seeds 0-2, a repeat of fp32 seed 0, resumes from step 300
               (default and deterministic kernels); every last export re-evaluated on held-out codes (seed
               TEST_SEED, never used in training or selection); one export evaluated on the GPU and on the CPU;
               the device tests (pytest tests/test_device.py tests/test_cuda.py)
  speed        the `reference` setting of evaluation/bench_navigator.py and an FFHQ-512-sized setting (random
               weights) per variant × precision, eager: s/step, images/s, peak memory, FLOPs counted with
               torch.utils.flop_counter, achieved TFLOP/s against the peaks; gradient agreement with fp32 on one
               batch; no-grad synthesis rate (evaluation's cost); a profile of the FFHQ-512 binary step
  packing      N = 1, 2, 4, 8 concurrent FFHQ-512 trial processes on the one GPU (what Ray does with resources.gpu
               1/N): trials' summed steps/s and GPU utilisation (NVML) over a common window
  compile      torch.compile of the synthesis + feature pass, while the budget lasts: compile time and s/step
"""

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from bench_navigator import build, reference_config  # noqa: E402

TEST_SEED = 777
DATASHEET_TFLOPS = {"NVIDIA H200": {"fp32": 67, "tf32": 495, "bf16": 989},
                    "NVIDIA H100 80GB HBM3": {"fp32": 67, "tf32": 495, "bf16": 989}}
QUICKSTART = ["features.input_map=true", "loss.form=infonce", "loss.temperature=0.2", "navigator.num_directions=16",
              "eval.every=300", "steps=600", "threads=1"]
PAPER_STEPS, PAPER_EVALS = 17_000, 9
NOTES = "<!-- notes: kept by --report -->"


class Results:
    """gpu.json: one mapping of part → figures, rewritten after each part."""

    def __init__(self, path: Path):
        self.path, self.data = path, {}

    def put(self, part: str, value) -> None:
        self.data[part] = value
        self.path.write_text(json.dumps(self.data, indent=1) + "\n")


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def peaks(smoke: bool) -> dict:
    """Dense matrix-product TFLOP/s in fp32, tf32 and bf16 (mean of 10 products after 3 warm-ups)."""
    import torch

    n = 512 if smoke else 8192
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    out = {}
    for mode, dtype in (("fp32", torch.float32), ("tf32", torch.float32), ("bf16", torch.bfloat16)):
        torch.backends.cuda.matmul.allow_tf32 = mode == "tf32"
        a, b = torch.randn(n, n, device=dev, dtype=dtype), torch.randn(n, n, device=dev, dtype=dtype)
        for _ in range(3):
            a @ b
        sync()
        t = time.perf_counter()
        for _ in range(10):
            a @ b
        sync()
        out[mode] = 2 * n**3 * 10 / (time.perf_counter() - t) / 1e12
    torch.backends.cuda.matmul.allow_tf32 = False
    return out


def ffhq512_config(variant: str, root: Path, smoke: bool, **changes):
    """The FFHQ-512-sized setting: random weights, 512 px, z = w = 512, channel base 32768, max 512, 8 mapping
    layers, K = 30 `pca` directions (n = 100), `softmax` attention smoothed 3, λ_div 0.1, batch 12, AlexNet fed as
    the authors do (raw [-1, 1] at the generator's resolution). `smoke`: 32 px, channel base 1024."""
    import torch

    from stylediscover.config import TrainConfig
    from stylediscover.generators import Generator, GeneratorConfig, save_native

    torch.manual_seed(0)
    res, base = (32, 1024) if smoke else (512, 32768)
    g = Generator(GeneratorConfig.from_channel_base(res, base, 512, z_dim=512, w_dim=512, mapping_layers=8))
    save_native(g, root / "g512.safetensors")
    return TrainConfig(**{"generator": str(root / "g512.safetensors"),
                          "features": {"name": "alexnet", "weights": "random", "input_scaling": "none"},
                          "navigator": {"num_directions": 30, "direction": "pca", "pca_dim": 100,
                                        "attention": "softmax", "smooth_kernel": 3},
                          "loss": {"variant": variant, "diversity_weight": 0.1}, "batch": 12, "pca_samples": 20_000,
                          "threads": 4} | changes)


def setting_config(setting: str, variant: str, root: Path, smoke: bool, **changes):

    if setting == "reference" and not smoke:
        return reference_config(variant, root, changes.pop("threads", 4), 0, **changes)
    return ffhq512_config(variant, root, smoke, **changes)


def images_per_step(cfg) -> int:
    """Synthesised images per training step: binary B originals + 1.5·B edits; prototype 2·B edits."""
    return int(2.5 * cfg.batch) if cfg.loss.variant == "binary" else 2 * cfg.batch


def time_steps(step, n: int) -> float:
    """Seconds per step over n steps (device-synchronised)."""
    sync()
    t = time.perf_counter()
    for _ in range(n):
        step()
    sync()
    return (time.perf_counter() - t) / n


def count_flops(cfg) -> float:
    """FLOPs of one training step (forward and backward), counted by torch.utils.flop_counter."""
    from torch.utils.flop_counter import FlopCounterMode

    from stylediscover.trainer import training_loss

    trial, step = build(cfg)
    step()
    with FlopCounterMode(display=False) as counter:
        training_loss(trial).backward()
    return float(counter.get_total_flops())


def gradients(cfg, rng_state):
    """The navigator's flattened float64 gradient [P] of one step's loss from a given CPU RNG state."""
    import torch

    from stylediscover.trainer import Trial, training_loss

    trial = Trial(cfg)
    torch.set_rng_state(rng_state)
    training_loss(trial).backward()
    return torch.cat([p.grad.flatten().double().cpu() for p in trial.parameters()])


def speed(root: Path, smoke: bool, out_dir: Path, peak: dict) -> dict:
    """Eager s/step per setting × variant × precision, with FLOPs, memory and gradient agreement."""
    import torch

    cuda = torch.cuda.is_available()
    rows, agreement = [], []
    for setting in ("reference", "ffhq512"):
        for variant in ("binary", "prototype"):
            flops = count_flops(setting_config(setting, variant, root, smoke, precision="fp32"))
            rng = torch.get_rng_state()
            ref = gradients(setting_config(setting, variant, root, smoke, precision="fp32"), rng)
            for precision in ("fp32", "tf32", "bf16"):
                cfg = setting_config(setting, variant, root, smoke, precision=precision)
                if precision != "fp32":
                    g = gradients(cfg, rng)
                    agreement.append({"setting": setting, "variant": variant, "precision": precision,
                                      "rel_error": float((g - ref).norm() / ref.norm()),
                                      "cosine": float(torch.nn.functional.cosine_similarity(g, ref, dim=0))})
                trial, step = build(cfg)
                step()
                step()
                if cuda:
                    torch.cuda.reset_peak_memory_stats()
                s = time_steps(step, 2 if smoke else (20 if setting == "reference" else 10))
                rows.append({"setting": setting, "variant": variant, "precision": precision, "compile": False,
                             "batch": cfg.batch, "s_per_step": s, "images_per_s": images_per_step(cfg) / s,
                             "gflop_per_step": flops / 1e9, "tflops": flops / s / 1e12,
                             "share_of_bf16_peak": flops / s / 1e12 / peak["bf16"],
                             "share_of_mode_peak": flops / s / 1e12 / peak[precision],
                             "peak_mem_gb": torch.cuda.max_memory_allocated() / 2**30 if cuda else None})
                print(json.dumps(rows[-1]), flush=True)
                del trial, step
                if cuda:
                    torch.cuda.empty_cache()
    return {"rows": rows, "gradient_agreement": agreement, "synthesis_fp32": synthesis_rate(root, smoke),
            "profile": profile(root, smoke, out_dir, fastest(rows, "ffhq512", "binary"))}


def fastest(rows: list[dict], setting: str, variant: str) -> str:
    own = [r for r in rows if r["setting"] == setting and r["variant"] == variant and not r["compile"]]
    return min(own, key=lambda r: r["s_per_step"])["precision"]


def synthesis_rate(root: Path, smoke: bool) -> dict:
    """No-grad fp32 synthesis images/s of the FFHQ-512 generator at batch 50 (the cost of evaluation's x±)."""
    import torch

    from stylediscover.generators import load_generator

    g = load_generator(setting_config("ffhq512", "binary", root, smoke).generator).to(
        "cuda" if torch.cuda.is_available() else "cpu")
    with torch.no_grad():
        ws = g.mapping(torch.randn(50, g.z_dim, device=g.device))
        g.synthesis(ws, noise_mode="const")
        s = time_steps(lambda: g.synthesis(ws, noise_mode="const"), 2 if smoke else 10)
    return {"batch": 50, "images_per_s": 50 / s}


def profile(root: Path, smoke: bool, out_dir: Path, precision: str) -> dict:
    """torch.profiler of 3 FFHQ-512 binary steps: the top operators by device time, written to profile.txt, and
    the share of device time by operator family."""
    import torch
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    cfg = setting_config("ffhq512", "binary", root, smoke, precision=precision)
    trial, step = build(cfg)
    step()
    sync()
    cuda = torch.cuda.is_available()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with torch_profile(activities=activities) as prof:
        for _ in range(3):
            step()
        sync()
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    events = prof.key_averages()
    (out_dir / "profile.txt").write_text(f"FFHQ-512 binary step, precision {precision}, 3 steps\n"
                                         + events.table(sort_by=key, row_limit=30, max_name_column_width=60))
    families = {"convolution": ("conv", "cudnn", "sm90_xmma", "implicit", "wgrad", "dgrad", "fprop"),
                "matrix product": ("gemm", "mm", "matmul", "cutlass", "einsum"),
                "copy / layout": ("copy", "cat", "contiguous", "clone", "transpose", "pad", "to_copy")}
    totals: dict[str, float] = {}
    for e in events:
        t = getattr(e, key, 0.0)
        if t <= 0 or e.key.startswith("aten::") and cuda:
            continue
        name = e.key.lower()
        family = next((f for f, marks in families.items() if any(m in name for m in marks)), "elementwise / other")
        totals[family] = totals.get(family, 0.0) + t
    whole = sum(totals.values()) or 1.0
    return {"precision": precision, "device_ms_per_step": whole / 3 / 1e3,
            "shares": {k: v / whole for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}}


def worker(setting: str, variant: str, precision: str, seconds: float, ready: Path, index: int, n: int,
           smoke: bool) -> None:
    """A packing worker: builds the trial, warms up, waits for all n workers, then trains for `seconds`."""
    cfg = setting_config(setting, variant, Path(tempfile.mkdtemp()), smoke, precision=precision, threads=2)
    trial, step = build(cfg)
    step()
    step()
    sync()
    (ready / f"ready-{index}").touch()
    waited = time.perf_counter()
    while len(list(ready.glob("ready-*"))) < n:
        if time.perf_counter() - waited > 300:
            sys.exit("the other workers never became ready")
        time.sleep(0.05)
    steps, t = 0, time.perf_counter()
    while time.perf_counter() - t < seconds:
        step()
        steps += 1
    sync()
    import torch

    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    print(json.dumps({"steps": steps, "seconds": time.perf_counter() - t, "peak_mem_gb": peak}), flush=True)


def gpu_sampler():
    """A function returning (GPU utilisation %, memory used GiB) from NVML, or None where NVML is missing."""
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    except Exception:  # noqa: BLE001 (no NVML: CPU smoke runs)
        return None

    def sample() -> tuple[float, float]:
        return (pynvml.nvmlDeviceGetUtilizationRates(handle).gpu,
                pynvml.nvmlDeviceGetMemoryInfo(handle).used / 2**30)

    return sample


def packing(precision: str, smoke: bool, seconds: float, counts: list[int], trial_gb: float | None) -> list[dict]:
    """N concurrent FFHQ-512 binary trial processes: summed steps/s and NVML utilisation over the common window.
    Counts whose trials (`trial_gb` each, plus 1 GB of CUDA context) would not fit the card are not started."""
    import torch

    sample = gpu_sampler()
    total_gb = torch.cuda.get_device_properties(0).total_memory / 2**30 if torch.cuda.is_available() else None
    rows: list[dict] = []
    for n in counts:
        if total_gb and trial_gb and n * (trial_gb + 1) > 0.95 * total_gb:
            rows.append({"concurrent": n, "gpu_share": 1 / n,
                         "error": f"does not fit: {n} × {trial_gb + 1:.0f} GB > {total_gb:.0f} GB"})
            continue
        ready = Path(tempfile.mkdtemp())
        procs = [subprocess.Popen([sys.executable, __file__, "--worker", "ffhq512", "binary", precision, str(seconds),
                                   str(ready), str(i), str(n)] + (["--smoke"] if smoke else []),
                                  stdout=subprocess.PIPE, text=True) for i in range(n)]
        utils, mems = [], []
        while any(p.poll() is None for p in procs) and not any(p.poll() for p in procs):
            if sample and len(list(ready.glob("ready-*"))) == n:
                u, m = sample()
                utils.append(u)
                mems.append(m)
            time.sleep(0.1)
        if any(p.poll() for p in procs):
            for p in procs:
                p.kill()
            rows.append({"concurrent": n, "gpu_share": 1 / n, "error": "a trial process failed (see the log)"})
            print(json.dumps(rows[-1]), flush=True)
            break
        results = [json.loads(p.stdout.read().strip().splitlines()[-1]) for p in procs]
        per_trial = [r["steps"] / r["seconds"] for r in results]
        rows.append({"concurrent": n, "gpu_share": 1 / n, "steps_per_s": sum(per_trial),
                     "per_trial_s_per_step": sum(1 / r for r in per_trial) / n,
                     "trials_per_hour": sum(per_trial) * 3600 / PAPER_STEPS,
                     "gpu_util_mean": sum(utils) / len(utils) if utils else None,
                     "gpu_mem_max_gb": max(mems) if mems else None,
                     "trial_peak_mem_gb": max(r["peak_mem_gb"] or 0 for r in results)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def compile_rows(root: Path, smoke: bool, deadline: float, peak: dict, first: str, put) -> list[dict]:
    """Compiled synthesis + feature pass, while the budget lasts (FFHQ-512 in the `first` precision first):
    compile time (the first two steps) and s/step; `put(rows)` after each row."""
    import torch

    rows: list[dict] = []
    order = [first] + [p for p in ("tf32", "bf16", "fp32") if p != first]
    for setting, precision in [(s, p) for p in order for s in ("ffhq512", "reference")]:
        if time.time() > deadline:
            rows.append({"setting": setting, "precision": precision, "skipped": "out of device time"})
            put(rows)
            continue
        cfg = setting_config(setting, "binary", root, smoke, precision=precision, compile=True)
        flops = count_flops(setting_config(setting, "binary", root, smoke, precision="fp32"))
        try:
            trial, step = build(cfg)
            t = time.perf_counter()
            step()
            step()
            sync()
            compile_s = time.perf_counter() - t
            if torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()
            s = time_steps(step, 2 if smoke else 10)
        except Exception as exc:  # noqa: BLE001 (a compiler failure is a finding, not the end of the check)
            rows.append({"setting": setting, "precision": precision, "error": str(exc).splitlines()[0][:200]})
            put(rows)
            continue
        rows.append({"setting": setting, "variant": "binary", "precision": precision, "compile": True,
                     "compile_s": compile_s, "s_per_step": s, "images_per_s": images_per_step(cfg) / s,
                     "tflops": flops / s / 1e12, "share_of_bf16_peak": flops / s / 1e12 / peak["bf16"],
                     "peak_mem_gb": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None})
        print(json.dumps(rows[-1]), flush=True)
        put(rows)
        del trial, step
        torch._dynamo.reset()
    return rows


def train_process(run_dir: Path, sets: list[str], log) -> subprocess.Popen:
    """`stylediscover train configs/shapes-binary.yaml` with the quickstart's base and `sets`, in the background."""
    cmd = [sys.executable, "-c", "from stylediscover.cli import main; main()", "train",
           str(ROOT / "configs" / "shapes-binary.yaml"), "--run-dir", str(run_dir)]
    for item in QUICKSTART + sets:
        cmd += ["--set", item]
    env = os.environ | {"TQDM_DISABLE": "1"}
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)


def checkpoint_difference(a: Path, b: Path) -> float:
    """Largest absolute difference between the navigator weights of two run directories' checkpoints."""
    import torch

    sa = torch.load(a / "checkpoint.pt", weights_only=True)["navigator"]
    sb = torch.load(b / "checkpoint.pt", weights_only=True)["navigator"]
    return max(float((sa[k].double() - sb[k].double()).abs().max()) for k in sa)


def correctness(root: Path, smoke: bool, out_dir: Path) -> dict:
    """Concurrent quickstart-sized trials on the GPU, resumes, held-out metrics per precision, GPU vs CPU."""
    import torch

    from stylediscover.assessment import assess

    steps = ["steps=4", "eval.every=2", "eval.metrics.samples=8", "pca_samples=500"] if smoke else []
    runs = {f"{p}-s{seed}": [f"precision={p}", f"seed={seed}"] for p in ("fp32", "tf32", "bf16") for seed in (0, 1, 2)}
    runs |= {"fp32-s0-repeat": ["precision=fp32"], "det-s0": ["precision=fp32", "deterministic=true"]}
    resumed = {"fp32-s0-resumed": ["precision=fp32"], "bf16-s0-resumed": ["precision=bf16"],
               "det-s0-resumed": ["precision=fp32", "deterministic=true"]}
    half = ["steps=2"] if smoke else ["steps=300"]
    with open(out_dir / "runs.log", "w") as log:
        t = time.perf_counter()
        procs = {name: train_process(root / name, sets + steps, log) for name, sets in runs.items()}
        procs |= {name: train_process(root / name, sets + steps + half, log) for name, sets in resumed.items()}
        for name in resumed:
            procs[name].wait()
            procs[name] = train_process(root / name, resumed[name] + steps, log)
        codes = {name: p.wait() for name, p in procs.items()}
        wall = time.perf_counter() - t
    failed = [name for name, rc in codes.items() if rc]
    out: dict = {"wall_s": wall, "concurrent_processes": len(runs) + len(resumed), "failed": failed}
    out["resume"] = [{"pair": f"{a} vs {b}", "max_abs_diff": checkpoint_difference(root / a, root / b),
                      "metrics_equal": (root / a / "metrics.jsonl").read_text().splitlines()[-1].split('"loss"')[0]
                      == (root / b / "metrics.jsonl").read_text().splitlines()[-1].split('"loss"')[0]}
                     for a, b in (("fp32-s0", "fp32-s0-repeat"), ("fp32-s0", "fp32-s0-resumed"),
                                  ("bf16-s0", "bf16-s0-resumed"), ("det-s0", "det-s0-resumed"), ("fp32-s0", "det-s0"))
                     if a not in failed and b not in failed]
    held_out = []
    for name in runs:
        if name in failed or name.endswith("repeat"):
            continue
        m = assess(root / name / "directions.safetensors", seed=TEST_SEED, samples=8 if smoke else 500)
        held_out.append({"run": name, "score": m["score"], "n_discovered": m["n_discovered"]})
    out["held_out"] = held_out
    if "fp32-s0" not in failed:
        path = root / "fp32-s0" / "directions.safetensors"
        gpu = assess(path, device=torch.device("cuda" if torch.cuda.is_available() else "cpu"), seed=TEST_SEED)
        cpu = assess(path, device=torch.device("cpu"), seed=TEST_SEED)
        diff = (torch.tensor(gpu["responses"]) - torch.tensor(cpu["responses"])).abs().max()
        out["gpu_vs_cpu"] = {"samples": gpu["samples"], "max_abs_response_diff": float(diff),
                             "score_gpu": gpu["score"], "score_cpu": cpu["score"],
                             "n_discovered_gpu": gpu["n_discovered"], "n_discovered_cpu": cpu["n_discovered"],
                             "scales_max_abs_diff": float((torch.tensor(gpu["scales"]) - torch.tensor(cpu["scales"]))
                                                          .abs().max()) if gpu["scales"] else None}
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_device.py",
                            "tests/test_cuda.py"], cwd=ROOT, capture_output=True, text=True)
    (out_dir / "pytest.log").write_text(tests.stdout + tests.stderr)
    out["device_tests"] = {"returncode": tests.returncode, "summary": (tests.stdout.strip().splitlines() or [""])[-1]}
    return out


def matching_precisions(held_out: list[dict]) -> set[str]:
    """Precisions whose seed-mean held-out score and n_discovered lie within the range fp32 spans over the same
    training seeds (a precision change moves the trajectory as a seed change does)."""
    by: dict[str, list[dict]] = {}
    for r in held_out:
        if "-s" in r["run"] and not r["run"].startswith("det"):
            by.setdefault(r["run"].split("-s")[0], []).append(r)
    if "fp32" not in by:
        return {"fp32"}
    out = set()
    for precision, rs in by.items():
        ok = True
        for key in ("score", "n_discovered"):
            lo, hi = min(r[key] for r in by["fp32"]), max(r[key] for r in by["fp32"])
            mean = sum(r[key] for r in rs) / len(rs)
            ok &= lo <= mean <= hi
        if ok:
            out.add(precision)
    return out


def run_all(args: argparse.Namespace) -> None:
    import torch

    start = time.time()
    deadline = start + args.budget_s
    args.out.mkdir(parents=True, exist_ok=True)
    results = Results(args.out / "gpu.json")
    from machine import describe

    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                            capture_output=True, text=True).stdout.strip() if torch.cuda.is_available() else None
    results.put("machine", {"describe": describe(), "device": name, "driver": driver, "torch": torch.__version__,
                            "cuda": torch.version.cuda, "command": " ".join(sys.argv), "smoke": args.smoke})
    peak = peaks(args.smoke)
    results.put("peaks_tflops", peak | {"datasheet": DATASHEET_TFLOPS.get(name)})
    print("peaks", json.dumps(peak), flush=True)
    root = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    if "correctness" in args.parts:
        results.put("correctness", correctness(root, args.smoke, args.out))
        print("correctness", json.dumps(results.data["correctness"])[:3000], flush=True)
    if "speed" in args.parts:
        results.put("speed", speed(root, args.smoke, args.out, peak))
    chosen = args.precision
    if "correctness" in results.data and "speed" in results.data:
        ok = matching_precisions(results.data["correctness"]["held_out"])
        close = {a["precision"] for a in results.data["speed"]["gradient_agreement"]
                 if a["setting"] == "ffhq512" and a["variant"] == "binary" and a["cosine"] >= 0.99}
        candidates = [r for r in results.data["speed"]["rows"] if r["setting"] == "ffhq512"
                      and r["variant"] == "binary" and (r["precision"] == "fp32" or r["precision"] in ok & close)]
        chosen = min(candidates, key=lambda r: r["s_per_step"])["precision"]
        results.put("choice", {"matching_held_out": sorted(ok), "gradient_cosine_ge_0.99": sorted(close),
                               "fastest": chosen})
    if "packing" in args.parts:
        trial_gb = next((r["peak_mem_gb"] for r in results.data.get("speed", {}).get("rows", [])
                         if r["setting"] == "ffhq512" and r["variant"] == "binary" and r["precision"] == chosen), None)
        results.put("packing", packing(chosen, args.smoke, 4 if args.smoke else 12,
                                       [1, 2] if args.smoke else [1, 2, 4, 8], trial_gb))
    if "compile" in args.parts:
        compile_rows(root, args.smoke, deadline, peak, chosen, lambda rows: results.put("compile", rows))
    results.put("elapsed_s", time.time() - start)
    (args.out / "gpu.md").write_text(report(results.data))
    print(report(results.data))


def fmt(x, spec: str = ".3f") -> str:
    return "–" if x is None else format(x, spec)


def packing_row(r: dict) -> str:
    if "error" in r:
        return f"| {r['concurrent']} | {r['gpu_share']:.3g} | {r['error']} | | | | |"
    return (f"| {r['concurrent']} | {r['gpu_share']:.3g} | {r['steps_per_s']:.2f} | {r['per_trial_s_per_step']:.3f} | "
            f"{r['trials_per_hour']:.2f} | {fmt(r['gpu_util_mean'], '.0f')} % | {fmt(r['gpu_mem_max_gb'], '.1f')} |")


def report(d: dict) -> str:
    """gpu.md from gpu.json."""
    m, pk = d["machine"], d.get("peaks_tflops", {})
    lines = ["# On a real GPU: correctness, speed against the peak, packing", "",
             f"Device: {m['device']}, driver {m['driver']}, torch {m['torch']} (CUDA {m['cuda']}); {m['describe']}.",
             "", "Command: `bash evaluation/gpu_check.sh` (installs pydantic from carried wheels, then "
             f"`{m['command']}`); the tables: `python evaluation/gpu_check.py --report JSON ... --md "
             "evaluation/results/gpu.md`.", ""]
    if pk:
        ds = pk.get("datasheet") or {}
        lines += ["## Ceilings (8192³ matrix products, measured)", "", "| mode | TFLOP/s measured | datasheet dense |",
                  "|---|---|---|", *[f"| {k} | {pk[k]:.0f} | {ds.get(k, '–')} |" for k in ("fp32", "tf32", "bf16")], ""]
    c = d.get("correctness")
    if c:
        lines += ["## Correctness", "",
                  f"{c['concurrent_processes']} quickstart-sized trials (the quickstart's base: K 16, InfoNCE τ 0.2, "
                  "input map; 600 steps, evaluations at 300 and 600) ran as concurrent `stylediscover train` processes "
                  f"on the GPU in {c['wall_s']:.0f} s; failed: {', '.join(c['failed']) or 'none'}.", "",
                  "| checkpoints at step 600 | max abs difference of navigator weights | last metrics equal |",
                  "|---|---|---|",
                  *[f"| {r['pair']} | {r['max_abs_diff']:.3g} | {r['metrics_equal']} |" for r in c["resume"]], "",
                  f"Held-out metrics of each run's last export (step 600, no best-step pick) on codes of seed "
                  f"{TEST_SEED}, 500 per direction:", "", "| run | score | n_discovered |", "|---|---|---|",
                  *[f"| {r['run']} | {r['score']:.3f} | {r['n_discovered']} |" for r in c["held_out"]], ""]
        g = c.get("gpu_vs_cpu")
        if g:
            lines += [f"The export of fp32-s0 evaluated on the GPU and on the CPU ({g['samples']} codes per direction, "
                      f"seed {TEST_SEED}): responses differ by at most {g['max_abs_response_diff']:.2g}, calibrated "
                      f"strengths by {fmt(g['scales_max_abs_diff'], '.2g')}; score {g['score_gpu']:.4f} vs "
                      f"{g['score_cpu']:.4f}, n_discovered {g['n_discovered_gpu']} vs {g['n_discovered_cpu']}.", ""]
        lines += [f"Device tests on the GPU (`pytest tests/test_device.py tests/test_cuda.py`): "
                  f"{c['device_tests']['summary']}.", ""]
    s = d.get("speed")
    if s:
        lines += ["## Speed (eager)", "",
                  "FLOPs per step counted by `torch.utils.flop_counter` (forward and backward of the fp32 step); "
                  "shares are of the measured peaks above.", "",
                  "| setting | variant | precision | batch | s/step | images/s | GFLOP/step | TFLOP/s | of bf16 peak "
                  "| of mode's peak | peak GB |", "|---|---|---|---|---|---|---|---|---|---|---|",
                  *[f"| {r['setting']} | {r['variant']} | {r['precision']} | {r['batch']} | {r['s_per_step']:.4f} | "
                    f"{r['images_per_s']:.0f} | {r['gflop_per_step']:.0f} | {r['tflops']:.1f} | "
                    f"{100 * r['share_of_bf16_peak']:.1f} % | {100 * r['share_of_mode_peak']:.1f} % | "
                    f"{fmt(r['peak_mem_gb'], '.1f')} |" for r in s["rows"]], "",
                  "Gradient of one batch against fp32 (same codes, same draws):", "",
                  "| setting | variant | precision | relative error | cosine |", "|---|---|---|---|---|",
                  *[f"| {a['setting']} | {a['variant']} | {a['precision']} | {a['rel_error']:.2e} | {a['cosine']:.6f} |"
                    for a in s["gradient_agreement"]], "",
                  f"No-grad fp32 synthesis of the FFHQ-512-sized generator (evaluation's x±): "
                  f"{s['synthesis_fp32']['images_per_s']:.0f} images/s at batch 50.", ""]
        p = s["profile"]
        lines += [f"Profile of the FFHQ-512 binary step in {p['precision']} ({p['device_ms_per_step']:.1f} ms of "
                  "device time per step; top operators in `evaluation/results/gpu/profile.txt`):", "",
                  "| operator family | share of device time |", "|---|---|",
                  *[f"| {k} | {100 * v:.1f} % |" for k, v in p["shares"].items()], ""]
    ch = d.get("choice")
    if ch:
        lines += [f"Precisions whose held-out metrics lie within fp32's range over seeds 0-2: "
                  f"{', '.join(ch['matching_held_out'])}; gradient cosine ≥ 0.99 on the FFHQ-512 binary step: "
                  f"{', '.join(ch['gradient_cosine_ge_0.99'])}. Fastest of those there: **{ch['fastest']}**.", ""]
    pk_rows = d.get("packing")
    if pk_rows:
        lines += ["## Packing trials on one GPU (FFHQ-512 binary, batch 12)", "",
                  "| concurrent trials | resources.gpu | summed steps/s | s/step per trial | trials/hour (17k steps) "
                  "| GPU utilisation | GPU memory GB |", "|---|---|---|---|---|---|---|",
                  *[packing_row(r) for r in pk_rows], ""]
        done = [r for r in pk_rows if "error" not in r]
        if s and done:
            best = max(done, key=lambda r: r["steps_per_s"])
            images = PAPER_EVALS * 30 * 500 * 2
            eval_h = images / s["synthesis_fp32"]["images_per_s"] / 3600
            train_h = PAPER_STEPS * best["per_trial_s_per_step"] / 3600
            lines += [f"The paper's trial (200k images = {PAPER_STEPS} steps at batch 12) at {best['concurrent']} per "
                      f"GPU: {train_h:.2f} h of training per trial, plus about {eval_h:.2f} h for its {PAPER_EVALS} "
                      "evaluations (30 directions × 500 codes × 2 images each, synthesis only, the predictor not "
                      "counted), alone on the card.", ""]
    cr = d.get("compile")
    if cr:
        lines += ["## torch.compile (binary step)", "", "| setting | precision | compile s | s/step | images/s | "
                  "TFLOP/s | of bf16 peak | peak GB |", "|---|---|---|---|---|---|---|---|"]
        for r in cr:
            if "s_per_step" in r:
                lines.append(f"| {r['setting']} | {r['precision']} | {r['compile_s']:.0f} | {r['s_per_step']:.4f} | "
                             f"{r['images_per_s']:.0f} | {r['tflops']:.1f} | {100 * r['share_of_bf16_peak']:.1f} % | "
                             f"{fmt(r['peak_mem_gb'], '.1f')} |")
            else:
                lines.append(f"| {r['setting']} | {r['precision']} | {r.get('skipped') or r.get('error')} | | | | | |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "gpu-check")
    parser.add_argument("--budget-s", type=float, default=330, help="compile variants start only before this")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: the code paths, on any device")
    parser.add_argument("--parts", nargs="+", default=["correctness", "speed", "packing", "compile"],
                        choices=["correctness", "speed", "packing", "compile"])
    parser.add_argument("--precision", default="fp32", help="packing's precision when correctness or speed is skipped")
    parser.add_argument("--report", type=Path, nargs="+", help="gpu.json files (later ones override parts) to turn "
                        "into markdown")
    parser.add_argument("--md", type=Path, help="where --report writes")
    parser.add_argument("--worker", nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        setting, variant, precision, seconds, ready, index, n = args.worker
        worker(setting, variant, precision, float(seconds), Path(ready), int(index), int(n), args.smoke)
    elif args.report:
        text = report({k: v for path in args.report for k, v in json.loads(path.read_text()).items()})
        if not args.md:
            print(text)
            return
        kept = args.md.read_text().partition(NOTES)[2] if args.md.exists() else ""
        args.md.write_text(text + ("\n" + NOTES + kept if kept else ""))
    else:
        with contextlib.suppress(KeyboardInterrupt):
            run_all(args)


if __name__ == "__main__":
    main()
