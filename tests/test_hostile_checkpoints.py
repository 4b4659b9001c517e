"""A hostile corpus (tests/hostile_corpus.py) against `generators convert`: every file ends in one line naming it and
what is wrong, exit status 2, no traceback, nothing executed, nothing written, and memory bounded by the file."""

import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner
from hostile_corpus import build

from stylediscover.cli import main

MEMORY_CASES = ["stride0.pkl", "huge_storage_claim.pkl", "z_dim_huge.pkl", "deep.pkl", "many_opcodes.pkl",
                "rosinality_stride0_zip.pt", "rosinality_stride0_legacy.pt", "rosinality_huge_claim_legacy.pt",
                "wide_216_bytes.safetensors"]


@pytest.fixture(scope="module")
def corpus(layout_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    native = root / "genuine.safetensors"
    assert CliRunner().invoke(main, ["generators", "convert", str(layout_dir / "rosinality.pt"),
                                     "--out", str(native)]).exit_code == 0
    marker = root / "marker"
    return build(layout_dir, root / "files", native, marker), marker


def test_every_hostile_file_is_refused_in_one_line(corpus, tmp_path):
    cases, marker = corpus
    assert len(cases) >= 35
    problems = []
    for path, words in cases:
        out = tmp_path / f"{path.name}.safetensors"
        result = CliRunner().invoke(main, ["generators", "convert", str(path), "--out", str(out)])
        lines = result.output.strip().splitlines()
        if (result.exit_code != 2 or len(lines) != 1 or not lines[0].startswith(f"error: {path}")
                or words not in lines[0] or out.exists() or result.exc_info[0] is not SystemExit):
            problems.append(f"{path.name}: exit {result.exit_code}, {result.output.strip()[:300]!r} "
                            f"({result.exc_info[0].__name__})")
    assert not marker.exists()
    assert not problems, "\n".join(problems)


def peak_rss_mb(args: list[str], tmp_path) -> tuple[int, str, float]:
    """Exit status, stderr and peak RSS (MB) of `stylediscover ARGS` in a fresh process."""
    rss = tmp_path / "rss"
    script = textwrap.dedent(f"""
        import resource, sys
        from stylediscover.cli import main
        try:
            main({args!r})
        finally:
            open({str(rss)!r}, "w").write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    return run.returncode, run.stderr, int(rss.read_text()) / 1024


def test_refusals_stay_within_a_few_times_the_file_size(corpus, tmp_path):
    """Against a baseline (the same command refusing a 20-byte file), no refusal costs more than 4× its file size
    plus 64 MB; most of these files claim gigabytes."""
    cases = dict((path.name, path) for path, _ in corpus[0])
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"\x80\x04not a pickle at all")
    code, _, baseline = peak_rss_mb(["generators", "convert", str(junk), "--out", str(tmp_path / "j")], tmp_path)
    assert code == 2
    for name in MEMORY_CASES:
        path = cases[name]
        code, stderr, peak = peak_rss_mb(["generators", "convert", str(path), "--out", str(tmp_path / "o")],
                                         tmp_path)
        assert code == 2 and "Traceback" not in stderr, stderr
        assert peak - baseline < 4 * path.stat().st_size / 2**20 + 64, (name, peak, baseline)
