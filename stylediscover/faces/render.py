"""Procedural renderer of the faces domain: a head and shoulders before a coloured backdrop, with hair,
brows, eyes, nose, mouth, optional glasses, fringe and beard. Vectorised over the batch; deterministic.

Image coordinates are fractions of the image side: x to the right, y downwards, both in [0, 1].
Rendering is supersampled (`SUPERSAMPLE`× per axis) and box-filtered for anti-aliased edges. Layers
are painted back to front; each local factor draws only inside its region (`region_mask`).
"""

import torch
import torch.nn.functional as F

from stylediscover.faces.factors import FACTOR_NAMES
from stylediscover.imaging import hsv_to_rgb, pixel_centres

SUPERSAMPLE = 4
FACE_Y, FACE_RY, FACE_RX = 0.50, 0.30, 0.23   # face ellipse centre height and radii (before face_width)
EYE_Y, EYE_DX, EYE_HW = 0.49, 0.095, 0.05     # eye centre height, half spacing, half width
MOUTH_Y, MOUTH_HW = 0.665, 0.075
LIGHT_SKIN = (0.98, 0.84, 0.72)
DARK_SKIN = (0.42, 0.27, 0.18)
FRAME = (0.08, 0.08, 0.10)
SHIRT = (0.25, 0.27, 0.32)
# Each region as a box around the features (x offsets from the feature centre line, y absolute) that
# contains everything its factor draws, anti-aliasing included.
REGIONS = {"mouth": (0.095, 0.615, 0.735), "eyes": (0.16, 0.445, 0.535), "brows": (0.165, 0.325, 0.44),
           "glasses": (0.185, 0.415, 0.565), "fringe": None, "beard": None}


def _smoothstep(lo: float, hi: float, t: torch.Tensor) -> torch.Tensor:
    t = ((t - lo) / (hi - lo)).clamp(0, 1)
    return t * t * (3 - 2 * t)


def _paint(canvas: torch.Tensor, alpha: torch.Tensor, colour: torch.Tensor) -> torch.Tensor:
    """Alpha-blends colour ([B, 3] or [B, n, n, 3]) over canvas [B, n, n, 3] where alpha [B, n, n] ∈ [0, 1]."""
    if colour.dim() == 2:
        colour = colour.view(-1, 1, 1, 3)
    a = alpha.float().unsqueeze(-1)
    return canvas * (1 - a) + colour * a


