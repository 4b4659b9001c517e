"""`stylediscover train` refuses what would fail later in one line, exit 2, before any work (nothing written)."""

import pytest
from click.testing import CliRunner

from stylediscover.cli import main

CONFIG = "configs/shapes-binary.yaml"


@pytest.mark.parametrize("args, words", [
    (["--set", "device=cuda"], "device: 'cuda', but this machine has no CUDA GPU"),
    (["--set", "lr=.inf"], "lr: Value error, not a finite number"),
    (["--set", "truncation_psi=.nan"], "truncation_psi: Value error, not a finite number"),
    (["--set", "betas=[0.0, .nan]"], "betas: Value error, not a finite number"),
    (["--set", "steps=100000000000"], "steps: Input should be less than or equal to 10000000"),
    (["--run-dir", "/proc/stylediscover-run"], "--run-dir: /proc/stylediscover-run cannot be made"),
    (["--run-dir", "{file}/run"], "is not a directory"),
])
def test_train_refuses_before_work(args, words, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    (tmp_path / "file").write_text("")
    args = [a.replace("{file}", str(tmp_path / "file")) for a in args]
    if "--run-dir" not in args:
        args += ["--run-dir", str(tmp_path / "run")]
    result = CliRunner().invoke(main, ["train", CONFIG, *args])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "Traceback" not in result.output, result.output
    assert words in result.output
    assert not (tmp_path / "run").exists()
