"""safetensors files checked before their tensors are read: the header's size and tensor count are bounded, every
entry's dtype, shape and byte range are checked, and weights must be finite floats of a supported type.

Layout: 8 bytes little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets [begin, end]},
"__metadata__": {str: str}}, then the data (offsets relative to its start).
"""

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import torch

from stylediscover.errors import InputError

ITEM_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
              "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1}
FLOAT_DTYPES = frozenset({"F64", "F32", "F16", "BF16"})
TORCH_FLOATS = frozenset({torch.float64, torch.float32, torch.float16, torch.bfloat16})
MAX_DIMS = 8


@dataclass(frozen=True)
class TensorInfo:
    """One entry of a header: dtype (safetensors' name, e.g. 'F32') and shape."""

    dtype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Header:
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]


def read_header(f: BinaryIO, size: int, source: str | Path, max_header: int, max_tensors: int) -> Header:
    """The checked header of the safetensors file open as `f` (`size` bytes in all); refuses a header over
    `max_header` bytes or naming over `max_tensors` tensors before parsing it."""
    head = f.read(8)
    if len(head) < 8:
        raise InputError(source, f"truncated safetensors file ({size} bytes)")
    n = struct.unpack("<Q", head)[0]
    if n > max_header:
        raise InputError(source, f"a safetensors header of {n} bytes; at most {max_header} are read")
    if n > size - 8:
        raise InputError(source, f"its safetensors header claims {n} bytes where {size - 8} remain")
    raw = f.read(n)
    if len(raw) < n:
        raise InputError(source, "the file ends inside its safetensors header")
    if raw.count(b"data_offsets") > max_tensors:
        raise InputError(source, f"a safetensors header naming over {max_tensors} tensors; at most that are read")
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise InputError(source, f"its safetensors header is not valid JSON ({str(exc)[:120]})") from None
    if not isinstance(doc, dict):
        raise InputError(source, "its safetensors header is not a JSON object")
    metadata = doc.pop("__metadata__", None) or {}
    if not (isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())):
        raise InputError(source, "its safetensors metadata is not a mapping of strings", "__metadata__")
    if len(doc) > max_tensors:
        raise InputError(source, f"{len(doc)} tensors; at most {max_tensors} are read")
    data_bytes = size - 8 - n
    return Header({name: _entry(name, entry, data_bytes, source) for name, entry in doc.items()}, metadata)


def _entry(name: str, entry: object, data_bytes: int, source: str | Path) -> TensorInfo:
    if not isinstance(entry, dict):
        raise InputError(source, "not a tensor entry", name)
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in ITEM_SIZES:
        raise InputError(source, f"unknown dtype {str(dtype)[:20]!r}", name)
    if not (isinstance(shape, list) and len(shape) <= MAX_DIMS
            and all(type(s) is int and 0 <= s < 2**40 for s in shape)):
        raise InputError(source, f"shape {str(shape)[:60]} is not a list of at most {MAX_DIMS} sizes", name)
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int for o in offsets)
            and 0 <= offsets[0] <= offsets[1] <= data_bytes):
        raise InputError(source, f"data_offsets {str(offsets)[:60]} are outside the {data_bytes} data bytes", name)
    if offsets[1] - offsets[0] != math.prod(shape) * ITEM_SIZES[dtype]:
        raise InputError(source, f"holds {offsets[1] - offsets[0]} bytes for a {dtype} tensor of shape {shape}", name)
    return TensorInfo(dtype, tuple(shape))


def require_floats(header: Header, source: str | Path, names: list[str] | None = None) -> None:
    """Refuses tensors (of `names`, default all) whose dtype is not float64/32/16 or bfloat16 (float8 included)."""
    for name in header.tensors if names is None else names:
        if header.tensors[name].dtype not in FLOAT_DTYPES:
            raise InputError(source, f"dtype {header.tensors[name].dtype} is not supported (expected F32, F16, BF16 "
                             "or F64)", name)


def require_finite(tensors: dict[str, torch.Tensor], source: str | Path) -> None:
    """Refuses floating tensors holding NaN or ±Inf, and floating tensors of an unsupported type (float8)."""
    for name, value in tensors.items():
        if not value.is_floating_point():
            continue
        if value.dtype not in TORCH_FLOATS:
            raise InputError(source, f"dtype {str(value.dtype).removeprefix('torch.')} is not supported (expected "
                             "float32, float16, bfloat16 or float64)", name)
        if not bool(torch.isfinite(value).all()):
            raise InputError(source, "holds NaN or infinite values", name)
