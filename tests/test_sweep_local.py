"""A real sweep on a local Ray with Optuna and the embedded MLflow store, then resume, status, best, export."""

import json
from dataclasses import asdict, replace
from pathlib import Path

import optuna
import pytest
import yaml
from click.testing import CliRunner
from conftest import tiny_spec
from mlflow.tracking import MlflowClient

from stylediscover.cli import main
from stylediscover.directions import load_directions
from stylediscover.heldout import heldout_metrics, heldout_seeds
from stylediscover.sweep.records import trial_records
from stylediscover.sweep.runner import SweepFailed, resume_sweep, run_sweep
from stylediscover.sweep.snapshot import read_snapshot
from stylediscover.sweep.spec import load_spec
from stylediscover.sweep.tracking import METRIC_NAMES


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
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "eval_score")]
        assert steps == sorted(set(steps)) and steps[0] == 2
        assert [m.step for m in client.get_metric_history(run.info.run_id, "eval_n_discovered")] == steps
        logged = [name for name in METRIC_NAMES.values() if "robust" not in name and "weakest" not in name]
        assert list(run.data.metrics) == logged == sorted(run.data.metrics), \
            "the selection metric is not first both as logged and by name"  # one validation set: no robust figures
        assert list(METRIC_NAMES.values()) == sorted(METRIC_NAMES.values())
        finished = steps[-1] == 6
        assert (run.info.status, run.data.tags["stylediscover.outcome"]) == (
            ("FINISHED", "finished") if finished else ("KILLED", "stopped_early"))
        assert run.data.params["navigator.num_directions"] == "3" and "loss.form" in run.data.params
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"images", "best"} <= artifacts
        selected = run.info.run_id == summary["run_id"]
        assert run.info.run_name == ("★ " if selected else "") + \
            f"{run.data.params['loss.form']} {run.data.params['navigator.attention']}"
        assert run.data.tags["stylediscover.selected"] == str(selected).lower()
        assert "Row label '5 wall_hue" in run.data.tags["mlflow.note.content"]
        assert run.data.tags["ray.trial_id"] == run.data.tags["stylediscover.trial_id"]
        images = {a.path for a in client.list_artifacts(run.info.run_id, "images")}
        assert any(i.startswith("images/traversal+step+2+") for i in images), images
        history = [m.value for m in sorted(client.get_metric_history(run.info.run_id, "eval_objective"),
                                           key=lambda m: m.step)]
        best_so_far = sorted(client.get_metric_history(run.info.run_id, "best_objective"), key=lambda m: m.step)
        assert [m.value for m in best_so_far] == [max(history[:i + 1]) for i in range(len(history))]

    parent = parents[0]
    assert parent.data.tags["selected.trial_id"] == summary["trial_id"]
    assert parent.data.tags["stylediscover.selected_run"] in {r.info.run_id for r in trials}
    assert parent.data.tags["mlflow.note.content"].count(f"runs/{summary['run_id']})") == 1
    assert parent.data.params["search.algorithm"] == "optuna_tpe" and parent.data.params["base.steps"] == "6"
    assert parent.data.metrics["selected_n_discovered"] == summary["n_discovered"]
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {
        "sweep.png", "summary.json", "spec.json", "export", "ranking.json", "trials.png"}
    assert_ranking_explains(spec, summary, parent, client)
    exported_files = {a.path.split("/", 1)[1] for a in client.list_artifacts(parent.info.run_id, "export")}
    assert {"directions.safetensors", "directions.json", "directions_npy", "explorer.html", "heldout.json",
            "traversal.png", "attention.png", "responses.json"} <= exported_files, exported_files
    assert client.get_experiment(parent.info.experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    assert summary["model"] == "models:/stylediscover-directions/1" == parent.data.tags["selected.model"]
    assert MlflowClient(spec.tracking_uri).get_model_version_by_alias("stylediscover-directions", "best").version == 1
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
    assert_snapshot_is_mlflow(spec)
    study = optuna.load_study(study_name="tiny", storage=spec.study_storage)
    assert len(study.trials) == 3
    assert {t.user_attrs["mlflow_run_id"] for t in study.trials} == {r.info.run_id for r in trials}
    assert {t.number for t in study.trials} == {int(r.data.tags["optuna.trial_number"]) for r in trials}

    before = _snapshot(tmp_path / "store", spec)
    again = CliRunner().invoke(main, ["sweep", "resume", str(spec.storage)])
    assert again.exit_code == 0 and again.output.startswith("sweep tiny finished (") and "nothing to resume" in \
        again.output and again.output.count("\n") == 1, again.output
    assert _snapshot(tmp_path / "store", spec) == before, "resuming a finished sweep did work"
    assert resume_sweep("tiny", str(tmp_path / "store")) == json.loads((spec.storage / "summary.json").read_text())
    assert_interrupted_redo_keeps_the_export(spec, summary)
    _, trials_after, parents_after = child_runs(spec)
    assert len(trials_after) == 3 and len(parents_after) == 1
    assert_snapshot_is_mlflow(spec)

    assert json.loads((spec.storage / "spec.json").read_text())["storage_path"] == str(tmp_path / "store")
    runner = CliRunner()
    before = _snapshot(tmp_path / "store", spec)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)  # the storage path relative to where the command runs
        status = runner.invoke(main, ["sweep", "status", "tiny", "--storage-path", "store"])
    assert status.exit_code == 0 and status.output.count("\n") == 4, status.output
    assert _snapshot(tmp_path / "store", spec) == before, "sweep status wrote files or runs"
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
    again = runner.invoke(main, ["sweep", "export", str(spec.storage), "--out", str(out), "--force"])
    assert again.exit_code == 0 and json.loads((out / "directions.json").read_text()) == exported_manifest, again.output
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")], "a staged export was left behind"


