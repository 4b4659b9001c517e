"""The explorer without a browser: PATHs, refusals, recipes reproduced by `edit --recipe`, the static page."""

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner
from explore_world import QUICKSTART, copy_export, corrupt_export, fake_sweep, mismatched_export, wall_and_rest
from PIL import Image

from stylediscover.cli import main
from stylediscover.errors import InputError
from stylediscover.explore.engine import GeneratorPool, LoadedExport
from stylediscover.explore.recipe import make_recipe
from stylediscover.explore.sources import resolve_exports
from stylediscover.imaging import grid, pixels


@pytest.fixture(scope="module")
def export() -> LoadedExport:
    return LoadedExport(resolve_exports(str(QUICKSTART), "runs/sweeps")[0], GeneratorPool())


def test_paths_resolve_to_exports(tmp_path):
    folder = fake_sweep(tmp_path / "sweeps")
    by_name = resolve_exports("demo", tmp_path / "sweeps")
    assert [r.id for r in by_name] == ["selected", "trial-5b2a1_00000", "trial-5b2a1_00001"]
    assert by_name[0].label.startswith("selected: 5b2a1_00000 (6 found")
    metrics = folder / "best" / "metrics.json"
    metrics.write_text(json.dumps(json.loads(metrics.read_text()) | {"robust_n_discovered": 5, "weakest_margin": 0.42}))
    assert resolve_exports("demo", tmp_path / "sweeps")[0].label.startswith(
        "selected: 5b2a1_00000 (robustly 5, weakest margin 0.42; 6 found")
    assert by_name[2].path.parts[-3] == "checkpoint_000001"  # a trial's last checkpoint
    assert [r.path for r in resolve_exports(str(folder), "elsewhere")] == [r.path for r in by_name]
    assert resolve_exports(str(QUICKSTART), "x")[0].path == QUICKSTART / "directions.safetensors"
    assert resolve_exports(str(QUICKSTART / "directions.safetensors"), "x")[0].path.name == "directions.safetensors"
    (tmp_path / "sweeps" / "empty").mkdir()
    (tmp_path / "sweeps" / "empty" / "spec.json").write_text("{}")
    with pytest.raises(InputError, match="no exported directions yet"):
        resolve_exports("empty", tmp_path / "sweeps")


@pytest.mark.parametrize("case, problem", [
    ("missing", "no such file or folder, and no sweep of that name"),
    ("folder", "neither an export folder"),
    ("text", "not a directions file"),
    ("corrupt", "cannot read directions"),
    ("mismatched", "deltas: shape [16, 4, 128], the manifest and generator need [16, 8, 128]"),
])
def test_cli_refuses_bad_paths_in_one_line(tmp_path, case, problem):
    path = {"missing": lambda: tmp_path / "nothing", "folder": lambda: tmp_path,
            "text": lambda: (tmp_path / "notes.txt", (tmp_path / "notes.txt").write_text("hi"))[0],
            "corrupt": lambda: corrupt_export(tmp_path / "corrupt"),
            "mismatched": lambda: mismatched_export(tmp_path / "mismatched")}[case]()
    result = CliRunner().invoke(main, ["explore", str(path), "--port", "0"])
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert result.output.startswith(f"error: {path}") and problem in result.output


def test_cli_refuses_a_busy_port(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["explore", str(QUICKSTART), "--port", str(port)])
    assert result.exit_code == 2 and result.output.startswith(f"error: --port: cannot listen on 127.0.0.1:{port}")


