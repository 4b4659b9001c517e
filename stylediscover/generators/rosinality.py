"""rosinality/stylegan2-pytorch checkpoints (`.pt`): `g_ema` state dict (+ `latent_avg`), mapped onto Generator.

Key correspondences (rosinality → NVIDIA names used here):
  style.{i+1}.*                   → mapping.fc{i}.*
  input.input [1, C, 4, 4]        → synthesis.b4.const [C, 4, 4]
  conv1 / to_rgb1                 → synthesis.b4.conv1 / synthesis.b4.torgb
  convs.{2j} / convs.{2j+1}       → synthesis.b{2^(j+3)}.conv0 / .conv1
  to_rgbs.{j}                     → synthesis.b{2^(j+3)}.torgb
  noises.noise_{i} [1, 1, R, R]   → noise_const [R, R] of the i-th synthesis layer
  *.conv.weight [1, O, I, k, k]   → weight [O, I, k, k]; 3×3 weights times 1/sqrt(I·9), the
                                     equalised-lr scale rosinality applies inside the layer
  *.noise.weight [1]              → noise_strength []
  *.activate.bias / to_rgb.bias   → bias
The mapping's learning-rate multiplier is not stored in the file; rosinality's default, 0.01, is used.
"""

import argparse
import math
import re
from pathlib import Path

import torch

from stylediscover.errors import InputError
from stylediscover.generators.network import Generator, GeneratorConfig
from stylediscover.weights import build_module

ROSINALITY_LR_MLP = 0.01
W_AVG_SAMPLES = 10_000


def _styled(src: dict, prefix: str, dst: dict, name: str, noise: torch.Tensor | None) -> None:
    weight = src[f"{prefix}.conv.weight"][0]
    dst[f"{name}.weight"] = weight / math.sqrt(weight[0].numel())
    dst[f"{name}.affine.weight"] = src[f"{prefix}.conv.modulation.weight"]
    dst[f"{name}.affine.bias"] = src[f"{prefix}.conv.modulation.bias"]
    dst[f"{name}.bias"] = src[f"{prefix}.activate.bias"]
    if noise is not None:
        dst[f"{name}.noise_const"] = noise[0, 0]
        dst[f"{name}.noise_strength"] = src[f"{prefix}.noise.weight"][0]


def _to_rgb(src: dict, prefix: str, dst: dict, name: str) -> None:
    dst[f"{name}.weight"] = src[f"{prefix}.conv.weight"][0]
    dst[f"{name}.affine.weight"] = src[f"{prefix}.conv.modulation.weight"]
    dst[f"{name}.affine.bias"] = src[f"{prefix}.conv.modulation.bias"]
    dst[f"{name}.bias"] = src[f"{prefix}.bias"].flatten()


def convert_state_dict(src: dict[str, torch.Tensor]) -> tuple[GeneratorConfig, dict[str, torch.Tensor]]:
    """rosinality `g_ema` state dict → (config, state dict of Generator without w_avg)."""
    n_mlp = len({m.group(1) for k in src if (m := re.fullmatch(r"style\.(\d+)\.weight", k))})
    n_rgbs = len({m.group(1) for k in src if (m := re.fullmatch(r"to_rgbs\.(\d+)\.conv\.weight", k))})
    resolution = 2 ** (n_rgbs + 2)
    style_dim = src["style.1.weight"].shape[1]
    noise = [src.get(f"noises.noise_{i}") for i in range(2 * n_rgbs + 1)]
    dst: dict[str, torch.Tensor] = {}
    for i in range(n_mlp):
        dst[f"mapping.fc{i}.weight"] = src[f"style.{i + 1}.weight"]
        dst[f"mapping.fc{i}.bias"] = src[f"style.{i + 1}.bias"]
    dst["synthesis.b4.const"] = src["input.input"][0]
    _styled(src, "conv1", dst, "synthesis.b4.conv1", noise[0])
    _to_rgb(src, "to_rgb1", dst, "synthesis.b4.torgb")
    channels = {4: src["input.input"].shape[1]}
    for j in range(n_rgbs):
        res = 2 ** (j + 3)
        _styled(src, f"convs.{2 * j}", dst, f"synthesis.b{res}.conv0", noise[2 * j + 1])
        _styled(src, f"convs.{2 * j + 1}", dst, f"synthesis.b{res}.conv1", noise[2 * j + 2])
        _to_rgb(src, f"to_rgbs.{j}", dst, f"synthesis.b{res}.torgb")
        channels[res] = src[f"convs.{2 * j + 1}.conv.weight"].shape[1]
    config = GeneratorConfig(z_dim=style_dim, w_dim=style_dim, resolution=resolution, channels=channels,
                             mapping_layers=n_mlp, mapping_hidden=style_dim,
                             mapping_lr_multiplier=ROSINALITY_LR_MLP, use_noise=noise[0] is not None)
    return config, dst


def load_rosinality(path: Path) -> Generator:
    """The `g_ema` of a rosinality checkpoint; without `latent_avg`, w_avg is estimated from 10k samples."""
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or unsafe files
        raise InputError(path, f"cannot read as a torch checkpoint with weights_only=True ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(ckpt, dict) or "g_ema" not in ckpt:
        keys = sorted(map(str, ckpt)) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise InputError(path, f"expected a rosinality checkpoint dict with 'g_ema', found {keys}", "g_ema")
    src = {k: v.float() for k, v in ckpt["g_ema"].items()}
    try:
        config, state = convert_state_dict(src)
    except (KeyError, IndexError) as exc:
        raise InputError(path, f"rosinality generator layout not recognised (missing {exc})", "g_ema") from None
    latent_avg = ckpt.get("latent_avg")
    state["mapping.w_avg"] = torch.zeros(config.w_dim) if latent_avg is None else latent_avg.float().flatten()
    generator = build_module(Generator, config, state, path)
    if latent_avg is None:
        with torch.no_grad():
            z = torch.randn(W_AVG_SAMPLES, config.z_dim, generator=torch.Generator().manual_seed(0))
            generator.mapping.w_avg.copy_(generator.mapping(z)[:, 0].mean(dim=0))
    return generator
