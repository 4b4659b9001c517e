"""Both metrics of an exported directions file, recomputed on codes of any seed (`stylediscover evaluate`), and
its held-out test evaluation over R sets of test codes (`evaluate --test-sets R`, and the sweep's check of its
selected export on codes that neither the trials' evaluations nor the selection saw; see heldout.py)."""

from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from stylediscover.builtin import resolve_builtin
from stylediscover.config import default_device
from stylediscover.directions import Directions, direction_entries, load_directions
from stylediscover.features import FeatureConfig, load_features
from stylediscover.generators import Generator, load_generator
from stylediscover.heldout import TEST_SAMPLES, TEST_SETS, heldout_seeds, robust_summary
from stylediscover.metrics import MetricsConfig, calibrate_scales, mean_changes, n_discovered, responses_of, score
from stylediscover.options import load_options
from stylediscover.precision import exact
from stylediscover.predictor import AttributePredictor, load_predictor

CALIBRATION_OPTIONS = ("scale", "truncation_psi", "seed", "calibrate", "calibration_samples")  # strengths depend on


@dataclass
class Assessed:
    """An export with the networks that evaluate it and its metrics options."""

    generator: Generator
    directions: Directions
    predictor: AttributePredictor
    cfg: MetricsConfig
    scales: torch.Tensor | None

    @property
    def attributes(self) -> list[str]:
        return [h.name for h in self.predictor.config.heads]

    def mean_changes(self, cfg: MetricsConfig) -> torch.Tensor:
        """Signed mean changes [K, D] (metrics.mean_changes) on the codes `cfg` describes, at the export's
        strengths."""
        with exact():
            return mean_changes(self.generator, self.directions.delta, len(self.directions.deltas), self.predictor,
                                cfg, self.scales)

    def responses(self, cfg: MetricsConfig) -> torch.Tensor:
        """Responses [K, A] on the codes `cfg` describes, at the export's strengths."""
        return responses_of(self.predictor, self.mean_changes(cfg))


def load_assessed(directions_path: Path, generator_source: str | None = None, predictor_source: str | None = None,
                  device: torch.device | None = None, recorded_strengths: bool = False,
                  **metric_changes) -> Assessed:
    """The export with its generator and predictor (default: the manifest's) on `device` (default: the GPU when
    there is one), under the trial's metrics options (the manifest's) updated by `metric_changes` (MetricsConfig
    fields; None leaves one as it was); with calibration, the per-direction strengths are computed here, or with
    `recorded_strengths` read from the manifest, which holds the ones its evaluation computed (same networks and
    calibration codes: the same values, without the calibration's synthesis passes)."""
    if recorded_strengths and (generator_source or predictor_source or any(
            metric_changes.get(k) is not None for k in CALIBRATION_OPTIONS)):
        raise ValueError("recorded strengths hold for the export's own networks and calibration options only")
    device = device or default_device()
    manifest_cfg = load_directions(directions_path).manifest["config"]
    generator = load_generator(generator_source or manifest_cfg["generator"], manifest_cfg.get("class_index"),
                               "config.class_index").to(device)
    directions = load_directions(directions_path, generator).to(device)
    predictor = load_predictor(resolve_builtin(predictor_source or manifest_cfg["predictor"], "predictor")).to(device)
    cfg = load_options(MetricsConfig, manifest_cfg["eval"]["metrics"] | {
        k: v for k, v in metric_changes.items() if v is not None}, (), "evaluate options")
    scales = None
    if cfg.calibrate and recorded_strengths:
        scales = directions.strengths().to(device)
    elif cfg.calibrate:
        features = load_features(FeatureConfig.model_validate(manifest_cfg["features"]), str(directions_path))
        with exact():
            scales = calibrate_scales(generator, directions.delta, len(directions.deltas), features.to(device), cfg)
    return Assessed(generator, directions, predictor, cfg, scales)


def assess(directions_path: Path, generator_source: str | None = None, predictor_source: str | None = None,
           device: torch.device | None = None, **metric_changes) -> dict:
    """Responses [K, A] of the exported directions, with score and n_discovered, on the codes of the trial's
    metrics options updated by `metric_changes` (see load_assessed)."""
    assessed = load_assessed(directions_path, generator_source, predictor_source, device, **metric_changes)
    cfg = assessed.cfg
    responses = assessed.responses(cfg)
    return {"attributes": assessed.attributes, "responses": responses.tolist(),
            "scales": None if assessed.scales is None else assessed.scales.tolist(), "score": score(responses),
            "n_discovered": n_discovered(responses), "samples": cfg.samples, "seed": cfg.seed, "scale": cfg.scale,
            "truncation_psi": cfg.truncation_psi}


