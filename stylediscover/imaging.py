"""Image tensors to pictures and files, through torchvision: [-1, 1] float tensors [B, C, H, W] to grids (float
[C, H, W] in [0, 1]), PNG files, and PNG bytes for pages; HSV colours for the domains' renderers."""

import base64
import io
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid, save_image

from stylediscover.outputs import atomic_path


def hsv_to_rgb(h: torch.Tensor, s: float, v: torch.Tensor) -> torch.Tensor:
    """Hue h [...] in turns, saturation s, value v [...] → RGB [..., 3] in [0, 1]."""
    k = torch.stack([(5 + 6 * h) % 6, (3 + 6 * h) % 6, (1 + 6 * h) % 6], dim=-1)
    return v.unsqueeze(-1) * (1 - s * torch.clamp(torch.minimum(k, 4 - k), 0, 1))


def pixel_centres(batch: int, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x, y [batch, side, side]: the centres of a side × side pixel grid as fractions of the image side (x to the
    right, y downwards)."""
    coords = (torch.arange(side, dtype=torch.float32) + 0.5) / side
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    return x.expand(batch, side, side), y.expand(batch, side, side)


def grid(images: torch.Tensor, cols: int | None = None, pad: int = 2) -> torch.Tensor:
    """Tiles [B, C, H, W] in [-1, 1] row by row with `pad` white pixels between tiles and none around them."""
    picture = make_grid(images.detach().float().cpu(), nrow=cols or math.ceil(math.sqrt(len(images))), padding=pad,
                        normalize=True, value_range=(-1, 1), pad_value=1.0)
    if len(images) == 1:  # make_grid returns a single image as it is, and pads the outer edge of any other grid
        return picture
    return picture[:, pad:picture.shape[1] - pad, pad:picture.shape[2] - pad]


def save_png(picture: torch.Tensor, path: str | Path) -> Path:
    """Writes a [C, H, W] picture in [0, 1] as PNG, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        save_image(picture, tmp, format="png")
    return path


def pixels(picture: torch.Tensor) -> np.ndarray:
    """A [C, H, W] picture in [0, 1] as uint8 [H, W, C], rounded as `save_png` rounds."""
    return picture.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def png_bytes(picture: torch.Tensor, compress_level: int = 1) -> bytes:
    """A [C, H, W] picture in [0, 1] as PNG bytes (zlib level 1 by default: fast, for images sent at once;
    save_image cannot choose the level)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels(picture)).save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def png_data_uri(picture: torch.Tensor, compress_level: int = 1) -> str:
    """A [C, H, W] picture in [0, 1] as a `data:image/png;base64,...` URI (self-contained pages)."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(picture, compress_level)).decode("ascii")
