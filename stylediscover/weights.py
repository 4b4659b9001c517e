"""Networks stored as one safetensors file whose metadata carries a format tag and the JSON config.

Metadata keys: `format` (which kind of network), `config` (its pydantic config as JSON), plus any
extra string fields the writer adds (e.g. `source`, `step`).
"""

import json
import os
from pathlib import Path
from typing import TypeVar

import torch
from pydantic import BaseModel, ValidationError
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from stylediscover.errors import InputError, from_validation_error

M = TypeVar("M", bound=nn.Module)


def save_atomically(state: dict, path: Path) -> None:
    """torch.save to a temporary file, then rename: an interruption never leaves a half-written checkpoint."""
    tmp = Path(path).with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def save_network(network: nn.Module, path: Path, tag: str, **metadata: str) -> None:
    """Writes float32 weights and `network.config` to `path`."""
    state = {k: v.detach().float().contiguous() for k, v in network.state_dict().items()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata={"format": tag, "config": network.config.model_dump_json(), **metadata})


def read_metadata(path: Path) -> dict[str, str]:
    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(path, f"corrupt or truncated safetensors file ({exc})") from None


def build_module(cls: type[M], config: BaseModel, state_dict: dict[str, torch.Tensor], source: str | Path) -> M:
    """`cls(config)` in eval mode holding exactly `state_dict`; missing, unexpected and misshapen keys are named."""
    module = cls(config).eval().requires_grad_(False)
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong = [f"{k} {tuple(state_dict[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
             if k in state_dict and state_dict[k].shape != v.shape]
    if missing or unexpected or wrong:
        details = "; ".join(part for part in (
            f"missing {missing[:5]}" if missing else "",
            f"unexpected {unexpected[:5]}" if unexpected else "",
            f"shape mismatch {wrong[:5]}" if wrong else "") if part)
        raise InputError(source, f"weights do not match the architecture: {details}")
    module.load_state_dict(state_dict)
    return module


def load_network(path: Path, tag: str, cls: type[M], config_cls: type[BaseModel]) -> M:
    """The network of class `cls` stored at `path` under format `tag`; every problem names the file and field."""
    meta = read_metadata(path)
    if meta.get("format") != tag:
        raise InputError(path, f"expected format {tag!r}, found {meta.get('format')!r}", "metadata.format")
    try:
        config = config_cls.model_validate(json.loads(meta["config"]))
    except KeyError:
        raise InputError(path, "missing", "metadata.config") from None
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON ({exc})", "metadata.config") from None
    except ValidationError as exc:
        raise from_validation_error(path, exc, "metadata.config") from None
    try:
        with safe_open(str(path), framework="pt") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(path, f"corrupt or truncated safetensors file ({exc})") from None
    return build_module(cls, config, state, path)
