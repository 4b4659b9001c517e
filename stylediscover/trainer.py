"""One trial: a config → a trained navigator, evaluated periodically, checkpointed, resumable bit-identically.

Run directory: options.json, checkpoint.pt (weights_only-loadable), metrics.jsonl (one line per
evaluation), responses-<step>.json (the K × A matrix), traversal-<step>.png (directions × strengths),
attention-<step>.png (directions × layers) and directions.safetensors (+ manifest, directions_npy/) of the
last evaluation; best/ holds the export of the evaluation with the highest objective so far (metrics.objective):
directions, traversal.png, attention.png, responses.json and metrics.json.
"""

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm import tqdm

from stylediscover import precision
from stylediscover.baselines import ganspace_directions, sefa_directions, w_pca
from stylediscover.builtin import resolve_builtin
from stylediscover.config import TrainConfig
from stylediscover.directions import display_order, export_directions, row_label
from stylediscover.errors import InputError
from stylediscover.features import FeatureNetwork, load_features
from stylediscover.generators import Generator, generator_path, load_generator
from stylediscover.generators.registry import sha256_of
from stylediscover.heldout import robust_summary, validation_seeds
from stylediscover.losses import Prototypes, binary_loss, diversity, prototype_loss
from stylediscover.metrics import (
    calibrate_scales,
    dominant_attributes,
    mean_changes,
    n_discovered,
    objective,
    responses_of,
    score,
)
from stylediscover.navigator import Navigator
from stylediscover.plots import attention_heatmap, traversal_grid
from stylediscover.predictor import AttributePredictor, load_predictor
from stylediscover.weights import save_atomically

Report = Callable[[dict, Path], None]


class Trial:
    """The frozen networks of a trial and its learnable parts (navigator, prototypes)."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        device = cfg.torch_device
        self.precision = precision.resolve(cfg.precision, device)
        precision.configure(self.precision, device, cfg.deterministic)
        path = generator_path(cfg.generator)
        self.generator: Generator = load_generator(path, cfg.class_index, "class_index").to(device)
        self.generator_info = {"source": cfg.generator, "sha256": sha256_of(path), "num_ws": self.generator.num_ws,
                               "w_dim": self.generator.w_dim, "resolution": self.generator.resolution}
        self.predictor: AttributePredictor = load_predictor(resolve_builtin(cfg.predictor, "predictor")).to(device)
        self.features: FeatureNetwork = load_features(cfg.features).to(device)
        g, nav = self.generator, cfg.navigator
        if nav.direction == "pca" and nav.pca_dim > g.w_dim:
            raise InputError(cfg.generator, f"navigator.pca_dim {nav.pca_dim} exceeds the generator's w_dim {g.w_dim}",
                             "navigator.pca_dim")
        if nav.direction == "fixed" and nav.num_directions > g.w_dim:
            raise InputError(cfg.generator, f"{nav.num_directions} fixed directions exceed w_dim {g.w_dim}",
                             "navigator.num_directions")
        if nav.layer_bands and max(stop for _, stop in nav.layer_bands) > g.num_ws:
            raise InputError(cfg.generator, f"bands reach past the generator's {g.num_ws} W+ layers",
                             "navigator.layer_bands")
        basis = None
        if nav.direction == "pca":
            basis = w_pca(g, cfg.pca_samples, cfg.seed)[0][:, :nav.pca_dim]
        elif nav.direction == "fixed":
            k = nav.num_directions
            basis = (ganspace_directions(g, k, cfg.pca_samples, cfg.seed) if cfg.fixed_directions == "ganspace"
                     else sefa_directions(g, k))
        torch.manual_seed(cfg.seed)
        self.navigator = Navigator(nav, g.num_ws, g.w_dim, basis).to(device)
        self.prototypes = (Prototypes(nav.num_directions, cfg.loss.prototypes_per_direction, g.resolution,
                                      cfg.loss.prototype_init_std).to(device)
                           if cfg.loss.variant == "prototype" else None)
        self._render_features = (torch.compile(self._features_of_codes, dynamic=False) if cfg.compile
                                 else self._features_of_codes)

    def _features_of_codes(self, ws: torch.Tensor) -> list[torch.Tensor]:
        with precision.autocast(self.precision, ws.device):
            return self.features_of_images(self.generator.synthesis(ws, noise_mode="const"))

    def features_of_images(self, images: torch.Tensor) -> list[torch.Tensor]:
        """F(images) for images [B, 3, H, W] in the trial's precision: float32 [B, C, H, W] per feature layer."""
        with precision.autocast(self.precision, images.device):
            return [f.float() for f in self.features(images)]

    def render_features(self, ws: torch.Tensor) -> list[torch.Tensor]:
        """F(G(ws)) for ws [B, L, d] in the trial's precision (compiled when cfg.compile): float32 [B, C, H, W]
        per feature layer."""
        return self._render_features(ws)

    def parameters(self) -> list[torch.nn.Parameter]:
        params = list(self.navigator.parameters())
        return params + (list(self.prototypes.parameters()) if self.prototypes else [])


