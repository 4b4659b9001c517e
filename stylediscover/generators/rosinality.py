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
import io
import math
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError

from stylediscover.errors import InputError, from_validation_error, summary
from stylediscover.generators.network import Generator, GeneratorConfig
from stylediscover.generators.safe_pickle import TENSOR_GLOBALS, read_legacy, refusing, scan
from stylediscover.weights import build_module, float32_views

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
    if resolution > 1024:
        raise ValueError(f"{n_rgbs} to_rgbs layers mean resolution {resolution}, above 1024")
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


class _Namespace:
    """Stand-in for the `argparse.Namespace` of training checkpoints (legacy format)."""


_LEGACY_GLOBALS = {**TENSOR_GLOBALS, ("argparse", "Namespace"): _Namespace}


def _read_zip(path: Path) -> dict:
    """A zip-format torch file, checked before torch.load(weights_only=True) reads it: records stored whole
    (no compression, so no expansion), their sizes within the file, and data.pkl passing the opcode scan."""
    with zipfile.ZipFile(path) as archive:
        entries = archive.infolist()
        if any(e.compress_type != zipfile.ZIP_STORED or e.file_size != e.compress_size for e in entries) or \
                sum(e.file_size for e in entries) > path.stat().st_size:
            raise InputError(path, "torch zip records are compressed or larger than the file")
        pickles = [e for e in entries if e.filename.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise InputError(path, "not a torch zip checkpoint (no single data.pkl)")
        with archive.open(pickles[0]) as f:
            buffer = io.BytesIO(f.read())
    refusing(str(path), lambda: scan(buffer, len(buffer.getvalue()), lambda module, name: None))
    with torch.serialization.safe_globals([argparse.Namespace]):
        return torch.load(path, map_location="cpu", weights_only=True)


def _read_checkpoint(path: Path) -> Any:
    if zipfile.is_zipfile(path):
        try:
            return _read_zip(path)
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 (torch raises many types for corrupt or unsafe files)
            problem = f"cannot read as a torch checkpoint with weights_only=True ({summary(exc)})"
            raise InputError(path, problem) from None
    with open(path, "rb") as f:
        return refusing(str(path), lambda: read_legacy(f, path.stat().st_size, _LEGACY_GLOBALS))


def _tensor(value: Any, path: Path, field: str) -> torch.Tensor:
    """A floating tensor with no more elements than its storage holds (no stride-0 or overlapping expansion)."""
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise InputError(path, f"expected a floating-point tensor, found {type(value).__name__}", field)
    if value.numel() > value.untyped_storage().nbytes() // value.element_size():
        raise InputError(path, f"a tensor of {value.numel()} elements expands its storage", field)
    return value


def load_rosinality(path: Path) -> Generator:
    """The `g_ema` of a rosinality checkpoint (zip or legacy torch format); without `latent_avg`, w_avg is
    estimated from 10k samples."""
    ckpt = _read_checkpoint(path)
    if not isinstance(ckpt, dict) or "g_ema" not in ckpt:
        keys = sorted(map(str, ckpt))[:10] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise InputError(path, f"expected a rosinality checkpoint dict with 'g_ema', found {keys}", "g_ema")
    if not isinstance(ckpt["g_ema"], dict):
        raise InputError(path, f"expected a state dict, found {type(ckpt['g_ema']).__name__}", "g_ema")
    src = float32_views({str(k): _tensor(v, path, f"g_ema.{k}") for k, v in ckpt["g_ema"].items()}, path)
    try:
        config, state = convert_state_dict(src)
    except ValidationError as exc:
        raise from_validation_error(path, exc, "g_ema") from None
    except (KeyError, IndexError, ValueError, TypeError, RuntimeError) as exc:
        raise InputError(path, f"rosinality generator layout not recognised ({type(exc).__name__}: {exc})",
                         "g_ema") from None
    latent_avg = ckpt.get("latent_avg")
    if latent_avg is not None:
        latent_avg = float32_views({"latent_avg": _tensor(latent_avg, path, "latent_avg")}, path)["latent_avg"]
        latent_avg = latent_avg.flatten()
        if latent_avg.numel() != config.w_dim:
            raise InputError(path, f"has {latent_avg.numel()} values, expected w_dim = {config.w_dim}", "latent_avg")
    state["mapping.w_avg"] = torch.zeros(config.w_dim) if latent_avg is None else latent_avg
    generator = build_module(Generator, config, state, path)
    if latent_avg is None:
        with torch.no_grad():
            z = torch.randn(W_AVG_SAMPLES, config.z_dim, generator=torch.Generator().manual_seed(0))
            generator.mapping.w_avg.copy_(generator.mapping(z)[:, 0].mean(dim=0))
    return generator
