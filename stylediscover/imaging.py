"""Image tensors ↔ files: [-1, 1] float tensors [B, C, H, W] to uint8 grids and PNGs."""

import base64
import io
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from stylediscover.outputs import atomic_path


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[B, C, H, W] in [-1, 1] → [B, H, W, C] uint8."""
    x = (images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5
    return x.round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def grid(images: torch.Tensor, cols: int | None = None, pad: int = 2) -> np.ndarray:
    """Tiles [B, C, H, W] row by row into one [rows·(H+pad)−pad, cols·(W+pad)−pad, C] uint8 image."""
    tiles = to_uint8(images)
    b, h, w, c = tiles.shape
    cols = cols or math.ceil(math.sqrt(b))
    rows = math.ceil(b / cols)
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad, c), 255, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, k = divmod(i, cols)
        out[r * (h + pad):r * (h + pad) + h, k * (w + pad):k * (w + pad) + w] = tile
    return out


def save_png(array: np.ndarray, path: str | Path) -> Path:
    """Writes a uint8 [H, W, C] image as PNG, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array).save(tmp, format="PNG")
    return path


def png_bytes(array: np.ndarray, compress_level: int = 1) -> bytes:
    """A uint8 [H, W, 3] image as PNG bytes (zlib level 1 by default: fast, for images sent at once)."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def png_data_uri(array: np.ndarray, compress_level: int = 1) -> str:
    """A uint8 [H, W, 3] image as a `data:image/png;base64,...` URI (self-contained pages)."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(array, compress_level)).decode("ascii")