def assert_ranking_explains(spec, summary: dict, parent, client) -> None:
    """summary.json, `sweep best` (by folder), the parent's description and ranking.json tell one ranking: every
    trial, ranked as selection does, with its searched values and validation figures, and what decided."""
    from stylediscover.sweep.ranking import explanation
    from stylediscover.sweep.selection import select_best

    assert json.loads((spec.storage / "summary.json").read_text()) == summary
    records = {r.trial_id: r for r in trial_records(spec)}
    ranking = summary["ranking"]
    assert sorted(e["trial_id"] for e in ranking) == sorted(records)
    ranked = [e for e in ranking if e["rank"] is not None]
    assert [e["rank"] for e in ranked] == list(range(1, len(ranked) + 1)) and ranked == ranking[:len(ranked)]
    assert ranked[0]["trial_id"] == summary["trial_id"] == select_best(list(records.values()), "discovered_then_score")\
        .trial_id
    for e in ranking:
        r = records[e["trial_id"]]
        assert (e["params"], e["n_discovered"], e["score"], e["step"]) == (r.params, r.n_discovered, r.score, r.step)
        assert (e["excluded"] is None) == (e["rank"] is not None)
        if e["excluded"]:
            assert r.attention == "none" or r.outcome not in ("finished", "stopped_early"), e
    if len(ranked) > 1:
        assert summary["decision"].startswith(f"{ranked[0]['trial_id']} (") and " ranks above " in \
            summary["decision"] or " tie on " in summary["decision"], summary["decision"]
    best = CliRunner().invoke(main, ["sweep", "best", str(spec.storage)])
    assert best.exit_code == 0 and best.output.splitlines() == explanation(summary), best.output
    assert "Pareto front (trials that no other trial beats on both score and n_discovered" in best.output
    assert "wall time: " in best.output and f"stylediscover sweep status {spec.storage}" in best.output
    assert f"#/experiments/{parent.info.experiment_id}/runs/{parent.info.run_id}" in best.output
    note = parent.data.tags["mlflow.note.content"]
    assert summary["decision"] in note and "Row label '5 wall_hue" in note
    assert all(f"| {e['trial_id']} |" in note for e in ranking)
    table = json.loads(Path(client.download_artifacts(parent.info.run_id, "ranking.json")).read_text())
    assert [row[table["columns"].index("trial")] for row in table["data"]] == [e["trial_id"] for e in ranking]
    version = client.get_model_version_by_alias("stylediscover-directions", "best")
    assert f"trial `{summary['trial_id']}`" in version.description and "Held-out test: on held-out test codes (2 " \
        "sets of 8)" in version.description and '"loss.form"' in version.description
    assert "the selection of the sweep that finished last" in \
        client.get_registered_model("stylediscover-directions").description


def assert_interrupted_redo_keeps_the_export(spec, summary: dict) -> None:
    """A redo of the finish interrupted during the held-out test leaves best/ as it was (its held-out block there);
    the next redo replaces it whole and clears the leftover."""
    from stylediscover.sweep import finish

    manifest = (spec.storage / "best" / "directions.json").read_text()

    def interrupted(*args) -> dict:
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(finish, "confirm", interrupted)
        with pytest.raises(KeyboardInterrupt):
            resume_sweep(str(spec.storage), "unused", redo_finish=True)
    assert (spec.storage / "best" / "directions.json").read_text() == manifest
    assert json.loads((spec.storage / "summary.json").read_text()) == summary
    assert [p.name for p in spec.storage.glob(".best-*")], "no staged export was left by the interruption"
    redone = resume_sweep(str(spec.storage), "unused", redo_finish=True)
    assert redone["driver"] == "redo of the finish" and redone["trial_id"] == summary["trial_id"]
    assert redone["model"] == summary["model"], "the same export was registered again"
    assert not list(spec.storage.glob(".best-*")) and "heldout" in json.loads(manifest)
    assert json.loads((spec.storage / "best" / "directions.json").read_text())["heldout"] == \
        json.loads(manifest)["heldout"]


