"""Networks stored as one safetensors file whose metadata carries a format tag and the JSON config.

Metadata keys: `format` (which kind of network), `config` (its pydantic config as JSON), plus any
extra string fields the writer adds (e.g. `source`, `step`).
"""

import json
from pathlib import Path
from typing import TypeVar

import torch
from pydantic import BaseModel, ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from stylediscover.errors import InputError, from_validation_error
from stylediscover.outputs import atomic_path
from stylediscover.safe_files import open_regular
from stylediscover.safe_tensors import TORCH_FLOATS, Header, read_header, require_finite

MAX_HEADER_BYTES = 16 << 20
MAX_TENSORS = 4096

M = TypeVar("M", bound=nn.Module)


def save_atomically(state: dict, path: Path) -> None:
    """torch.save to a temporary file, then rename: an interruption never leaves a half-written checkpoint."""
    with atomic_path(Path(path)) as tmp:
        torch.save(state, tmp)


def save_network(network: nn.Module, path: Path, tag: str, **metadata: str) -> None:
    """Writes float32 weights and `network.config` to `path`."""
    state = {k: v.detach().float().contiguous() for k, v in network.state_dict().items()}
    with atomic_path(Path(path)) as tmp:
        save_file(state, str(tmp), metadata={"format": tag, "config": network.config.model_dump_json(), **metadata})


def read_checked_header(path: Path) -> Header:
    """The header of a network's safetensors file (a regular file), bounded (MAX_HEADER_BYTES, MAX_TENSORS) and
    checked entry by entry; float8 weights are refused."""
    with open_regular(path, "safetensors file") as (f, info):
        try:
            header = read_header(f, info.st_size, path, MAX_HEADER_BYTES, MAX_TENSORS)
        except OSError as exc:
            raise InputError(path, f"cannot read the safetensors file ({exc.strerror or exc})") from None
    for name, entry in header.tensors.items():
        if entry.dtype.startswith("F8"):
            raise InputError(path, f"dtype {entry.dtype} is not supported (expected F32, F16, BF16 or F64)", name)
    return header


def read_metadata(path: Path) -> dict[str, str]:
    return read_checked_header(path).metadata


def float32_views(tensors: dict[str, torch.Tensor], source: str | Path) -> dict[str, torch.Tensor]:
    """The tensors with every floating one as float32, converting each storage once: names that share a storage
    (however many) become views of one converted copy, so memory grows by the storages' size, not the names'
    count. Floating types other than float64/32/16 and bfloat16 (float8) are refused."""
    converted: dict[tuple[int, int, torch.dtype], torch.Tensor] = {}
    out = {}
    for name, value in tensors.items():
        if not isinstance(value, torch.Tensor) or not value.is_floating_point() or value.dtype == torch.float32:
            out[name] = value
            continue
        if value.dtype not in TORCH_FLOATS:
            raise InputError(source, f"dtype {str(value.dtype).removeprefix('torch.')} is not supported (expected "
                             "float32, float16, bfloat16 or float64)", name)
        storage = value.untyped_storage()
        key = (storage.data_ptr(), storage.nbytes(), value.dtype)
        if key not in converted:
            whole = torch.empty(0, dtype=value.dtype).set_(storage, 0, (storage.nbytes() // value.element_size(),))
            converted[key] = whole.float()
        out[name] = converted[key].as_strided(value.shape, value.stride(), value.storage_offset())
    return out


def build_module(cls: type[M], config: BaseModel, state_dict: dict[str, torch.Tensor], source: str | Path) -> M:
    """`cls(config)` in eval mode holding exactly `state_dict` (its floating tensors as float32); missing,
    unexpected, misshapen and non-tensor entries are named. The architecture is first built on PyTorch's `meta`
    device, which allocates nothing, and then takes over the given tensors, so a config that claims far more
    than the file holds is refused before any allocation, and a good file costs its tensors' memory only.
    Not `safetensors.torch.load_model`: it copies into parameters that exist (load_state_dict without assign), which
    leaves a meta-device module empty, and the pickle formats built here have no safetensors file to give it."""
    with torch.device("meta"):
        module = cls(config).eval().requires_grad_(False)
    expected = module.state_dict()
    not_tensors = sorted(k for k, v in state_dict.items() if not isinstance(v, torch.Tensor))
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong = [f"{k} {tuple(state_dict[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
             if k in state_dict and k not in not_tensors and state_dict[k].shape != v.shape]
    if missing or unexpected or wrong or not_tensors:
        details = "; ".join(part for part in (
            f"not tensors {not_tensors[:5]}" if not_tensors else "",
            f"missing {missing[:5]}" if missing else "",
            f"unexpected {unexpected[:5]}" if unexpected else "",
            f"shape mismatch {wrong[:5]}" if wrong else "") if part)
        raise InputError(source, f"weights do not match the architecture: {details}")
    if any(not (v.is_floating_point() or v.dtype == expected[k].dtype) for k, v in state_dict.items()):
        raise InputError(source, "weights of a non-floating type where the architecture has floating ones")
    state_dict = float32_views(state_dict, source)
    require_finite(state_dict, source)
    module.load_state_dict(state_dict, assign=True)
    left = [name for name, t in [*module.named_parameters(), *module.named_buffers()] if t.is_meta]
    if left:
        raise RuntimeError(f"{cls.__name__} creates tensors outside its state dict on the default device: {left[:3]}")
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
        state = load_file(path)
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(path, f"corrupt or truncated safetensors file ({exc})") from None
    return build_module(cls, config, state, path)