def test_entries_are_rated_and_a_clean_wall_direction_edits_the_wall(export):
    directions = export.summary()["directions"]
    qualities = [d["quality"] for d in directions]
    assert qualities == sorted(qualities, key=("clean", "entangled", "inactive").index)
    assert export.summary()["legend"].startswith("Row label '5 wall_hue 0.52 x38.6 L0-1 clean'")
    wall = next(d for d in directions if d["attribute"] == "wall_hue" and d["quality"] == "clean")
    assert re.fullmatch(r"\d+ wall_hue [\d.]+ x[\d.]+ L\d+-\d+ clean", wall["label"])
    before = export.render_seeds([0, 1, 2, 3], 0.7, {})
    after = export.render_seeds([0, 1, 2, 3], 0.7, {wall["index"]: 2.0})
    wall_change, rest_change = wall_and_rest(pixels(grid(before[:1])), pixels(grid(after[:1])))
    assert wall_change > 15 and wall_change > 3 * rest_change


def test_a_render_overtaken_by_a_newer_one_of_its_panel_is_skipped():
    from stylediscover.explore.server import Explorer, RenderRequest

    explorer = Explorer(resolve_exports(str(QUICKSTART), "x"), "x", 10)
    try:
        state = {"export": "export", "samples": {"seeds": [0], "truncation": 0.7}, "client": "a", "strengths": {}}
        explorer.latest[("a", 0)] = 5
        assert explorer.tiles(RenderRequest.model_validate(state | {"seq": 4})) is None
        assert len(explorer.tiles(RenderRequest.model_validate(state | {"seq": 5}))) == 1
        assert len(explorer.tiles(RenderRequest.model_validate(state | {"seq": 1, "client": "b"}))) == 1
    finally:
        explorer.close()


def _write_recipe(tmp_path, recipe: dict):
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe))
    return path


def test_recipe_reproduces_the_image_exactly(export, tmp_path):
    multiples = {13: 1.5, 7: -2.25, 4: 0.35}
    samples = {"seeds": [3, 9, 11, 40], "truncation": 0.55}
    expected = pixels(grid(export.render_seeds(samples["seeds"], samples["truncation"], multiples)))
    recipe = _write_recipe(tmp_path, make_recipe(export, multiples, samples=samples))
    out = tmp_path / "edited.png"
    result = CliRunner().invoke(main, ["edit", "--recipe", str(recipe), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.asarray(Image.open(out).convert("RGB")), expected)


def test_recipe_with_other_files_is_refused_in_one_line(export, tmp_path):
    recipe = make_recipe(export, {13: 1.0}, samples={"seeds": [0], "truncation": 0.7})
    other = copy_export(tmp_path / "other", negate=True) / "directions.safetensors"
    path = _write_recipe(tmp_path, recipe)
    result = CliRunner().invoke(main, ["edit", "--recipe", str(path), "--directions", str(other),
                                       "--out", str(tmp_path / "x.png")])
    assert result.exit_code == 2
    assert re.fullmatch(rf"error: {path}: directions\.sha256: {other} has sha256 \w+…, the recipe was made with "
                        r"\w+…\n", result.output)
    path = _write_recipe(tmp_path, recipe | {"generator": recipe["generator"] | {"sha256": "0" * 64}})
    result = CliRunner().invoke(main, ["edit", "--recipe", str(path), "--out", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and result.output.startswith(f"error: {path}: generator.sha256: ")
    path = _write_recipe(tmp_path, recipe | {"samples": None})
    result = CliRunner().invoke(main, ["edit", "--recipe", str(path), "--out", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and "give exactly one of samples and latent" in result.output
    result = CliRunner().invoke(main, ["edit", "--out", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and "or --recipe" in result.output


def test_static_explorer_is_self_contained(tmp_path):
    out = tmp_path / "explorer.html"
    result = CliRunner().invoke(main, ["explore", str(QUICKSTART), "--static", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    data = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', page, re.S).group(1))
    assert len(data["rows"]) == 16 and all(len(row["frames"]) == 13 for row in data["rows"])
    assert data["rows"][0]["frames"][0].startswith("data:image/png;base64,")
    assert not re.search(r"(src|href)=\"?(https?:)?//", page)
    result = CliRunner().invoke(main, ["explore", str(QUICKSTART), "--static", str(out)])
    assert result.exit_code == 2 and "exists; pass --force" in result.output
