"""Real images: optimisation-based projection into W+, and edits with exported directions.

Projection (after NVIDIA's projector, extended to W+): start every layer at w_avg, optimise ws
[1, L, d] and the per-layer noise maps with Adam under a perceptual loss (mean squared difference
of the configured feature network's maps) plus a pixel loss, with noise regularisation (squared
autocorrelation of each noise map at every scale down to 8 px, maps renormalised to zero mean and
unit variance after each step), a learning-rate ramp-up/ramp-down and decaying noise on w.
"""

import io
import math
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field
from tqdm import tqdm

from stylediscover.errors import InputError
from stylediscover.generators import Generator
from stylediscover.generators.network import SynthesisLayer
from stylediscover.latents import parse_latent, read_latent
from stylediscover.metrics import head_responses
from stylediscover.numbers import FiniteFloat
from stylediscover.outputs import atomic_path
from stylediscover.predictor import AttributePredictor
from stylediscover.safe_files import read_bytes

MAX_IMAGE_BYTES = 256 << 20
MAX_IMAGE_PIXELS = 40_000_000


class ProjectionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: int = Field(1000, ge=1, le=100_000)
    lr: FiniteFloat = Field(0.1, gt=0, le=100)
    lr_rampup: FiniteFloat = Field(0.05, gt=0, le=1, description="fraction of the steps")
    lr_rampdown: FiniteFloat = Field(0.25, gt=0, le=1, description="fraction of the steps")
    initial_w_noise: FiniteFloat = Field(0.05, ge=0, le=10)
    w_noise_ramp: FiniteFloat = Field(0.75, gt=0, le=1, description="fraction of the steps")
    pixel_weight: FiniteFloat = Field(1.0, ge=0, le=1e6)
    perceptual_weight: FiniteFloat = Field(1.0, ge=0, le=1e6)
    noise_regularize: FiniteFloat = Field(1e5, ge=0, le=1e9)
    seed: int = Field(0, ge=0, lt=2**63)


def load_image(path: Path, resolution: int) -> torch.Tensor:
    """An RGB image file → [1, 3, R, R] in [-1, 1]; non-square images are centre-cropped and other sizes
    resized, each with a warning."""
    data = read_bytes(path, MAX_IMAGE_BYTES, "image")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            if probe.width * probe.height > MAX_IMAGE_PIXELS:
                raise InputError(path, f"{probe.width}×{probe.height} pixels; at most {MAX_IMAGE_PIXELS} are read")
            image = probe.convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise InputError(path, f"cannot read as an image ({exc})") from None
    w, h = image.size
    if w != h:
        side = min(w, h)
        warnings.warn(f"{path}: {w}×{h} is not square; centre-cropping to {side}×{side}", stacklevel=2)
        image = image.crop(((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side))
    if image.size[0] != resolution:
        warnings.warn(f"{path}: resizing {image.size[0]} px to the generator's {resolution} px", stacklevel=2)
        image = image.resize((resolution, resolution), Image.LANCZOS)
    array = np.asarray(image, dtype=np.float32) / 127.5 - 1
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0)


def noise_layers(generator: Generator) -> list[SynthesisLayer]:
    return [m for m in generator.synthesis.modules() if isinstance(m, SynthesisLayer) and m.use_noise]


def noise_regularisation(maps: list[torch.Tensor]) -> torch.Tensor:
    """Σ over maps and scales of squared one-pixel autocorrelations (horizontal and vertical)."""
    total = maps[0].new_zeros([])
    for n in maps:
        n = n[None, None]
        while True:
            total = total + (n * n.roll(1, dims=3)).mean() ** 2 + (n * n.roll(1, dims=2)).mean() ** 2
            if n.shape[-1] <= 8:
                break
            n = F.avg_pool2d(n, 2)
    return total


