"""A real sweep on a local Ray with Optuna and the embedded MLflow store, then resume, status, best, export."""

import json

import optuna
import pytest
import yaml
from click.testing import CliRunner
from conftest import tiny_spec
from mlflow.tracking import MlflowClient

from stylediscover.cli import main
from stylediscover.directions import load_directions
from stylediscover.heldout import heldout_metrics, heldout_seeds
from stylediscover.sweep.runner import SweepFailed, resume_sweep, run_sweep
from stylediscover.sweep.spec import load_spec


def child_runs(spec):
    client = MlflowClient(spec.tracking_uri)
    exp = client.get_experiment_by_name(spec.mlflow.experiment)
    runs = client.search_runs([exp.experiment_id])
    return client, [r for r in runs if r.data.tags.get("stylediscover.role") == "trial"], \
        [r for r in runs if r.data.tags.get("stylediscover.role") == "sweep"]


def test_local_sweep_tracks_selects_exports_and_resumes(tiny_world, tmp_path, ray_env):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(tiny_spec(tiny_world, tmp_path / "store",
                                             scheduler={"type": "asha", "grace_period": 1, "reduction_factor": 2})))
    spec = load_spec(path)
    summary = run_sweep(spec)

    client, trials, parents = child_runs(spec)
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(trials) == 3
    for run in trials:
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert run.info.status in ("FINISHED", "KILLED")
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "score")]
        assert steps == sorted(set(steps)) and steps[0] == 2
        assert [m.step for m in client.get_metric_history(run.info.run_id, "n_discovered")] == steps
        finished = steps[-1] == 6
        assert (run.info.status, run.data.tags["stylediscover.outcome"]) == (
            ("FINISHED", "finished") if finished else ("KILLED", "stopped_early"))
        assert run.data.params["navigator.num_directions"] == "3" and "loss.form" in run.data.params
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"pictures", "best"} <= artifacts
        history = [m.value for m in sorted(client.get_metric_history(run.info.run_id, "objective"),
                                           key=lambda m: m.step)]
        best_so_far = sorted(client.get_metric_history(run.info.run_id, "best_objective"), key=lambda m: m.step)
        assert [m.value for m in best_so_far] == [max(history[:i + 1]) for i in range(len(history))]

    assert parents[0].data.tags["best.trial_id"] == summary["trial_id"]
    assert {a.path for a in client.list_artifacts(parents[0].info.run_id)} >= {"sweep.png", "directions.json"}
    best = load_directions(spec.storage / "best" / "directions.safetensors")
    assert best.manifest["config"]["navigator"]["attention"] != "none"
    assert (spec.storage / "best" / "traversal.png").exists() and (spec.storage / "best" / "attention.png").exists()
    assert best.manifest["metrics"]["step"] == summary["step"] and best.manifest["metrics"]["score"] == summary["score"]
    heldout = json.loads((spec.storage / "best" / "heldout.json").read_text())
    validation_seed = best.manifest["config"]["eval"]["metrics"]["seed"]
    assert heldout["seeds"] == summary["heldout"]["seeds"] == heldout_seeds(validation_seed, 2)
    assert validation_seed not in heldout["seeds"] and heldout["samples"] == 8
    assert len(heldout["responses"]) == 2 and len(heldout["responses"][0]) == 3
    block = best.manifest["heldout"]
    assert block["factors"] == heldout["factors"] and len(block["directions"]) == 3 and "responses" not in block
    assert 0 <= summary["heldout"]["score_mean"] <= 1
    for name, value in heldout_metrics(summary["heldout"]).items():
        assert parents[0].data.metrics[name] == pytest.approx(value)
    study = optuna.load_study(study_name="tiny", storage=spec.study_storage)
    assert len(study.trials) == 3

    again = resume_sweep("tiny", str(tmp_path / "store"))
    assert again["trial_id"] == summary["trial_id"]
    _, trials_after, parents_after = child_runs(spec)
    assert len(trials_after) == 3 and len(parents_after) == 1

    runner = CliRunner()
    status = runner.invoke(main, ["sweep", "status", "tiny", "--storage-path", str(tmp_path / "store")])
    assert status.exit_code == 0 and status.output.count("\n") == 4, status.output
    best_out = runner.invoke(main, ["sweep", "best", "tiny", "--storage-path", str(tmp_path / "store")])
    assert summary["trial_id"] in best_out.output and "on held-out test codes (2 sets of 8)" in best_out.output, \
        best_out.output
    out = tmp_path / "exported"
    exported = runner.invoke(main, ["sweep", "export", "tiny", "--storage-path", str(tmp_path / "store"),
                                    "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    exported_manifest = json.loads((out / "directions.json").read_text())
    assert exported_manifest["metrics"]["score"] == summary["score"]
    assert exported_manifest["heldout"] == block and (out / "heldout.json").is_file()


def test_existing_sweep_name_is_refused_before_work(tiny_world, tmp_path):
    import pytest

    from stylediscover.errors import InputError

    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(tiny_spec(tiny_world, tmp_path / "store")))
    spec = load_spec(path)
    spec.storage.mkdir(parents=True)
    (spec.storage / "spec.json").write_text("{}")
    with pytest.raises(InputError, match="already exists here; continue it with `stylediscover sweep resume tiny`"):
        run_sweep(spec)


def test_failing_trials_end_as_failed_runs(tiny_world, tmp_path, ray_env):
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes((tiny_world / "g.safetensors").read_bytes()[:-200])
    spec_dict = tiny_spec(tiny_world, tmp_path / "store", name="broken", num_samples=1, max_failures=0,
                          search={"algorithm": "random"})
    spec_dict["base"]["generator"] = str(broken)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec_dict))
    spec = load_spec(path)
    with pytest.raises(SweepFailed, match=r"no trial could be selected|failed") as failure:
        run_sweep(spec)
    assert "broken.safetensors" in str(failure.value)
    assert "trial_id" not in json.loads((spec.storage / "summary.json").read_text())
    client, trials, parents = child_runs(spec)
    assert [(r.info.status, r.data.tags["stylediscover.outcome"]) for r in trials] == [("FAILED", "failed")]
    assert "broken.safetensors" in trials[0].data.tags["stylediscover.error"]
    assert parents[0].info.status == "FAILED"
