"""Explorer latency in a real browser: from a slider's input event to the frame after the new images were decoded
(the page's own measure, window.explorer.stats), for the grid of 4 builtin:shapes samples (32 px) of the committed
quickstart export. Serves with `stylediscover explore` in a subprocess and drives Debian's Chromium headless.

Scenarios: `step` moves one clean slider to a new value and waits for the image (a click on the track);
`drag` drags a slider's thumb back and forth with the mouse at 60 events/s (renders coalesce: the page keeps one
request in flight and sends the latest state when it returns; a render's latency counts from the oldest input it
shows). Also reports the CPU the machine's other processes used meanwhile (from /proc), since this machine is shared.
Writes evaluation/results/explore_latency.md.

Usage: python evaluation/bench_explore.py [--steps 100] [--drags 6]
"""

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe  # noqa: E402

from stylediscover.explore.engine import RENDER_THREADS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXPORT = ROOT / "evaluation" / "results" / "quickstart-best"
OUT = ROOT / "evaluation" / "results" / "explore_latency.md"


def busy_jiffies() -> int:
    """CPU time used by every process on the machine since boot (user+nice+system+irq+softirq+steal)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields[i] for i in (0, 1, 2, 5, 6, 7))


def tree_jiffies(root: int) -> int:
    """CPU time (user+system, with that of reaped children) of `root` and its live descendants."""
    parents, times = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parents[pid], times[pid] = int(fields[1]), sum(int(x) for x in fields[11:15])
    total = 0
    for pid, t in times.items():
        p = pid
        while p not in (0, 1, root):
            p = parents.get(p, 0)
        total += t if p == root else 0
    return total


def start_server(log: Path) -> tuple[subprocess.Popen, str]:
    out = open(log, "w")
    proc = subprocess.Popen([sys.executable, "-m", "stylediscover.cli", "explore", str(EXPORT), "--port", "0"],
                            stdout=out, stderr=out, cwd=ROOT)
    deadline = time.monotonic() + 120
    while not (match := re.search(r"http://127\.0\.0\.1:\d+/", log.read_text())):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the server did not start:\n{log.read_text()}")
        time.sleep(0.2)
    return proc, match.group(0)


def wait_render(page, before: int) -> None:
    page.wait_for_function("n => window.explorer.panels[0].renders > n && window.explorer.idle()", arg=before)


def step_scenario(page, count: int, rng: random.Random) -> None:
    sliders = page.locator("#panel-0 .slider.clean input")
    for i in range(count):
        slider = sliders.nth(i % sliders.count())
        slider.scroll_into_view_if_needed()
        before, value = page.evaluate("window.explorer.panels[0].renders"), slider.input_value()
        box = slider.bounding_box()
        page.mouse.click(box["x"] + box["width"] * rng.uniform(0.05, 0.95), box["y"] + box["height"] / 2)
        if slider.input_value() != value:
            wait_render(page, before)


def drag_scenario(page, drags: int) -> None:
    sliders = page.locator("#panel-0 .slider.clean input")
    for i in range(drags):
        sliders.nth(i % sliders.count()).scroll_into_view_if_needed()
        box = sliders.nth(i % sliders.count()).bounding_box()
        y, left, width = box["y"] + box["height"] / 2, box["x"] + 6, box["width"] - 12
        page.mouse.move(left + width / 2, y)
        page.mouse.down()
        for t in range(120):  # 2 s at 60 Hz: one sweep to the right end and back to the left end
            page.mouse.move(left + width * (0.5 + 0.5 * np.sin(2 * np.pi * t / 120)), y)
            time.sleep(1 / 60)
        page.mouse.up()
        page.wait_for_function("window.explorer.idle()")


def summarise(values: list[float]) -> str:
    a = np.asarray(values)
    return f"{len(a)} | {np.median(a):.0f} | {np.percentile(a, 95):.0f} | {a.max():.0f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=100, help="slider steps (one render each)")
    parser.add_argument("--drags", type=int, default=6, help="2-second drags")
    args = parser.parse_args()
    chromium = "/usr/bin/chromium"
    rows, others = [], []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        proc, url = start_server(Path(tmp) / "server.log")
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.wait_for_function("document.querySelector('#panel-0').dataset.renders >= 1")
            step_scenario(page, 10, random.Random(1))  # warm-up
            for name, run in (("step", lambda: step_scenario(page, args.steps, random.Random(0))),
                              ("drag", lambda: drag_scenario(page, args.drags))):
                page.evaluate("() => Object.assign(window.explorer.stats, {latencies: [], server: [], inputs: 0, "
                              "requests: 0, superseded: 0})")
                busy, ours, wall = busy_jiffies(), tree_jiffies(os.getpid()), time.monotonic()
                run()
                hz, wall = os.sysconf("SC_CLK_TCK"), time.monotonic() - wall
                others.append((name, ((busy_jiffies() - busy) - (tree_jiffies(os.getpid()) - ours)) / hz / wall))
                stats = page.evaluate("window.explorer.stats")
                rows.append((name, stats))
        finally:
            browser.close()
            proc.terminate()
            proc.wait(timeout=30)
    load = os.getloadavg()
    torch.set_num_threads(RENDER_THREADS)  # so that the machine line names the server's render threads
    lines = ["# Explorer latency", "",
             "From a slider's input event to the frame after the new images were decoded, measured by the page in "
             "headless Chromium (Debian's `/usr/bin/chromium`) against `stylediscover explore "
             "evaluation/results/quickstart-best` (a grid of 4 `builtin:shapes` samples, 32 px; renders on "
             "1 torch thread). Target: median ≤ 100 ms, p95 ≤ 250 ms.", "",
             f"Machine: {describe()}", "",
             f"Command: `python evaluation/bench_explore.py --steps {args.steps} --drags {args.drags}`", "",
             "| scenario | renders | median ms | p95 ms | max ms | server median ms | inputs | requests | "
             "other processes' CPU (cores) |", "|---|---|---|---|---|---|---|---|---|"]
    for (name, stats), (_, other) in zip(rows, others):
        lines.append(f"| {name} | {summarise(stats['latencies'])} | {np.median(stats['server']):.0f} | "
                     f"{stats['inputs']} | {stats['requests']} | {other:.2f} |")
    lines += ["", "`step`: a click on a clean slider's track, then wait for the image (one render per input). `drag`: "
              "the mouse drags a thumb at 60 events/s; the page keeps one render in flight and sends the latest state "
              "when it lands, so `requests` < `inputs`, and a render's latency counts from the oldest input it shows. "
              "`server`: the render request's time inside the server (queue, W+ edit, synthesis, PNG encoding). "
              f"Other processes' CPU: the cores the rest of the machine (other users' jobs) kept busy meanwhile, "
              f"from /proc (load average at the end: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f} on "
              f"{os.cpu_count()} cores).", ""]
    OUT.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