def layout(f: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-image geometry [B, 1, 1]: face centre and half width, the features' centre line, the nose."""
    yaw = f["head_yaw"].view(-1, 1, 1)
    return {"face_x": 0.5 + 0.035 * yaw, "face_rx": FACE_RX * f["face_width"].view(-1, 1, 1),
            "feature_x": 0.5 + 0.075 * yaw, "nose_x": 0.5 + 0.1 * yaw, "hair_x": 0.5 + 0.015 * yaw}


def _eyes(canvas, x, y, g, openness, skin):
    for side in (-1, 1):
        dx = (x - g["feature_x"] - side * EYE_DX) / EYE_HW
        dy = y - EYE_Y
        inside = dx.abs() < 1
        half = 0.032 * openness * (1 - dx**2).clamp(min=0)
        white = inside & (dy.abs() < half)
        canvas = _paint(canvas, white, torch.tensor([0.95, 0.95, 0.93]).expand(len(x), 3))
        iris = white & ((dx * EYE_HW) ** 2 + dy**2 < 0.021**2)
        canvas = _paint(canvas, iris, torch.tensor([0.22, 0.13, 0.08]).expand(len(x), 3))
        lid = inside & ((dy + half).abs() < 0.0065)
        canvas = _paint(canvas, lid, skin * 0.35)
    return canvas


def _brows(canvas, x, y, g, height, colour):
    for side in (-1, 1):
        dx = (x - g["feature_x"] - side * EYE_DX) / 0.058
        centre = 0.405 - 0.045 * height + 0.012 * dx**2
        canvas = _paint(canvas, (dx.abs() < 1) & ((y - centre).abs() < 0.01), colour)
    return canvas


def _glasses(canvas, x, y, g, kind):
    frame = torch.zeros_like(x, dtype=torch.bool)
    for side in (-1, 1):
        dx, dy = x - g["feature_x"] - side * EYE_DX, y - EYE_Y
        ring = (dx**2 + dy**2).sqrt()
        round_ = (kind == 1) & (ring > 0.052) & (ring < 0.063)
        box = torch.maximum(dx.abs() / 0.07, dy.abs() / 0.048)
        square = (kind == 2) & (box > 0.85) & (box < 1.0)
        frame |= round_ | square
    across = (x - g["feature_x"]).abs() < EYE_DX - 0.05
    bridge = (kind > 0) & across & ((y - (EYE_Y - 0.012)).abs() < 0.005)
    return _paint(canvas, frame | bridge, torch.tensor(FRAME).expand(len(x), 3))


def _mouth(canvas, x, y, g, smile, opening, skin):
    t = (x - g["feature_x"]) / MOUTH_HW
    inside = t.abs() < 1
    upper = MOUTH_Y + smile * 0.035 * (0.4 - t**2)
    lower = upper + opening * 0.05 * (1 - t**2).clamp(min=0)
    gap = inside & (y > upper) & (y < lower)
    canvas = _paint(canvas, gap, torch.tensor([0.30, 0.06, 0.09]).expand(len(x), 3))
    lip_colour = 0.55 * skin + 0.45 * torch.tensor([0.78, 0.22, 0.26])
    lips = inside & (((y - upper).abs() < 0.008) | ((y - lower).abs() < 0.008))
    return _paint(canvas, lips, lip_colour)


def render(factors: torch.Tensor, resolution: int = 64) -> torch.Tensor:
    """factors [B, 13] (columns in FACTOR_NAMES order) → images [B, 3, resolution, resolution] in [-1, 1]."""
    f = dict(zip(FACTOR_NAMES, factors.float().unbind(dim=1)))
    b, n = factors.shape[0], resolution * SUPERSAMPLE
    x, y = pixel_centres(b, n)
    view = lambda t: t.view(b, 1, 1)  # noqa: E731
    g = layout(f)
    tone = f["skin_tone"].view(b, 1)
    skin = torch.tensor(LIGHT_SKIN) * (1 - tone) + torch.tensor(DARK_SKIN) * tone
    hair = hsv_to_rgb(f["hair_hue"], 0.6, torch.full((b,), 0.5))
    canvas = hsv_to_rgb(view(f["background_hue"]).expand(b, n, n), 0.3, 0.92 - 0.15 * y)
    shirt = ((x - 0.5) / 0.42) ** 2 + ((y - 1.12) / 0.3) ** 2 <= 1
    neck = ((x - g["face_x"]).abs() < 0.085) & (y > 0.68) & (y < 0.92)
    hair_back = (((x - g["hair_x"]) / (g["face_rx"] + 0.05)) ** 2 + ((y - 0.46) / 0.35) ** 2 <= 1) & (y < 0.64)
    face_u = (x - g["face_x"]) / g["face_rx"]
    face = face_u**2 + ((y - FACE_Y) / FACE_RY) ** 2 <= 1
    canvas = _paint(canvas, shirt, torch.tensor(SHIRT).expand(b, 3))
    canvas = _paint(canvas, neck, skin * 0.82)
    canvas = _paint(canvas, hair_back, hair)
    canvas = _paint(canvas, face, skin)
    canvas = _paint(canvas, face.float() * _smoothstep(0.6, 0.66, y) * 0.85 * view(f["beard"]), hair * 0.8)
    fringe_edge = 0.235 + 0.09 * view(f["fringe"]) + 0.03 * face_u**2
    canvas = _paint(canvas, face & (y < fringe_edge), hair)
    nose = ((x - g["nose_x"]).abs() < 0.01) & (y > 0.51) & (y < 0.585)
    nostrils = ((x - g["nose_x"]) / 0.03) ** 2 + ((y - 0.59) / 0.011) ** 2 <= 1
    canvas = _paint(canvas, (nose | nostrils).float() * 0.3, skin * 0.45)
    canvas = _eyes(canvas, x, y, g, view(f["eye_openness"]), skin)
    canvas = _brows(canvas, x, y, g, view(f["eyebrow_height"]), hair * 0.7)
    canvas = _glasses(canvas, x, y, g, view(f["glasses"]).round())
    canvas = _mouth(canvas, x, y, g, view(f["smile"]), view(f["mouth_open"]), skin)
    light = 1 + 0.3 * view(f["light_direction"]) * (x - g["face_x"]) / 0.3
    lit = (shirt | neck | hair_back | face).float() * light + ~(shirt | neck | hair_back | face) * 1.0
    canvas = (canvas * lit.unsqueeze(-1)).clamp(0, 1)
    img = F.avg_pool2d(canvas.permute(0, 3, 1, 2), SUPERSAMPLE)
    return img * 2 - 1


def region_mask(factors: torch.Tensor, region: str, resolution: int = 64) -> torch.Tensor:
    """Pixels [B, resolution, resolution] (bool) that the local factors of `region` may change, given the
    other factors (features move with head_yaw; fringe and beard follow the face outline)."""
    f = dict(zip(FACTOR_NAMES, factors.float().unbind(dim=1)))
    b = factors.shape[0]
    x, y = pixel_centres(b, resolution)
    g = layout(f)
    pad = 1.5 / resolution
    if REGIONS[region] is not None:
        half, top, bottom = REGIONS[region]
        return ((x - g["feature_x"]).abs() < half + pad) & (y > top - pad) & (y < bottom + pad)
    inside = ((x - g["face_x"]).abs() < g["face_rx"] + pad) & (y < FACE_Y + FACE_RY + pad)
    if region == "fringe":
        return inside & (y > FACE_Y - FACE_RY - pad) & (y < 0.235 + 0.09 + 0.03 + pad)
    return inside & (y > 0.6 - pad)