def project(generator: Generator, features, target: torch.Tensor, cfg: ProjectionConfig,
            progress: bool = True, on_step: Callable[[int], None] | None = None) -> dict:
    """Projects target [1, 3, R, R] → {'ws' [1, L, d], 'noise' [maps], 'pixel_mse', 'perceptual', 'image'}.
    Starts at w_avg, or for a conditional generator at the mean w of its chosen class. `on_step` is called with
    the number of steps done after each one (an exception it raises stops the projection).

    The generator's noise buffers are restored afterwards.
    """
    gen = torch.Generator().manual_seed(cfg.seed)
    layers = noise_layers(generator)
    saved = [layer.noise_const.clone() for layer in layers]
    maps = [torch.randn(layer.noise_const.shape, generator=gen).requires_grad_(True) for layer in layers]
    with torch.no_grad():
        w_samples = generator.mapping(torch.randn(10_000, generator.z_dim, generator=gen))[:, 0]
        w_start = w_samples.mean(dim=0) if generator.config.c_dim else generator.mapping.w_avg
        w_std = (w_samples - w_start).square().sum(dim=1).mean().sqrt()
        target_feats = features(target)
    ws = w_start.view(1, 1, -1).repeat(1, generator.num_ws, 1).requires_grad_(True)
    opt = torch.optim.Adam([ws, *maps], lr=cfg.lr, betas=(0.9, 0.999))
    bar = tqdm(range(cfg.steps), desc="projection", unit="step", disable=not progress)
    try:
        for step in bar:
            t = step / cfg.steps
            lr = cfg.lr * (0.5 - 0.5 * math.cos(math.pi * min(1.0, (1 - t) / cfg.lr_rampdown))) \
                * min(1.0, t / cfg.lr_rampup)
            for group in opt.param_groups:
                group["lr"] = lr
            w_noise = w_std * cfg.initial_w_noise * max(0.0, 1 - t / cfg.w_noise_ramp) ** 2
            for layer, n in zip(layers, maps):
                layer.noise_const = n
            image = generator.synthesis(ws + torch.randn(ws.shape, generator=gen) * w_noise, noise_mode="const")
            perceptual = sum(F.mse_loss(a, b) for a, b in zip(features(image), target_feats))
            pixel = F.mse_loss(image, target)
            loss = cfg.perceptual_weight * perceptual + cfg.pixel_weight * pixel \
                + cfg.noise_regularize * noise_regularisation(maps)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                for n in maps:
                    n.sub_(n.mean()).div_(n.square().mean().sqrt() + 1e-8)
            bar.set_postfix(pixel=f"{pixel.item():.4f}", perceptual=f"{perceptual.item():.4f}")
            if on_step is not None:
                on_step(step + 1)
        with torch.no_grad():
            for layer, n in zip(layers, maps):
                layer.noise_const = n.detach()
            image = generator.synthesis(ws, noise_mode="const")
            result = {"ws": ws.detach(), "noise": [n.detach() for n in maps], "image": image,
                      "pixel_mse": F.mse_loss(image, target).item(),
                      "perceptual": float(sum(F.mse_loss(a, b) for a, b in zip(features(image), target_feats)))}
    finally:
        for layer, buffer in zip(layers, saved):
            layer.noise_const = buffer
    return result


def latent_bytes(result: dict, source: str) -> bytes:
    """The latent .npz file's bytes: ws [L, d], noise_<i> maps, pixel_mse, perceptual, source image path."""
    arrays = {"ws": result["ws"][0].numpy(), "pixel_mse": np.float32(result["pixel_mse"]),
              "perceptual": np.float32(result["perceptual"]), "source": np.array(source)}
    arrays |= {f"noise_{i}": n.numpy() for i, n in enumerate(result["noise"])}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def save_latent(path: Path, result: dict, source: str) -> None:
    """Writes latent.npz (latent_bytes) atomically."""
    with atomic_path(Path(path)) as tmp:
        tmp.write_bytes(latent_bytes(result, source))


def latent_shapes(generator: Generator) -> dict[str, tuple[int, ...]]:
    """Shapes of the arrays a latent .npz holds for `generator`: ws [L, d] and noise_<i> per noise layer."""
    shapes = {"ws": (generator.num_ws, generator.w_dim)}
    return shapes | {f"noise_{i}": tuple(layer.noise_const.shape) for i, layer in enumerate(noise_layers(generator))}


def load_latent(path: Path, generator: Generator) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """ws [1, L, d] and noise maps from a latent .npz file, checked against the generator (latents.read_latent)."""
    return _tensors(read_latent(Path(path), latent_shapes(generator)))


def latent_from_bytes(data: bytes, source: str, generator: Generator) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """load_latent of a latent's bytes; errors name `source`."""
    return _tensors(parse_latent(data, source, latent_shapes(generator)))


def _tensors(arrays: dict[str, np.ndarray]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    ws = torch.from_numpy(arrays.pop("ws")).unsqueeze(0)
    return ws, [torch.from_numpy(arrays[f"noise_{i}"]) for i in range(len(arrays))]


@torch.no_grad()
def render_edits(generator: Generator, ws: torch.Tensor, noise: list[torch.Tensor], deltas: list[torch.Tensor],
                 strengths: list[float]) -> torch.Tensor:
    """Rows of edits: for each delta [1, L, d], G(ws + s·delta) for s in strengths → [rows·S, 3, R, R]."""
    layers = noise_layers(generator)
    saved = [layer.noise_const for layer in layers]
    try:
        for layer, n in zip(layers, noise):
            layer.noise_const = n
        edited = torch.cat([ws + s * d for d in deltas for s in strengths])
        return generator.synthesis(edited, noise_mode="const")
    finally:
        for layer, buffer in zip(layers, saved):
            layer.noise_const = buffer


@torch.no_grad()
def edit_response(generator: Generator, predictor: AttributePredictor, ws: torch.Tensor, noise: list[torch.Tensor],
                  delta: torch.Tensor) -> torch.Tensor:
    """How one edit changes each attribute of one projected image: a [A] from G(ws ± delta) with the image's own
    noise maps, in the units of metrics.head_responses (ws and delta [1, L, d])."""
    raw = predictor(render_edits(generator, ws, noise, [delta], [1.0, -1.0]))
    return head_responses(predictor, raw[:1], raw[1:])
