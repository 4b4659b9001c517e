"""Screenshots of a finished sweep in the MLflow UI (the run list, and the parent run that holds the result) for
README, taken in Debian's Chromium through Playwright.

Usage: .venv/bin/python evaluation/mlflow_screenshots.py runs/sweeps/quickstart-<time> [--out docs]
Starts `mlflow server` on 127.0.0.1 for the sweep's embedded store, and ends it (by PID) when done.
"""

import argparse
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, timeout_s: float = 120) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout_s} s")


def close_assistant(page) -> None:
    """Closes the MLflow Assistant side panel (it covers a third of the page): its close button is the last button
    of the panel's header, at the window's top right."""
    if page.get_by_text("MLflow Assistant", exact=True).count():
        page.mouse.click(1564, 35)
        page.wait_for_timeout(800)


def main() -> None:
    from mlflow.tracking import MlflowClient
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser()
    parser.add_argument("sweep", type=Path, help="the sweep's folder (holds mlflow.db and summary.json)")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args()
    sweep = args.sweep.resolve()
    uri = f"sqlite:///{sweep / 'mlflow.db'}"
    summary = json.loads((sweep / "summary.json").read_text())
    client = MlflowClient(uri)
    parent = client.search_runs([e.experiment_id for e in client.search_experiments()],
                                f"tags.`stylediscover.sweep` = '{summary['sweep']}' and "
                                "tags.`stylediscover.role` = 'sweep'")[0]
    port = free_port()
    server = subprocess.Popen([str(Path(sys.executable).with_name("mlflow")), "server", "--backend-store-uri", uri,
                               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/health")
        args.out.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM)
            page = browser.new_page(viewport={"width": 1600, "height": 900})
            experiment = parent.info.experiment_id
            page.goto(f"{base}/#/experiments/{experiment}/runs", wait_until="load")
            page.wait_for_timeout(6000)
            close_assistant(page)
            page.get_by_text(summary["sweep"]).first.locator("xpath=preceding::*[name()='svg'][1]").click()
            page.wait_for_timeout(1500)
            page.screenshot(path=str(args.out / "mlflow-runs.png"))
            page.goto(f"{base}/#/experiments/{experiment}/runs/{parent.info.run_id}", wait_until="load")
            page.wait_for_timeout(6000)
            close_assistant(page)
            page.mouse.move(600, 500)
            page.mouse.wheel(0, 500)
            page.wait_for_timeout(1000)
            page.screenshot(path=str(args.out / "mlflow-parent-run.png"))
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"written {args.out / 'mlflow-runs.png'} and {args.out / 'mlflow-parent-run.png'}")


if __name__ == "__main__":
    main()