def _heldout_assessed(directions_path: Path, generator_source: str | None, predictor_source: str | None,
                      device: torch.device | None, metric_changes: dict, recorded_strengths: bool = False) -> Assessed:
    if metric_changes.get("seed") is not None:
        raise ValueError("the held-out split fixes the codes: test seeds derive from the validation seed")
    return load_assessed(directions_path, generator_source, predictor_source, device, recorded_strengths,
                         **metric_changes)


def _test_set(assessed: Assessed, seed: int, samples: int) -> dict:
    """Responses [K, A] on `samples` test codes of `seed`, with what a held-out evaluation reports beside them."""
    cfg = assessed.cfg
    return {"attributes": assessed.attributes, "validation_seed": cfg.seed, "seed": seed, "samples": samples,
            "scale": cfg.scale, "truncation_psi": cfg.truncation_psi,
            "scales": None if assessed.scales is None else assessed.scales.tolist(),
            "responses": assessed.responses(cfg.model_copy(update={"samples": samples, "seed": seed})).tolist()}


def combine_test_sets(parts: list[dict]) -> dict:
    """A held-out evaluation (see assess_heldout) from its test sets in order (assess_test_set's results), whose
    options and strengths must agree (to float32 rounding: GPU kernels may differ where a set calibrated them)."""
    first = parts[0]
    for p in parts[1:]:
        same_options = all(p[k] == first[k] for k in ("attributes", "validation_seed", "samples", "scale",
                                                       "truncation_psi"))
        same_strengths = (p["scales"] is None and first["scales"] is None) or (
            p["scales"] is not None and first["scales"] is not None
            and torch.allclose(torch.tensor(p["scales"]), torch.tensor(first["scales"]), rtol=1e-4))
        if not (same_options and same_strengths):
            raise ValueError(f"test set of seed {p['seed']} was evaluated under other options or strengths than the "
                             f"set of seed {first['seed']}")
    return {"attributes": first["attributes"], "validation_seed": first["validation_seed"],
            "seeds": [p["seed"] for p in parts], "samples": first["samples"], "scale": first["scale"],
            "truncation_psi": first["truncation_psi"], "scales": first["scales"],
            "responses": [p["responses"] for p in parts]} | robust_summary(
        [torch.tensor(p["responses"]) for p in parts], first["attributes"])


def assess_test_set(directions_path: Path, sets: int, samples: int, index: int, generator_source: str | None = None,
                    predictor_source: str | None = None, device: torch.device | None = None,
                    recorded_strengths: bool = False, **metric_changes) -> dict:
    """Test set `index` of assess_heldout's `sets` alone, so that the sets can be computed in parallel (a sweep's
    Ray tasks, with `recorded_strengths`: see load_assessed); combine_test_sets joins them into assess_heldout's
    result."""
    if not 0 <= index < sets:
        raise ValueError(f"test set {index} of {sets} does not exist")
    assessed = _heldout_assessed(directions_path, generator_source, predictor_source, device, metric_changes,
                                 recorded_strengths)
    return _test_set(assessed, heldout_seeds(assessed.cfg.seed, sets)[index], samples)


def assess_heldout(directions_path: Path, sets: int = TEST_SETS, samples: int = TEST_SAMPLES,
                   generator_source: str | None = None, predictor_source: str | None = None,
                   device: torch.device | None = None, progress: bool = False, **metric_changes) -> dict:
    """The export's held-out test evaluation: responses [K, A] on `sets` test sets of `samples` codes (seeds
    heldout_seeds of the validation seed, the manifest's metrics.seed), at the strengths of its validation
    calibration, with the robust summary of heldout.robust_summary. `metric_changes` as for load_assessed, except
    the seed, which the split fixes. `progress` shows a bar over the sets."""
    assessed = _heldout_assessed(directions_path, generator_source, predictor_source, device, metric_changes)
    seeds = heldout_seeds(assessed.cfg.seed, sets)
    return combine_test_sets([_test_set(assessed, seed, samples)
                              for seed in tqdm(seeds, desc="test sets", unit="set", disable=not progress)])


def clean_on_test(result: dict, directions_path: Path) -> int:
    """Directions of the export that are clean (directions.QUALITY_THRESHOLDS) on the test codes of a held-out
    evaluation `result` of it (assess_heldout), their responses averaged over the sets."""
    mean = torch.tensor(result["responses"]).mean(dim=0)
    entries = direction_entries(mean, load_directions(directions_path).attention, result["attributes"],
                                torch.ones(len(mean)))
    return sum(e["quality"] == "clean" for e in entries)
