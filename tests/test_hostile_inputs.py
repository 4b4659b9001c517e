"""The hostile input corpus (tests/hostile_inputs.py) against traverse, evaluate, explore, edit, edit --recipe and
generators convert: every input ends in one line naming its file and what is wrong, exit status 2, no traceback,
nothing written, within 20 s, and the refusing process's peak memory stays within 4× the input's size + 64 MB of the
same command refusing a junk file. Commands run in children forked from one process (tests/hostile_runner.py), so
torch is imported once."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hostile_inputs import OUT, base_recipe, build

RUNNER = Path(__file__).with_name("hostile_runner.py")


def family(args: list[str]) -> str:
    """Which baseline a command is measured against."""
    if args[0] == "generators":
        return "convert"
    if args[0] == "edit":
        return "recipe" if "--recipe" in args else "edit"
    return args[0]


def baselines(root: Path, good_export: Path) -> dict[str, list[str]]:
    """Each family's command refusing a junk input of a few bytes (a recipe's junk is its latent, refused once the
    generator and directions have loaded, so the recipes that get that far are measured against the same work)."""
    (root / "junk").mkdir()
    (root / "junk" / "directions.json").write_text("{}")
    (root / "junk" / "directions.safetensors").write_bytes(b"junk")
    for name in ("latent.npz", "ckpt.pkl"):
        (root / name).write_bytes(b"\x80\x04junk")
    recipe = {k: v for k, v in base_recipe(good_export).items() if k != "samples"}
    (root / "recipe.json").write_text(json.dumps(recipe | {"latent": {"name": "x.png", "npz_base64": "AAAA"}}))
    return {"traverse": ["traverse", str(root / "junk" / "directions.safetensors"), "--out", OUT],
            "recipe": ["edit", "--recipe", str(root / "recipe.json"), "--out", OUT],
            "edit": ["edit", str(root / "latent.npz"), "--directions", str(good_export), "--direction", "0",
                     "--out", OUT],
            "convert": ["generators", "convert", str(root / "ckpt.pkl"), "--out", OUT],
            "evaluate": ["evaluate", str(root / "junk" / "directions.safetensors")],
            "explore": ["explore", str(root / "junk"), "--static", OUT]}


def files_under(root: Path) -> set[str]:
    return {str(p) for p in root.rglob("*")}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """(cases, their results, the baselines' results by family, the output folder); runs everything once."""
    root = tmp_path_factory.mktemp("hostile_inputs")
    cases = build(root / "inputs")
    (root / "baseline").mkdir()
    base = baselines(root / "baseline", root / "inputs" / "good" / "directions.safetensors")
    out = root / "out"
    out.mkdir()
    before = files_under(root / "inputs")
    commands = [[a.replace(OUT, str(out / f"{c.name}.png")) for a in c.args] for c in cases]
    commands += [[a.replace(OUT, str(out / f"baseline_{f}.png")) for a in args] for f, args in base.items()]
    (root / "commands.json").write_text(json.dumps(commands))
    subprocess.run([sys.executable, str(RUNNER), str(root / "commands.json"), str(root / "results.json")],
                   check=True, cwd=Path(__file__).parents[1], timeout=900)
    results = json.loads((root / "results.json").read_text())
    assert files_under(root / "inputs") == before, "a command wrote beside its inputs"
    return cases, results[:len(cases)], dict(zip(base, results[len(cases):])), out


def test_the_corpus_covers_every_kind(corpus):
    cases = corpus[0]
    assert len(cases) >= 60
    kinds = {c.name.split("_")[0] for c in cases}
    assert kinds == {"manifest", "directions", "special", "recipe", "latent", "checkpoint"}
    assert {family(c.args) for c in cases} == {"traverse", "evaluate", "explore", "edit", "recipe", "convert"}


def test_every_input_is_refused_in_one_line_with_status_2(corpus):
    cases, results, base, out = corpus
    assert all(r["code"] == 2 for r in base.values()), base
    problems = []
    for case, r in zip(cases, results):
        lines = r["output"].strip().splitlines()
        named = any(lines[0].startswith(f"error: {p}") for p in [*case.reads, *map(str, case.args[1:])]) \
            if lines else False
        if r["code"] != 2 or len(lines) != 1 or not named or case.words not in lines[0] or "Traceback" in r["output"]:
            problems.append(f"{case.name}: exit {r['code']}, {r['output'].strip()[-400:]!r}")
    assert not problems, "\n".join(problems)
    assert not list(out.iterdir()), "a refused command wrote its output"


def test_refusals_are_bounded_in_memory_and_time(corpus):
    cases, results, base, _ = corpus
    problems = []
    for case, r in zip(cases, results):
        size_mb = sum(p.stat().st_size for p in case.reads if p.is_file()) / 2**20
        over = r["rss_mb"] - base[family(case.args)]["rss_mb"]
        if over > 4 * size_mb + 64 or r["seconds"] > 20:
            problems.append(f"{case.name}: {over:.0f} MB over its baseline for {size_mb:.1f} MB of input, "
                            f"{r['seconds']:.1f} s")
    assert not problems, "\n".join(problems)