def starting_codes(generator: Generator, n: int, groups: int, psi: float) -> torch.Tensor:
    """Style-mixed codes [n, L, d]: the layers split into `groups` contiguous groups, each from its own z (drawn
    on the CPU, whose RNG state the checkpoint keeps, then moved to the generator's device)."""
    bounds = torch.linspace(0, generator.num_ws, groups + 1).round().long().tolist()
    parts = [generator.mapping(torch.randn(n, generator.z_dim).to(generator.device), truncation_psi=psi)[:, a:b]
             for a, b in zip(bounds[:-1], bounds[1:])]
    return torch.cat(parts, dim=1)


AUTO_CHUNK_PIXELS = 8 * 64 * 64


def image_features(trial: Trial, ws: torch.Tensor) -> list[torch.Tensor]:
    """F(G(ws)) for ws [B, L, d]: one [B, C, H, W] per feature layer, computed cfg.micro_batch images at a time
    within one autograd graph (0: on CPUs AUTO_CHUNK_PIXELS output pixels, on GPUs the whole pass). On a 2-core
    CPU, chunks of 8 images at 64 px make the prototype step 1.35× faster than one pass
    (evaluation/results/navigator_speed.md)."""
    auto = len(ws) if ws.device.type == "cuda" else max(1, AUTO_CHUNK_PIXELS // trial.generator.resolution ** 2)
    parts = [trial.render_features(w) for w in ws.split(trial.cfg.micro_batch or auto)]
    return [torch.cat(layer) for layer in zip(*parts)]


def training_loss(trial: Trial) -> torch.Tensor:
    """One step's loss. Binary: one no-grad synthesis of the originals and one synthesis + feature pass of all
    edits (q, p, n stacked); prototype: one synthesis + feature pass of both signs of the edits, one feature
    pass of the prototype images. Passes run in micro-batches (see image_features). Random draws happen on
    the CPU (see starting_codes)."""
    cfg, g, nav = trial.cfg, trial.generator, trial.navigator
    dev = g.device
    k_dirs = cfg.navigator.num_directions
    with torch.no_grad():
        ws = starting_codes(g, cfg.batch, cfg.style_mixing_groups, cfg.truncation_psi)
    if cfg.loss.variant == "binary":
        h = cfg.batch // 2
        wa, wb = ws[:h], ws[h:]
        k = torch.randint(k_dirs, (h,))
        k_neg = ((k + torch.randint(1, k_dirs, (h,))) % k_dirs).to(dev)
        k = k.to(dev)
        s, t = (torch.rand(h, 1, 1) * 2 - 1).to(dev), (torch.rand(h, 1, 1) * 2 - 1).to(dev)
        edits = torch.cat([wa + s * nav(wa, k), wb + s * nav(wb, k), wb + t * nav(wb, k_neg)])
        with torch.no_grad():
            base = image_features(trial, ws)
        feats = image_features(trial, edits)
        split = [f.chunk(3) for f in feats]
        dq = [sp[0] - b[:h] for sp, b in zip(split, base)]
        dp = [sp[1] - b[h:] for sp, b in zip(split, base)]
        dn = [sp[2] - b[h:] for sp, b in zip(split, base)]
        loss = binary_loss(dq, dp, dn, k, k_neg, cfg.loss)
    else:
        k = torch.randint(k_dirs, (cfg.batch,)).to(dev)
        s = (torch.rand(cfg.batch, 1, 1) * 2 - 1).to(dev)
        d = nav(ws, k) * (s / 2)
        feats = image_features(trial, torch.cat([ws + d, ws - d]))
        deltas = [plus - minus for plus, minus in (f.chunk(2) for f in feats)]
        prototypes = trial.prototypes(mirror=cfg.loss.mirror_prototypes, coin=cfg.loss.mirror_coin)
        loss = prototype_loss(deltas, trial.features_of_images(prototypes), k, cfg.loss)
    if cfg.loss.diversity_weight > 0:
        loss = loss + cfg.loss.diversity_weight * diversity(nav.all_deltas(ws))
    return loss


def save_checkpoint(path: Path, trial: Trial, optimizer: torch.optim.Optimizer, step: int) -> None:
    state = {"navigator": trial.navigator.state_dict(), "optimizer": optimizer.state_dict(),
             "rng": torch.get_rng_state(), "step": step}
    if trial.prototypes is not None:
        state["prototypes"] = trial.prototypes.state_dict()
    save_atomically(state, path)


def evaluate(trial: Trial, run_dir: Path, step: int) -> dict:
    """Both metrics on the first validation set, robust_n_discovered and weakest_margin over all of them
    (eval.validation_sets > 1: margins of the sets' codes pooled, heldout.robust_summary), the first set's response
    matrix, the traversal grid, the attention map and the directions export."""
    cfg, nav, mcfg = trial.cfg, trial.navigator, trial.cfg.eval.metrics
    k_dirs = cfg.navigator.num_directions
    scales = (calibrate_scales(trial.generator, nav, k_dirs, trial.features, mcfg) if mcfg.calibrate
              else torch.full((k_dirs,), mcfg.scale))
    changes = [mean_changes(trial.generator, nav, k_dirs, trial.predictor, mcfg.model_copy(update={"seed": seed}),
                            scales) for seed in validation_seeds(mcfg.seed, cfg.eval.validation_sets)]
    per_set = [responses_of(trial.predictor, c) for c in changes]
    responses = per_set[0]
    names = [h.name for h in trial.predictor.config.heads]
    metrics = {"step": step, "score": score(responses), "n_discovered": n_discovered(responses), "scale": mcfg.scale}
    if cfg.eval.validation_sets > 1:
        pooled = responses_of(trial.predictor, torch.stack(changes).mean(dim=0))
        robust = robust_summary(per_set, names, pooled=pooled)
        metrics |= {"robust_n_discovered": robust["robust_n_discovered"], "weakest_margin": robust["weakest_margin"]}
    (run_dir / f"responses-{step:06d}.json").write_text(json.dumps(
        {"attributes": names, "scales": scales.tolist(), "responses": responses.tolist()}, indent=1) + "\n")
    manifest = export_directions(run_dir / "directions.safetensors", nav, trial.generator, trial.generator_info,
                                 cfg.model_dump(), responses, names, metrics, scales)
    entries = manifest["directions"]
    traversal_grid(trial.generator, nav.all_deltas, scales, cfg.eval.grid_strengths, cfg.eval.grid_seed,
                   run_dir / f"traversal-{step:06d}.png", [row_label(e) for e in entries], display_order(entries))
    w_avg = trial.generator.mapping.w_avg.view(1, 1, -1).expand(1, trial.generator.num_ws, -1)
    attention_heatmap(nav, run_dir / f"attention-{step:06d}.png", dominant_attributes(responses, names), w_avg)
    return metrics


def keep_best(run_dir: Path, metrics: dict) -> dict:
    """Copies the export of the evaluation `metrics` describes to run_dir/best when its objective beats the best
    kept so far (ties keep the earlier one); returns the kept evaluation's step, score, n_discovered, objective and,
    with several validation sets, robust_n_discovered and weakest_margin."""
    best_dir = run_dir / "best"
    best = json.loads((best_dir / "metrics.json").read_text()) if (best_dir / "metrics.json").exists() else None
    if best is None or objective(metrics) > objective(best):
        step, staging = metrics["step"], run_dir / "best.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(run_dir / "directions_npy", staging / "directions_npy")
        for src, dst in (("directions.safetensors", "directions.safetensors"), ("directions.json", "directions.json"),
                         (f"traversal-{step:06d}.png", "traversal.png"), (f"attention-{step:06d}.png", "attention.png"),
                         (f"responses-{step:06d}.json", "responses.json")):
            shutil.copy2(run_dir / src, staging / dst)
        (staging / "metrics.json").write_text(json.dumps(metrics) + "\n")
        shutil.rmtree(best_dir, ignore_errors=True)
        staging.rename(best_dir)
        best = metrics
    kept = {"best_step": best["step"], "best_score": best["score"], "best_n_discovered": best["n_discovered"],
            "best_objective": objective(best)}
    return kept | {f"best_{k}": best[k] for k in ("robust_n_discovered", "weakest_margin") if k in best}


RESUMABLE_CHANGES = {"steps", "threads", "micro_batch", "checkpoint_every", "device", "compile"}


def _check_same_trial(cfg: TrainConfig, run_dir: Path) -> None:
    """A run directory continues only the trial it holds: any option but those of RESUMABLE_CHANGES (how far and
    how fast to train, how often to checkpoint) must match; options missing from older runs are not compared."""
    options = run_dir / "options.json"
    if not (run_dir / "checkpoint.pt").exists() or not options.exists():
        return
    before = json.loads(options.read_text())
    now = cfg.model_dump(mode="json")
    changed = sorted(k for k in before.keys() & now.keys() - RESUMABLE_CHANGES if before[k] != now[k])
    if changed:
        raise InputError(options, f"this run directory holds another trial (options differ: {', '.join(changed)}); "
                         "use another run directory", changed[0])


def train(cfg: TrainConfig, run_dir: Path, report: Report | None = None, progress: bool = True) -> dict:
    """Trains until cfg.steps, resuming from run_dir/checkpoint.pt; returns the last evaluation's metrics with
    the best evaluation's (best_step, best_score, best_n_discovered, best_objective). progress: a tqdm bar."""
    torch.set_num_threads(cfg.threads)
    run_dir.mkdir(parents=True, exist_ok=True)
    _check_same_trial(cfg, run_dir)
    (run_dir / "options.json").write_text(cfg.model_dump_json(indent=2) + "\n")
    trial = Trial(cfg)
    optimizer = torch.optim.Adam(trial.parameters(), lr=cfg.lr, betas=cfg.betas)
    ckpt_path = run_dir / "checkpoint.pt"
    start = 0
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, weights_only=True, map_location="cpu")
        trial.navigator.load_state_dict(ckpt["navigator"])
        if trial.prototypes is not None:
            trial.prototypes.load_state_dict(ckpt["prototypes"])
        optimizer.load_state_dict(ckpt["optimizer"])
        torch.set_rng_state(ckpt["rng"])
        start = ckpt["step"]
    history = run_dir / "metrics.jsonl"
    metrics: dict = json.loads(history.read_text().splitlines()[-1]) if history.exists() else {}
    t0 = time.perf_counter()
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc="navigator", unit="step",
               disable=not progress)
    for step in bar:
        loss = training_loss(trial)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        done = step + 1
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if done % cfg.checkpoint_every == 0 or done % cfg.eval.every == 0 or done == cfg.steps:
            rng = torch.get_rng_state()
            if done % cfg.eval.every == 0 or done == cfg.steps:
                with precision.exact():
                    metrics = evaluate(trial, run_dir, done) | {"loss": loss.item(),
                                                                "train_s": time.perf_counter() - t0}
                metrics |= keep_best(run_dir, metrics)
                with open(run_dir / "metrics.jsonl", "a") as f:
                    f.write(json.dumps(metrics) + "\n")
            torch.set_rng_state(rng)
            save_checkpoint(ckpt_path, trial, optimizer, done)
            if report is not None and "step" in metrics and metrics["step"] == done:
                report(metrics, run_dir)
    return metrics
