"""NVIDIA stylegan2-ada-pytorch snapshots (`.pkl`), read without NVIDIA's code and without executing anything.

A snapshot pickles each network through `torch_utils.persistence._reconstruct_persistent_obj(meta)`;
`meta['state']` is the module's `__dict__` (`_parameters`, `_buffers`, `_modules`, plain attributes)
and `meta['module_src']` is Python source that NVIDIA's loader would `exec`. The restricted
unpickler (stylediscover.generators.safe_pickle) resolves only the handful of globals a genuine snapshot
references, turns each persistent object into a plain `PersistentRecord`, and never looks at `module_src`.
"""

import pickle
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError

from stylediscover.errors import InputError, from_validation_error
from stylediscover.generators.network import Generator, GeneratorConfig, resample_filter
from stylediscover.generators.safe_pickle import (
    NUMPY_GLOBALS,
    TENSOR_GLOBALS,
    load_pickle,
    nested_legacy_loader,
    refusing,
)
from stylediscover.weights import build_module


class PersistentRecord:
    """What a `torch_utils.persistence` object becomes here: its class name and its `__dict__`."""

    def __init__(self, meta: dict):
        if not isinstance(meta, dict) or meta.get("type") != "class" or "state" not in meta:
            raise pickle.UnpicklingError("malformed torch_utils.persistence record")
        self.class_name: str = str(meta.get("class_name"))
        self.state: dict = dict(meta["state"] or {})

    def child(self, name: str) -> "PersistentRecord":
        return self.state["_modules"][name]

    def tensors(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """All parameters and buffers below this module, by dotted name as in a state dict."""
        out = {}
        for group in ("_parameters", "_buffers"):
            for name, value in (self.state.get(group) or {}).items():
                if value is not None and not isinstance(value, torch.Tensor):
                    raise TypeError(f"{prefix}{name} is a {type(value).__name__}, not a tensor")
                if value is not None:
                    out[prefix + name] = value.detach()
        for name, module in (self.state.get("_modules") or {}).items():
            if isinstance(module, PersistentRecord):
                out.update(module.tensors(f"{prefix}{name}."))
        return out


class EasyDict(dict):
    """Stand-in for `dnnlib.util.EasyDict` (a dict with attribute access)."""


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    **TENSOR_GLOBALS,
    **NUMPY_GLOBALS,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): PersistentRecord,
    ("torch.storage", "_load_from_bytes"): nested_legacy_loader(TENSOR_GLOBALS),
}


def _hint(module: str) -> str | None:
    if module.startswith("dnnlib.tflib"):
        return ("this is a TensorFlow StyleGAN pickle; convert it to a stylegan2-ada-pytorch snapshot with "
                "NVIDIA's legacy.py first")
    return None


def read_snapshot(path: Path) -> dict:
    """The snapshot's top-level dict, with networks as `PersistentRecord`s (see safe_pickle for the checks)."""
    with open(path, "rb") as f:
        data = refusing(str(path), lambda: load_pickle(f, path.stat().st_size, _ALLOWED_GLOBALS, _hint))
    if not isinstance(data, dict):
        raise InputError(path, f"expected a snapshot dict with key 'G_ema', found {type(data).__name__}")
    return data


def _config_from_record(g: PersistentRecord, path: Path) -> GeneratorConfig:
    """Architecture read from the recorded attributes and weight shapes of `G_ema`."""
    state, mapping, synthesis = g.state, g.child("mapping"), g.child("synthesis")
    c_dim = int(state.get("c_dim") or 0)
    blocks = {int(n[1:]): b for n, b in synthesis.state["_modules"].items() if n.startswith("b")}
    for res, block in blocks.items():
        if block.state.get("architecture", "skip") != "skip":
            raise InputError(path, f"only the 'skip' architecture is supported, found "
                             f"{block.state['architecture']!r}", f"G_ema.synthesis.b{res}.architecture")
        layer = block.child("conv1")
        if layer.state.get("activation", "lrelu") != "lrelu":
            raise InputError(path, "only lrelu activations are supported", f"G_ema.synthesis.b{res}.conv1.activation")
    conv1 = blocks[4].child("conv1")
    fc0 = mapping.child("fc0")
    return GeneratorConfig(
        z_dim=int(state["z_dim"]), w_dim=int(state["w_dim"]), resolution=int(state["img_resolution"]),
        img_channels=int(state["img_channels"]),
        channels={res: int(block.child("conv1").state["_parameters"]["weight"].shape[0])
                  for res, block in blocks.items()},
        c_dim=c_dim,
        embed_features=int(mapping.child("embed").state["_parameters"]["weight"].shape[0]) if c_dim else None,
        mapping_layers=int(mapping.state["num_layers"]),
        mapping_hidden=int(fc0.state["_parameters"]["weight"].shape[0]),
        mapping_lr_multiplier=float(fc0.state["bias_gain"]),
        w_avg_beta=float(mapping.state.get("w_avg_beta") or 0.995),
        conv_clamp=conv1.state.get("conv_clamp"),
        use_noise=bool(conv1.state.get("use_noise", True)),
    )


def load_nvidia_pickle(path: Path) -> Generator:
    """`G_ema` of a stylegan2-ada-pytorch snapshot as this project's Generator (float32)."""
    snapshot = read_snapshot(path)
    g = snapshot.get("G_ema")
    if not isinstance(g, PersistentRecord):
        raise InputError(path, f"no generator network in the snapshot (keys: {sorted(map(str, snapshot))})", "G_ema")
    if g.class_name != "Generator":
        raise InputError(path, f"expected class 'Generator', found {g.class_name!r}", "G_ema")
    try:
        tensors = g.tensors()
    except (TypeError, AttributeError, RecursionError) as exc:
        raise InputError(path, f"snapshot layout not recognised ({exc})", "G_ema") from None
    try:
        config = _config_from_record(g, path)
    except ValidationError as exc:
        raise from_validation_error(path, exc, "G_ema") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise InputError(path, f"snapshot layout not recognised ({type(exc).__name__}: {exc})", "G_ema") from None
    standard = resample_filter()
    for name in [n for n in tensors if n.endswith("resample_filter")]:
        found = tensors.pop(name)
        if found.shape != standard.shape or not torch.allclose(found.float(), standard):
            raise InputError(path, "only the [1, 3, 3, 1] resample filter is supported", f"G_ema.{name}")
    return build_module(Generator, config, tensors, path)
