"""The explorer driven in headless Chromium (Debian's, through Playwright): sliders edit the right pixels and combine,
trials side by side, an upload projected and edited, recipes reproduced exactly by `edit --recipe`, bad input
answered in the page, two users at once, the static page from file://.

Set EXPLORER_SCREENSHOT=docs/explorer.png to refresh the README's screenshot.
"""

import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import explore_world as world
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from stylediscover.cli import main

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH and none could be installed (`make test` "
                                "installs Debian's: apt-get install chromium)")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`stylediscover explore demo` over a sweep of two trials, on a free port; yields (url, folder)."""
    root = tmp_path_factory.mktemp("explore")
    world.fake_sweep(root / "sweeps")
    log = root / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "stylediscover.cli", "explore", "demo", "--storage-path",
                                 str(root / "sweeps"), "--port", "0", "--steps", "20",
                                 "--root", str(root)], stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 120
        while not (match := re.search(r"http://127\.0\.0\.1:\d+/", log.read_text())):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield match.group(0), root
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert "Traceback" not in log.read_text(), log.read_text()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def open_page(browser, url: str):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 980})
    page = context.new_page()
    page.goto(url)
    page.wait_for_function("document.querySelector('#panel-0').dataset.renders >= 1")
    return page


@pytest.fixture
def page(browser, server):
    page = open_page(browser, server[0])
    yield page
    page.context.close()


def renders(page, slot: int = 0) -> int:
    return page.evaluate(f"window.explorer.panels[{slot}].renders")


def settle(page, slots: dict[int, int]) -> None:
    """Waits until each panel has shown a render after the count given, and nothing is pending."""
    page.wait_for_function("counts => Object.entries(counts).every(([s, n]) => window.explorer.panels[s].renders > n)"
                           " && window.explorer.idle()", arg={str(k): v for k, v in slots.items()})


def tiles(page, slot: int = 0) -> list[np.ndarray]:
    sources = page.eval_on_selector_all(f"#panel-{slot} .grid img", "e => e.map(i => i.src)")
    return [world.decode_data_uri(src) for src in sources]


def move(page, slot: int, attribute: str, *values: float, quality: str = "clean") -> str:
    """Sets the first `quality` slider of `attribute` to each value in turn as a user would (input events, in one
    task: a fast drag); returns its label."""
    return page.evaluate("""([slot, attribute, values, quality]) => {
        const el = document.querySelector(`#panel-${slot} .slider.${quality}[data-attribute="${attribute}"]`);
        const input = el.querySelector("input");
        for (const value of values) {
            input.value = value;
            input.dispatchEvent(new Event("input", {bubbles: true}));
        }
        return el.querySelector(".name").textContent;
    }""", [slot, attribute, values, quality])


def set_and_settle(page, moves: list[tuple], slots=(0,)) -> None:
    before = {s: renders(page, s) for s in slots}
    for m in moves:
        move(page, *m)
    settle(page, before)


def download(page, slot: int, button: str, path: Path) -> Path:
    with page.expect_download() as info:
        page.click(f"#panel-{slot} .{button}")
    kind = "edit" if button == "download-image" else "recipe"
    name = info.value.suggested_filename  # what was edited: edit-selected-wall_huex2+floor_huex2.png
    assert re.fullmatch(kind + r"-[\w.-]+-(unedited|([a-z_]+x-?[\d.]+\+?)+)\.(png|json)", name), name
    info.value.save_as(path)
    return path


def recipe_reproduces(page, slot: int, tmp_path: Path) -> None:
    image = download(page, slot, "download-image", tmp_path / "page.png")
    recipe = download(page, slot, "download-recipe", tmp_path / "recipe.json")
    out = tmp_path / "cli.png"
    result = CliRunner().invoke(main, ["edit", "--recipe", str(recipe), "--out", str(out), "--force"])
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.asarray(Image.open(out).convert("RGB")), np.asarray(Image.open(image).convert("RGB")))


def test_a_clean_slider_edits_its_region_and_directions_combine(page, tmp_path):
    classes = page.eval_on_selector_all("#panel-0 .slider", "e => e.map(s => s.classList[1])")
    assert len(classes) == 16 and classes == sorted(classes, key=("clean", "entangled", "inactive").index)
    start = tiles(page)
    set_and_settle(page, [(0, "wall_hue", 2)])
    wall = tiles(page)
    for a, b in zip(start, wall):
        wall_change, rest_change = world.wall_and_rest(a, b)
        assert wall_change > 15 and wall_change > 3 * rest_change, (wall_change, rest_change)
    set_and_settle(page, [(0, "floor_hue", 2)])
    both = tiles(page)
    for a, b in zip(wall, both):  # adding the floor direction changes the floor, not the edited wall
        wall_change, rest_change = world.wall_and_rest(a, b)
        assert rest_change > 10 and rest_change > 3 * wall_change, (wall_change, rest_change)
    recipe_reproduces(page, 0, tmp_path)
    seeds = page.input_value("#seeds")
    before = renders(page)
    page.click("#new-samples")
    settle(page, {0: before})
    assert page.input_value("#seeds") != seeds and not np.array_equal(tiles(page)[0], both[0])


def test_trials_side_by_side(page, tmp_path):
    labels = page.eval_on_selector_all("#export-1 option", "e => e.map(o => o.value)")
    assert labels == ["", "selected", "trial-5b2a1_00000", "trial-5b2a1_00001"]
    before = renders(page, 1)
    page.select_option("#export-1", "trial-5b2a1_00001")
    settle(page, {1: before})
    left, right = tiles(page, 0), tiles(page, 1)
    assert all(np.array_equal(a, b) for a, b in zip(left, right))  # same generator, same samples
    set_and_settle(page, [(0, "wall_hue", 2.5), (0, "object_hue", -1.5)], slots=(0, 1))  # linked sliders
    assert page.eval_on_selector_all("#panel-1 .slider input", "e => e.filter(i => i.value != 0).length") == 2
    ranks = page.evaluate("""() => {  // the n-th direction of an attribute drives the n-th on the other side
        const [a, b] = [0, 1].map((s) => [...document.querySelectorAll(`#panel-${s} .slider`)]);
        const rank = (sliders, el) => sliders.filter((x) => x.dataset.attribute === el.dataset.attribute).indexOf(el);
        const moved = (sliders) => sliders.filter((x) => x.querySelector("input").value != 0);
        return [moved(a).map((el) => rank(a, el)), moved(b).map((el) => rank(b, el))];
    }""")
    assert ranks[0] == ranks[1], ranks
    for a, b, c in zip(left, tiles(page, 0), tiles(page, 1)):  # the second trial's directions are negated
        assert all(world.wall_and_rest(x, y)[0] > 15 for x, y in ((a, b), (a, c), (b, c)))
    shot = tmp_path / "explorer.png"
    page.screenshot(path=shot)
    if os.environ.get("EXPLORER_SCREENSHOT"):
        shutil.copy(shot, os.environ["EXPLORER_SCREENSHOT"])


def test_an_upload_is_projected_then_edited(page, tmp_path):
    page.fill("#steps", "20")
    page.set_input_files("#upload", str(world.render_png(tmp_path / "render.png")))
    page.wait_for_function("document.querySelector('#source-upload').checked", timeout=120_000)
    assert page.eval_on_selector("#progress", "p => p.value") == 1
    page.wait_for_function("window.explorer.idle()")
    projected = tiles(page)
    assert len(projected) == 1 and projected[0].shape == (32, 32, 3)
    set_and_settle(page, [(0, "wall_hue", -2)])
    assert world.wall_and_rest(projected[0], tiles(page)[0])[0] > 10
    recipe_reproduces(page, 0, tmp_path)
    assert "latent" in json.loads((tmp_path / "recipe.json").read_text())


def test_bad_input_is_answered_in_the_page(page, server, tmp_path):
    def message_after(action) -> str:
        page.evaluate("document.querySelector('#message').textContent = ''")
        action()
        page.wait_for_function("document.querySelector('#message').textContent !== ''"
                               " && !document.querySelector('#message').textContent.endsWith('…')")
        return page.text_content("#message")

    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    assert "notes.png: not an image" in message_after(lambda: page.set_input_files("#upload", str(text)))
    big = tmp_path / "big.png"
    with open(big, "wb") as f:
        f.truncate(21 << 20)
    assert "big.png: 21.0 MB is over the 20 MB upload limit" in message_after(
        lambda: page.set_input_files("#upload", str(big)))

    def add(path: Path):
        return lambda: (page.fill("#add-path", str(path)), page.click("#add-export button"))

    served = server[1]  # a --root of the server
    assert "cannot read directions" in message_after(add(world.corrupt_export(served / "corrupt")))
    wrong = world.mismatched_export(served / "wrong")
    assert "deltas: shape [16, 4, 128]" in message_after(add(wrong))
    assert "not an export this explorer opens" in message_after(add(served / "missing"))
    assert "not an export this explorer opens" in message_after(add(tmp_path / "outside"))
    good = shutil.copytree(world.QUICKSTART, served / "quickstart-copy")
    assert "added" in message_after(add(good))
    set_and_settle(page, [(0, "wall_hue", 1)])  # the server still renders


def test_upload_size_is_limited_while_streaming(server):
    host, port = urllib.parse.urlsplit(server[0]).netloc.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("POST", "/api/upload?name=big.png&exports=selected")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.putheader("Content-Type", "application/octet-stream")
    conn.endheaders()
    chunk = b"\0" * (1 << 20)
    try:
        for _ in range(22):
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        conn.send(b"0\r\n\r\n")
        assert conn.getresponse().status == 413
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered 413 and closed the connection before the client finished sending
    conn.close()
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("POST", "/api/upload?name=big.png&exports=selected", headers={"Content-Length": str(30 << 20),
                                                                                  "Content-Type": "image/png"})
    assert conn.getresponse().status == 413
    conn.close()
    with urllib.request.urlopen(server[0] + "api/config") as response:  # still serving
        assert json.load(response)["max_upload"] == 20 << 20


def test_two_users_at_once(browser, server):
    pages = [open_page(browser, server[0]) for _ in range(2)]
    try:
        before = [renders(p) for p in pages]
        for values in np.linspace(0.2, 2.5, 12).reshape(3, 4).tolist():  # both drag at once
            move(pages[0], 0, "wall_hue", *values)
            move(pages[1], 0, "wall_hue", *(-v for v in values))
        for p, n in zip(pages, before):
            settle(p, {0: n})
            stats = p.evaluate("window.explorer.stats")
            assert stats["requests"] < stats["inputs"] == 12  # coalesced: no queue of stale renders
        for p in pages:
            state = p.evaluate("JSON.stringify(window.explorer.panels[0].body())")
            request = urllib.request.Request(server[0] + "api/render", data=state.encode(), method="POST",
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request) as response:
                fresh = [world.decode_data_uri(uri) for uri in json.load(response)["images"]]
            assert all(np.array_equal(a, b) for a, b in zip(tiles(p), fresh))  # the latest state is on screen
            assert p.text_content("#panel-0 .panel-message") == ""
        assert not np.array_equal(tiles(pages[0])[0], tiles(pages[1])[0])
    finally:
        for p in pages:
            p.context.close()


def test_static_page_works_from_a_file_url(browser, tmp_path):
    from stylediscover.explore.static import write_static_explorer

    out = write_static_explorer(world.QUICKSTART, tmp_path / "explorer.html", seeds=(0, 1), frames=5)
    context = browser.new_context()
    requests = []
    context.on("request", lambda r: requests.append(r.url))
    page = context.new_page()
    page.goto(out.as_uri())
    first = page.locator("img").first
    start = first.get_attribute("src")
    page.locator("input[type=range]").first.evaluate(
        "i => { i.value = 4; i.dispatchEvent(new Event('input', {bubbles: true})); }")
    assert first.get_attribute("src") != start and page.locator("output").first.text_content() == "×3.00"
    assert page.locator("img").count() == 16
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
    context.close()
