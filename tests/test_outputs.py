"""Outputs are never overwritten unless asked, unwritable ones are refused before the work, and numeric options
out of range end in a usage error, not a traceback."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from stylediscover.cli import main

EXPORT = Path(__file__).parent.parent / "evaluation" / "results" / "quickstart-best" / "directions.safetensors"


def traverse(out: Path, *extra: str):
    return CliRunner().invoke(main, ["traverse", str(EXPORT), "--strengths", "3", "--out", str(out), *extra])


def test_existing_output_needs_force(tmp_path):
    out = tmp_path / "grid.png"
    out.write_bytes(b"precious")
    refused = traverse(out)
    assert refused.exit_code == 2
    assert refused.output.strip() == f"error: {out}: --out: exists; pass --force to overwrite it"
    assert out.read_bytes() == b"precious"
    assert traverse(out, "--force").exit_code == 0
    assert out.read_bytes().startswith(b"\x89PNG")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png"]


def test_unwritable_output_is_refused_before_the_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = traverse(blocker / "grid.png")
    assert result.exit_code == 2 and "is not a writable folder" in result.output


@pytest.mark.parametrize("args", [
    ["traverse", str(EXPORT), "--strengths", "1", "--out", "x.png"],
    ["project", "img.png", "--steps", "0", "--out", "x.npz"],
    ["predictor", "train", "--images", ".", "--csv", "labels.csv", "--epochs", "0", "--out", "p.safetensors"],
    ["predictor", "train", "--images", ".", "--csv", "labels.csv", "--batch", "0", "--out", "p.safetensors"],
])
def test_out_of_range_numbers_are_usage_errors(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "Traceback" not in result.output and "Invalid value" in result.output
    assert not list(tmp_path.iterdir())

