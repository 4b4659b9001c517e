"""Trains this project's StyleGAN2 on an embedded domain's renders: non-saturating logistic loss, lazy R1, EMA of G,
style mixing. Checkpoints atomically every `checkpoint_every` steps and resumes bit-identically
(model, optimiser and RNG states; the data of step t is rendered from seed (seed, t)).

Run directory: options.json, checkpoint.pt (weights_only-loadable), log.jsonl (losses, s/step),
samples-<step>.png, and the exported G_ema / D in the native format (generator.safetensors,
discriminator.safetensors).
"""

import json
import time
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from tqdm import tqdm

from stylediscover.domains import NAMES, get_domain
from stylediscover.generators.discriminator import Discriminator, DiscriminatorConfig
from stylediscover.generators.native import save_native
from stylediscover.generators.network import Generator, GeneratorConfig
from stylediscover.imaging import grid, save_png
from stylediscover.weights import save_atomically


class GanTrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    domain: Literal[NAMES] = "shapes"
    resolution: int = 32
    z_dim: int = 128
    w_dim: int = 128
    mapping_layers: int = 4
    g_channels: dict[int, int] = {4: 128, 8: 128, 16: 64, 32: 32}
    d_channels: dict[int, int] = {32: 32, 16: 64, 8: 128, 4: 128}
    batch: int = Field(16, ge=2)
    steps: int = Field(30_000, ge=1)
    g_lr: float = 0.0025
    d_lr: float = 0.0025
    betas: tuple[float, float] = (0.0, 0.99)
    r1_gamma: float = 1.0
    r1_interval: int = 16
    style_mixing: float = 0.9
    ema_kimg: float = 10.0
    ema_rampup: float = 0.05
    seed: int = 0
    threads: int = 2
    checkpoint_every: int = 250
    sample_every: int = 1000


def _networks(cfg: GanTrainConfig) -> tuple[Generator, Discriminator, Generator]:
    g_config = GeneratorConfig(z_dim=cfg.z_dim, w_dim=cfg.w_dim, resolution=cfg.resolution,
                               channels=cfg.g_channels, mapping_layers=cfg.mapping_layers)
    d_config = DiscriminatorConfig(resolution=cfg.resolution, channels=cfg.d_channels)
    G, D, G_ema = Generator(g_config), Discriminator(d_config), Generator(g_config)
    G_ema.load_state_dict(G.state_dict())
    G_ema.requires_grad_(False).eval()
    return G, D, G_ema


def real_batch(cfg: GanTrainConfig, step: int) -> torch.Tensor:
    """Renders of step `step`: [batch, 3, R, R], deterministic from (seed, step)."""
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
    domain = get_domain(cfg.domain)
    return domain.render(domain.sample(cfg.batch, gen), cfg.resolution)


def mixed_ws(G: Generator, z: torch.Tensor, prob: float) -> torch.Tensor:
    """ws [B, num_ws, w_dim] from z [B, z_dim]; with probability `prob` a second z takes over from a random layer."""
    ws = G.mapping(z, update_w_avg=G.training)
    if prob > 0 and torch.rand([]) < prob:
        cutoff = int(torch.randint(1, G.num_ws, []))
        ws2 = G.mapping(torch.randn_like(z))
        ws = torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)
    return ws


def d_step(cfg: GanTrainConfig, G: Generator, D: Discriminator, real: torch.Tensor, step: int) -> dict:
    with torch.no_grad():
        fake = G.synthesis(mixed_ws(G, torch.randn(cfg.batch, cfg.z_dim), cfg.style_mixing), "random")
    do_r1 = step % cfg.r1_interval == 0
    real = real.detach().requires_grad_(do_r1)
    real_logits, fake_logits = D(real), D(fake)
    loss = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
    stats = {"d_loss": loss.item(), "d_real": real_logits.mean().item(), "d_fake": fake_logits.mean().item()}
    if do_r1:
        (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
        r1 = grad.square().sum(dim=[1, 2, 3]).mean()
        loss = loss + r1 * (cfg.r1_gamma / 2) * cfg.r1_interval
        stats["r1"] = r1.item()
    loss.backward()
    return stats


def g_step(cfg: GanTrainConfig, G: Generator, D: Discriminator) -> dict:
    fake = G.synthesis(mixed_ws(G, torch.randn(cfg.batch, cfg.z_dim), cfg.style_mixing), "random")
    loss = F.softplus(-D(fake)).mean()
    loss.backward()
    return {"g_loss": loss.item()}


@torch.no_grad()
def ema_update(cfg: GanTrainConfig, G: Generator, G_ema: Generator, step: int) -> None:
    images_seen = (step + 1) * cfg.batch
    ema_nimg = min(cfg.ema_kimg * 1000, images_seen * cfg.ema_rampup)
    beta = 0.5 ** (cfg.batch / max(ema_nimg, 1e-8))
    for p_ema, p in zip(G_ema.parameters(), G.parameters()):
        p_ema.copy_(p.lerp(p_ema, beta))
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)


def train(cfg: GanTrainConfig, run_dir: Path) -> Path:
    """Trains until cfg.steps, resuming from run_dir/checkpoint.pt when present; returns the run dir."""
    torch.set_num_threads(cfg.threads)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    G, D, G_ema = _networks(cfg)
    lazy = cfg.r1_interval / (cfg.r1_interval + 1)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.g_lr, betas=cfg.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.d_lr * lazy, betas=tuple(b ** lazy for b in cfg.betas))
    ckpt_path = run_dir / "checkpoint.pt"
    start = 0
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, weights_only=True)
        for module, key in ((G, "G"), (D, "D"), (G_ema, "G_ema"), (opt_g, "opt_g"), (opt_d, "opt_d")):
            module.load_state_dict(ckpt[key])
        torch.set_rng_state(ckpt["rng"])
        start = ckpt["step"]
    (run_dir / "options.json").write_text(cfg.model_dump_json(indent=2) + "\n")
    z_fixed = torch.randn(64, cfg.z_dim, generator=torch.Generator().manual_seed(cfg.seed + 1))
    log = open(run_dir / "log.jsonl", "a")
    G.train()
    D.train()
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc=f"{cfg.domain} GAN", unit="step")
    t_last = time.perf_counter()
    for step in bar:
        opt_d.zero_grad(set_to_none=True)
        stats = d_step(cfg, G, D, real_batch(cfg, step), step)
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        stats |= g_step(cfg, G, D)
        opt_g.step()
        ema_update(cfg, G, G_ema, step)
        done = step + 1
        if done % 50 == 0 or done == cfg.steps:
            now = time.perf_counter()
            stats |= {"step": done, "s_per_step": (now - t_last) / 50}
            t_last = now
            log.write(json.dumps(stats) + "\n")
            log.flush()
            bar.set_postfix(g=f"{stats['g_loss']:.2f}", d=f"{stats['d_loss']:.2f}")
        if done % cfg.sample_every == 0 or done == cfg.steps:
            with torch.no_grad():
                save_png(grid(G_ema(z_fixed, noise_mode="const"), 8), run_dir / f"samples-{done:06d}.png")
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            save_atomically({"G": G.state_dict(), "D": D.state_dict(), "G_ema": G_ema.state_dict(),
                             "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
                             "rng": torch.get_rng_state(), "step": done}, ckpt_path)
            save_native(G_ema, run_dir / "generator.safetensors", step=str(done))
            save_native(D, run_dir / "discriminator.safetensors", step=str(done))
    log.close()
    return run_dir

