"""Every `python` and `bash` block of README.md (and docs/*.md) marked runnable (an HTML comment starting
`<!-- runnable` on the line before its fence) runs against a tiny finished sweep: the block runs in a folder whose
runs/sweeps/ holds that sweep, named as the quickstart names its sweeps (`quickstart-<time>` in a block is its name),
in the quickstart's MLflow experiment; `stylediscover` and `mlflow` are this environment's."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import tiny_spec

ROOT = Path(__file__).parents[1]
MARK = "<!-- runnable"
NAME = "quickstart-20260101-000000"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def runnable_blocks(path: Path) -> list[tuple[str, str, int]]:
    """(language, code, line) of each block marked runnable in the markdown file `path`."""
    text = path.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = text[:max(match.start() - 1, 0)].rsplit("\n", 1)[-1]  # the line right before the fence
        if before.startswith(MARK):
            blocks.append((match.group(1), match.group(2), line))
    return blocks


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


SNIPPETS = [(path, *block) for path in documents() for block in runnable_blocks(path)]


def test_readme_marks_snippets_and_only_shell_or_python():
    assert any(path.name == "README.md" for path, *_ in SNIPPETS), "README.md marks no runnable snippet"
    assert {language for _, language, _, _ in SNIPPETS} <= {"python", "bash"}


def test_marker_must_be_right_before_the_fence(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("<!-- runnable -->\n```python\nprint(1)\n```\n\n<!-- runnable -->\n\n```bash\necho 2\n```\n"
                    "```python\nprint(3)\n```\n")
    assert runnable_blocks(page) == [("python", "print(1)\n", 2)]


@pytest.fixture(scope="module")
def quickstart_folder(tiny_world, tmp_path_factory) -> Path:
    """A folder whose runs/sweeps/ holds a finished tiny sweep named like the quickstart's, in its experiment, run by
    `stylediscover sweep run` in a process of its own (its own local Ray)."""
    root = tmp_path_factory.mktemp("readme")
    spec = tiny_spec(tiny_world, root / "runs" / "sweeps", name=NAME, num_samples=2,
                     mlflow={"experiment": "stylediscover-quickstart"})
    spec["search_space"]["navigator.attention"]["values"] = ["softmax", "cumax"]
    (root / "spec.yaml").write_text(yaml.safe_dump(spec))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(root), "RAY_TMPDIR": str(root),
           "RAY_USAGE_STATS_ENABLED": "0"}
    run = subprocess.run([sys.executable, "-m", "stylediscover.cli", "sweep", "run", "spec.yaml"], cwd=root, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return root


@pytest.mark.parametrize("path, language, code, line", SNIPPETS,
                         ids=[f"{p.name}:{line}" for p, _, _, line in SNIPPETS])
def test_snippet_runs(path, language, code, line, quickstart_folder):
    code = code.replace("quickstart-<time>", NAME)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", code] if language == "python" else ["bash", "-euo", "pipefail", "-c", code]
    done = subprocess.run(command, cwd=quickstart_folder, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{path.name}:{line} failed:\n{code}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
