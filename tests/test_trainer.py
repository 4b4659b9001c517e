"""One trial end to end on tiny networks: artifacts, metrics, exports, and bit-identical resume."""

import json

import pytest
import torch
from click.testing import CliRunner
from conftest import tiny_config as config

from stylediscover.assessment import assess
from stylediscover.cli import main
from stylediscover.directions import load_directions
from stylediscover.errors import InputError
from stylediscover.generators import load_generator
from stylediscover.heldout import robust_summary, validation_seeds
from stylediscover.metrics import MetricsConfig, attribute_responses, codes, head_responses, objective
from stylediscover.predictor import load_predictor
from stylediscover.trainer import keep_best, train


@pytest.mark.parametrize("loss", [{"variant": "binary", "form": "linear"},
                                  {"variant": "prototype", "form": "infonce", "prototypes_per_direction": 2}])
def test_resume_is_bit_identical(tiny_world, tmp_path, loss):
    cfg = config(tiny_world, loss=loss)
    train(cfg, tmp_path / "straight")
    train(cfg.model_copy(update={"steps": 2}), tmp_path / "resumed")
    train(cfg, tmp_path / "resumed")
    a = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)
    for part in ("navigator", "prototypes") if loss["variant"] == "prototype" else ("navigator",):
        for name, tensor in a[part].items():
            assert torch.equal(tensor, b[part][name]), name
    assert a["step"] == b["step"] == 4


def test_micro_batches_compute_the_same_step_and_older_runs_resume(tiny_world, tmp_path):
    whole = config(tiny_world, micro_batch=8)
    train(whole, tmp_path / "whole")
    train(whole.model_copy(update={"micro_batch": 1}), tmp_path / "split")
    a = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=True)["navigator"]
    b = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=True)["navigator"]
    for name, tensor in a.items():
        torch.testing.assert_close(tensor, b[name], rtol=1e-4, atol=1e-5)
    options = tmp_path / "whole" / "options.json"
    older = json.loads(options.read_text())
    del older["micro_batch"]
    options.write_text(json.dumps(older))
    assert train(whole.model_copy(update={"steps": 6}), tmp_path / "whole")["step"] == 6


def test_artifacts_and_metrics(tiny_world, tmp_path):
    reports = []
    metrics = train(config(tiny_world), tmp_path, report=lambda m, d: reports.append(m))
    assert [r["step"] for r in reports] == [2, 4]
    assert 0 <= metrics["score"] <= 1 and 1 <= metrics["n_discovered"] <= 3
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [2, 4]
    for name in ("traversal-000004.png", "attention-000004.png", "responses-000004.json", "options.json"):
        assert (tmp_path / name).exists(), name
    responses = json.loads((tmp_path / "responses-000004.json").read_text())
    assert len(responses["responses"]) == 3 and len(responses["attributes"]) == 6
    generator = load_generator(tiny_world / "g.safetensors")
    exported = load_directions(tmp_path / "directions.safetensors", generator)
    assert exported.deltas.shape == (3, generator.num_ws, 16)
    assert exported.manifest["metrics"]["score"] == metrics["score"]
    assert len(list((tmp_path / "directions_npy").glob("direction_*_layers_*.npy"))) == 3
    best = max(lines, key=objective)
    assert metrics["best_step"] == best["step"] and metrics["best_objective"] == objective(best)
    kept = json.loads((tmp_path / "best" / "directions.json").read_text())
    assert kept["metrics"]["step"] == best["step"] and kept["metrics"]["score"] == best["score"]
    for name in ("traversal.png", "attention.png", "responses.json", "metrics.json"):
        assert (tmp_path / "best" / name).exists(), name


