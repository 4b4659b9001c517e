"""`sweep list`: every sweep under a storage path, from its files alone, without writing anything."""

import json

from click.testing import CliRunner

from stylediscover.cli import main


def test_sweep_list_reads_files_only(tmp_path):
    done, running, broken = (tmp_path / n for n in ("quickstart-1", "quickstart-2", "broken"))
    for folder in (done, running, broken):
        folder.mkdir()
    (done / "spec.json").write_text(json.dumps({"num_samples": 4}))
    (done / "summary.json").write_text(json.dumps({"trial_id": "ab12", "n_discovered": 6, "score": 0.6,
                                                   "heldout": {"n_discovered_mean": 5.4, "n_discovered_std": 0.55,
                                                               "robust_n_discovered": 5}}))
    for i in range(4):
        (done / f"run_trial_ab12_{i}").mkdir()
    (running / "spec.json").write_text(json.dumps({"num_samples": 8}))
    (running / "run_trial_cd34_0").mkdir()
    (broken / "spec.json").write_text("{not json")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = CliRunner().invoke(main, ["sweep", "list", "--storage-path", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()}
    assert "4/4" in lines["quickstart-1"] and "finished" in lines["quickstart-1"]
    assert "ab12 (6 found, score 0.600); held-out 5.4 ± 0.6 found, 5 robustly" in lines["quickstart-1"]
    assert "1/8" in lines["quickstart-2"] and "running or interrupted" in lines["quickstart-2"]
    assert "unreadable" in lines["broken"]
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
