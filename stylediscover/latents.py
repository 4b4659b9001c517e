"""Latent .npz files (`project`'s output, also carried base64-encoded in recipes) read within bounds: the archive's
members and inflated size are limited before anything inflates, each array's .npy header is checked against the
shape the generator needs before the array is built, and values must be finite floats.

Members: ws [L, d], noise_<i> [H_i, W_i] (one per noise layer), and scalars or strings (pixel_mse, perceptual,
source) that editing does not read.
"""

import io
import math
from pathlib import Path

import numpy as np
from numpy.lib import format as npy

from stylediscover.errors import InputError
from stylediscover.safe_files import read_bytes, unzip_limited

MAX_LATENT_BYTES = 64 << 20
MAX_MEMBERS = 64
MAX_NPY_HEADER = 4096
SLACK = 64 << 10  # bytes beyond the arrays editing reads: headers and the small members


def _array(raw: bytes, source: str | Path, field: str, shape: tuple[int, ...]) -> np.ndarray:
    """A float32 array of exactly `shape` from .npy bytes; the header is checked before the array is built."""
    buffer = io.BytesIO(raw)
    try:
        version = npy.read_magic(buffer)
        read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        stored, fortran, dtype = read_header(buffer, max_header_size=MAX_NPY_HEADER)
    except (ValueError, SyntaxError, TypeError) as exc:
        raise InputError(source, f"not a .npy array ({str(exc)[:120]})", field) from None
    if dtype.kind != "f" or dtype.itemsize not in (2, 4, 8) or dtype.hasobject:
        raise InputError(source, f"dtype {dtype} is not supported (expected float16, float32 or float64)", field)
    if tuple(stored) != shape:
        raise InputError(source, f"shape {list(stored)}, the generator needs {list(shape)}", field)
    count, offset = math.prod(shape), buffer.tell()
    if len(raw) - offset != count * dtype.itemsize:
        raise InputError(source, f"holds {len(raw) - offset} data bytes for {count} {dtype} values", field)
    array = np.frombuffer(raw, dtype, count, offset).reshape(shape, order="F" if fortran else "C")
    if not np.isfinite(array).all():
        raise InputError(source, "holds NaN or infinite values", field)
    return array.astype(np.float32)


def parse_latent(data: bytes, source: str | Path, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """The arrays `shapes` names ({'ws': (L, d), 'noise_0': (H, W), ...}) from a latent .npz's bytes; the inflated
    size is limited to what those arrays can take (as float64) plus SLACK."""
    limit = min(MAX_LATENT_BYTES, SLACK + sum(8 * math.prod(s) + 128 for s in shapes.values()))
    members = unzip_limited(data, source, MAX_MEMBERS, limit)
    arrays = {}
    for name, shape in shapes.items():
        if f"{name}.npy" not in members:
            raise InputError(source, "missing from the latent", name)
        arrays[name] = _array(members[f"{name}.npy"], source, name, shape)
    return arrays


def read_latent(path: Path, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """parse_latent of a latent file (a regular file of at most MAX_LATENT_BYTES)."""
    return parse_latent(read_bytes(path, MAX_LATENT_BYTES, "latent"), path, shapes)