def test_validation_sets_give_robust_figures_that_order_the_evaluations(tiny_world, tmp_path):
    """With 3 validation sets the evaluation's robust figures are heldout.robust_summary's over the first set's
    responses (the ones written to responses-*.json) and those of the next two validation seeds, its margins those
    of the 6 codes of the three sets together, computed here in one pass per direction (where the per-set rule
    reads these sets otherwise)."""
    cfg = config(tiny_world, eval={"every": 2, "grid_strengths": 3, "validation_sets": 3,
                                   "metrics": {"samples": 2, "batch": 4}})
    metrics = train(cfg, tmp_path)
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    for line in lines:
        assert line["robust_n_discovered"] <= 6 and 0 <= line["weakest_margin"] <= 1
        assert objective(line) == line["robust_n_discovered"] + line["weakest_margin"] + line["score"] / 1000
    best = max(lines, key=objective)
    assert metrics["best_step"] == best["step"] and metrics["best_robust_n_discovered"] == best["robust_n_discovered"]
    assert metrics["best_weakest_margin"] == best["weakest_margin"]
    exported = load_directions(tmp_path / "directions.safetensors", load_generator(tiny_world / "g.safetensors"))
    saved = json.loads((tmp_path / "responses-000004.json").read_text())
    scales = torch.tensor(saved["scales"])
    predictor = load_predictor(str(tiny_world / "p.safetensors"))
    generator = load_generator(tiny_world / "g.safetensors")
    seeds = validation_seeds(MetricsConfig().seed, 3)
    per_set = [torch.tensor(saved["responses"])] + [
        attribute_responses(generator, exported.delta, 3, predictor, MetricsConfig(samples=2, batch=4, seed=s), scales)
        for s in seeds[1:]]
    ws = generator.mapping(torch.cat([codes(generator.z_dim, 2, s) for s in seeds]), truncation_psi=0.5)
    pooled = []
    with torch.no_grad():
        for k in range(3):
            d = scales[k] * exported.delta(ws, torch.full((len(ws),), k))
            raw = predictor(generator.synthesis(torch.cat([ws + d, ws - d]), noise_mode="const"))
            pooled.append(head_responses(predictor, raw[:len(ws)], raw[len(ws):]))
    expected = robust_summary(per_set, saved["attributes"], pooled=torch.stack(pooled))
    assert robust_summary(per_set, saved["attributes"])["robust_n_discovered"] != expected["robust_n_discovered"]
    assert (lines[-1]["robust_n_discovered"], lines[-1]["weakest_margin"]) == pytest.approx(
        (expected["robust_n_discovered"], expected["weakest_margin"]), abs=1e-5)


def test_keep_best_replaces_only_on_a_higher_objective(tmp_path):
    (tmp_path / "directions_npy").mkdir()
    kept = []
    for step, n, sc in ((2, 1, 0.5), (4, 1, 0.2), (6, 1, 0.5), (8, 2, 0.1)):
        for name in (f"traversal-{step:06d}.png", f"attention-{step:06d}.png", f"responses-{step:06d}.json",
                     "directions.safetensors", "directions_npy/direction_00.npy"):
            (tmp_path / name).write_text(str(step))
        (tmp_path / "directions.json").write_text(json.dumps({"step": step}))
        kept.append(keep_best(tmp_path, {"step": step, "score": sc, "n_discovered": n})["best_step"])
    assert kept == [2, 2, 2, 8]
    assert json.loads((tmp_path / "best" / "directions.json").read_text()) == {"step": 8}
    assert (tmp_path / "best" / "traversal.png").read_text() == "8"
    assert (tmp_path / "best" / "directions_npy" / "direction_00.npy").read_text() == "8"
    assert not (tmp_path / "best.tmp").exists()


def test_invalid_config_names_the_field(tiny_world):
    with pytest.raises(ValueError, match="batch must be even"):
        config(tiny_world, batch=5)
    with pytest.raises(ValueError, match="device"):
        config(tiny_world, device="gpu")
    assert config(tiny_world, device="cuda:1").torch_device == torch.device("cuda", 1)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert config(tiny_world).torch_device.type == expected
    with pytest.raises(ValueError, match="fixed_directions"):
        config(tiny_world, navigator={"num_directions": 3, "direction": "fixed"})


