"""Both metrics of an exported directions file, recomputed on codes of any seed (`stylediscover evaluate`,
and the sweep's check of its selected export on codes the trials' evaluations never saw)."""

from pathlib import Path

import torch

from stylediscover.builtin import resolve_builtin
from stylediscover.config import default_device
from stylediscover.directions import load_directions
from stylediscover.features import FeatureConfig, load_features
from stylediscover.generators import load_generator
from stylediscover.metrics import MetricsConfig, attribute_responses, calibrate_scales, n_discovered, score
from stylediscover.options import load_options
from stylediscover.precision import exact
from stylediscover.predictor import load_predictor


def assess(directions_path: Path, generator_source: str | None = None, predictor_source: str | None = None,
           device: torch.device | None = None, **metric_changes) -> dict:
    """Responses [K, A] of the exported directions, with score and n_discovered, under the trial's metrics
    options (the manifest's) updated by `metric_changes` (MetricsConfig fields; None leaves one as it was).
    Generator and predictor default to the manifest's; device to the GPU when there is one."""
    device = device or default_device()
    manifest_cfg = load_directions(directions_path).manifest["config"]
    generator = load_generator(generator_source or manifest_cfg["generator"], manifest_cfg.get("class_index"),
                               "config.class_index").to(device)
    directions = load_directions(directions_path, generator).to(device)
    predictor = load_predictor(resolve_builtin(predictor_source or manifest_cfg["predictor"], "predictor")).to(device)
    cfg = load_options(MetricsConfig, manifest_cfg["eval"]["metrics"] | {
        k: v for k, v in metric_changes.items() if v is not None}, (), "evaluate options")
    k_dirs = len(directions.deltas)
    scales = None
    with exact():
        if cfg.calibrate:
            features = load_features(FeatureConfig.model_validate(manifest_cfg["features"]), str(directions_path))
            features = features.to(device)
            scales = calibrate_scales(generator, directions.delta, k_dirs, features, cfg)
        responses = attribute_responses(generator, directions.delta, k_dirs, predictor, cfg, scales)
    return {"attributes": [h.name for h in predictor.config.heads], "responses": responses.tolist(),
            "scales": None if scales is None else scales.tolist(), "score": score(responses),
            "n_discovered": n_discovered(responses), "samples": cfg.samples, "seed": cfg.seed, "scale": cfg.scale,
            "truncation_psi": cfg.truncation_psi}