def assert_snapshot_is_mlflow(spec) -> None:
    """trials.jsonl holds the records MLflow holds (but the checkpoints, which readers find in Tune's storage)."""
    def comparable(records: list) -> list[str]:  # NaN (a trial never evaluated) equals itself in JSON only
        return sorted(json.dumps(asdict(replace(r, checkpoint=None))) for r in records)

    assert comparable(read_snapshot(spec.storage)) == comparable(trial_records(spec))


def _snapshot(folder, spec) -> tuple:
    """Every file under `folder` (but the SQLite store, whose pages a reader may touch) and the MLflow run count."""
    files = sorted(str(p) for p in folder.rglob("*") if p.name != "mlflow.db")
    client = MlflowClient(spec.tracking_uri)
    return files, len(client.search_runs([e.experiment_id for e in client.search_experiments()]))


def test_read_only_commands_create_nothing(tiny_world, tmp_path):
    """A sweep folder with a spec but no MLflow store yet: status and best refuse in one line and create nothing."""
    from stylediscover.sweep.spec import SweepSpec

    spec = SweepSpec.model_validate(tiny_spec(tiny_world, tmp_path))
    spec.storage.mkdir()
    (spec.storage / "spec.json").write_text(spec.model_dump_json())
    for command in ("status", "best"):
        out = CliRunner().invoke(main, ["sweep", command, "tiny", "--storage-path", str(tmp_path)])
        assert out.exit_code == 2 and out.output.count("\n") == 1 and "no MLflow store" in out.output, out.output
    assert sorted(p.name for p in spec.storage.iterdir()) == ["spec.json"]


def test_sweeps_of_one_name_in_two_folders_never_share_runs(tmp_path):
    from stylediscover.sweep.tracking import SweepTracker

    uri = f"sqlite:///{tmp_path / 'shared.db'}"
    first = SweepTracker(uri, "e", "same", str(tmp_path / "a" / "same"))
    second = SweepTracker(uri, "e", "same", str(tmp_path / "b" / "same"))
    assert first.parent_id != second.parent_id
    first.trial_run("t1", {"x": 1})
    assert [r.data.tags["stylediscover.trial_id"] for r in first.trial_runs()] == ["t1"] and not second.trial_runs()
    again = SweepTracker(uri, "e", "same", str(tmp_path / "a" / "same"), create=False)
    assert again.parent_id == first.parent_id
    from stylediscover.errors import InputError

    with pytest.raises(InputError, match="no MLflow run of sweep 'same' stored in"):
        SweepTracker(uri, "e", "same", str(tmp_path / "c" / "same"), create=False)


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
    assert_snapshot_is_mlflow(spec)


def test_robust_selection_over_validation_sets(tiny_world, tmp_path, ray_env):
    """eval.validation_sets 2 and robust_then_margin: every trial's robust figures reach MLflow and trials.jsonl, the
    selected trial is the best by the rule, and the summary, parent run and manifest carry its robust figures."""
    spec_dict = tiny_spec(tiny_world, tmp_path / "store", num_samples=2,
                          selection={"rule": "robust_then_margin", "test_sets": 2, "test_samples": 8})
    spec_dict["base"]["eval"]["validation_sets"] = 2
    spec_dict["search_space"]["navigator.attention"]["values"] = ["softmax", "cumax"]
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec_dict))
    spec = load_spec(path)
    summary = run_sweep(spec)
    client, trials, parents = child_runs(spec)
    for run in trials:
        assert {"eval_robust_n_discovered", "eval_weakest_margin", "selected_robust_n_discovered",
                "selected_weakest_margin"} <= set(run.data.metrics)
        assert run.data.metrics["best_objective"] == pytest.approx(run.data.metrics["selected_robust_n_discovered"]
                                                                   + run.data.metrics["selected_weakest_margin"]
                                                                   + run.data.metrics["selected_score"] / 1000)
    records = trial_records(spec)
    snapshot = {r.trial_id: r for r in read_snapshot(spec.storage)}
    for r in records:
        assert (r.robust_n_discovered, r.weakest_margin) == pytest.approx(
            (snapshot[r.trial_id].robust_n_discovered, snapshot[r.trial_id].weakest_margin))
    best = min(records, key=lambda r: (-r.robust_n_discovered, -r.weakest_margin, -r.score, r.trial_id))
    assert summary["trial_id"] == best.trial_id and summary["robust_n_discovered"] == best.robust_n_discovered
    assert parents[0].data.metrics["selected_weakest_margin"] == pytest.approx(best.weakest_margin)
    manifest = json.loads((spec.storage / "best" / "directions.json").read_text())
    assert manifest["metrics"]["robust_n_discovered"] == best.robust_n_discovered and "heldout" in manifest