def test_cli_train_evaluate_traverse(tiny_world, tmp_path):
    import yaml
    from click.testing import CliRunner

    from stylediscover.cli import main

    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config(tiny_world).model_dump(mode="json")))
    run_dir = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(main, ["train", str(path), "--run-dir", str(run_dir), "--set", "steps=2"])
    assert result.exit_code == 0, result.output
    assert "n_discovered" in result.output and "best evaluation (step 2)" in result.output
    result = runner.invoke(main, ["train", str(path), "--run-dir", str(tmp_path / "robust"), "--set", "steps=2",
                                  "--set", "eval.validation_sets=2"])
    assert result.exit_code == 0 and "over 2 validation sets, weakest margin" in result.output, result.output
    result = runner.invoke(main, ["evaluate", str(run_dir / "directions.safetensors"), "--samples", "4"])
    assert result.exit_code == 0, result.output
    assert "object_shape" in result.output and "score" in result.output and "seed 12345)" in result.output
    best = run_dir / "best" / "directions.safetensors"
    result = runner.invoke(main, ["evaluate", str(best), "--samples", "4", "--seed", "7"])
    assert result.exit_code == 0 and "seed 7)" in result.output, result.output
    result = runner.invoke(main, ["traverse", str(best), "--out", str(tmp_path / "t.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "t.png").exists()


def test_cli_train_bad_field_is_named_before_work(tiny_world, tmp_path):
    from click.testing import CliRunner

    from stylediscover.cli import main

    path = tmp_path / "bad.yaml"
    path.write_text("navigator:\n  attention: sideways\n")
    result = CliRunner().invoke(main, ["train", str(path), "--run-dir", str(tmp_path / "never")])
    assert result.exit_code == 2
    assert result.output.startswith(f"error: {path}: navigator.attention: Input should be")
    assert not (tmp_path / "never").exists()


def test_calibrated_scales_equalise_feature_change(tiny_world, tmp_path):
    from stylediscover.features import FeatureConfig, load_features
    from stylediscover.metrics import MetricsConfig, calibrate_scales
    from stylediscover.navigator import Navigator, NavigatorConfig

    generator = load_generator(tiny_world / "g.safetensors")
    features = load_features(FeatureConfig(name="discriminator", weights=str(tiny_world / "d.safetensors")))
    torch.manual_seed(0)
    nav = Navigator(NavigatorConfig(num_directions=3, direction="free", attention="none"), generator.num_ws, 16)
    cfg = MetricsConfig(scale=1.0, calibration_samples=8)
    scales = calibrate_scales(generator, nav, 3, features, cfg)

    def change(k, s):
        ws = generator.mapping(torch.randn(8, 16, generator=torch.Generator().manual_seed(cfg.seed + 1)), 0.5)
        base = features(generator.synthesis(ws))
        moved = features(generator.synthesis(ws + s * nav(ws, torch.full((8,), k))))
        return float(sum((a - b).square().mean() for a, b in zip(moved, base)) / len(base))

    with torch.no_grad():
        before = torch.tensor([change(k, 1.0) for k in range(3)])
        after = torch.tensor([change(k, float(scales[k])) for k in range(3)])
    assert (after.max() / after.min()) < (before.max() / before.min())
    assert (after.max() / after.min()) < 1.2

    metrics = train(config(tiny_world, eval={"every": 4, "grid_strengths": 3,
                                                  "metrics": {"samples": 4, "batch": 4, "calibrate": True}}),
                    tmp_path / "run")
    manifest = load_directions(tmp_path / "run" / "directions.safetensors").manifest
    assert len({round(d["scale"], 6) for d in manifest["directions"]}) > 1 and metrics["step"] == 4


def test_adaptive_attention_evaluates_and_its_export_reloads(tiny_world, tmp_path):
    cfg = config(tiny_world, navigator={"num_directions": 3, "direction": "pca", "pca_dim": 4,
                                        "attention": "adaptive", "hidden": 8})
    train(cfg, tmp_path)
    exported = load_directions(tmp_path / "directions.safetensors", load_generator(tiny_world / "g.safetensors"))
    assert exported.navigator is not None
    ws = torch.randn(2, 6, 16)
    assert exported.delta(ws, torch.tensor([0, 2])).shape == (2, 6, 16)
    assert (tmp_path / "attention-000004.png").exists()


def test_run_dir_refuses_another_trial_and_reports_finished_runs(tiny_world, tmp_path):
    from stylediscover.errors import InputError

    first = train(config(tiny_world), tmp_path)
    assert train(config(tiny_world), tmp_path) == first
    with pytest.raises(InputError, match=r"options.json: lr: this run directory holds another trial"):
        train(config(tiny_world, lr=0.01), tmp_path)
    with pytest.raises(InputError, match="pca_dim 32 exceeds the generator's w_dim 16"):
        train(config(tiny_world, navigator={"num_directions": 3, "direction": "pca", "pca_dim": 32}), tmp_path / "b")
    with pytest.raises(InputError, match=r"navigator.layer_bands: bands reach past the generator's \d+ W\+ layers"):
        train(config(tiny_world, fixed_directions="sefa", navigator={
            "num_directions": 2, "direction": "fixed", "attention": "none", "layer_bands": [[0, 99], [0, 1]]}),
            tmp_path / "c")


def test_conditional_generator_trains_and_evaluates_on_its_class(layout_dir, tiny_world, tmp_path):
    native = tmp_path / "conditional.safetensors"
    result = CliRunner().invoke(main, ["generators", "convert", str(layout_dir / "nvidia_conditional.pkl"),
                                       "--out", str(native)])
    assert result.exit_code == 0, result.output
    changes = dict(generator=str(native), features={"name": "discriminator", "input_resolution": 16,
                                                    "weights": str(tiny_world / "d.safetensors")})
    with pytest.raises(InputError, match="class_index: the generator is conditional on 5 classes"):
        train(config(tiny_world, **changes), tmp_path / "no-class")
    train(config(tiny_world, class_index=2, **changes), tmp_path / "run")
    manifest = load_directions(tmp_path / "run" / "directions.safetensors").manifest
    assert manifest["config"]["class_index"] == 2
    assessed = assess(tmp_path / "run" / "directions.safetensors", samples=4)
    assert assessed["n_discovered"] >= 1
