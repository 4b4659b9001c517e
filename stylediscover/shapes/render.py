"""Procedural renderer of the embedded domain: a wall above a horizon, a floor below, one shaded object
standing on the floor with its shadow. Vectorised over the batch; seeded renders come from the domain
(shapes.domain.DOMAIN.render_seeded).

Image coordinates are fractions of the image side: x to the right, y downwards, both in [0, 1].
Rendering is supersampled (`SUPERSAMPLE`× per axis) and box-filtered for anti-aliased edges.
"""

import math

import torch
import torch.nn.functional as F

from stylediscover.imaging import hsv_to_rgb, pixel_centres
from stylediscover.shapes.factors import FACTOR_NAMES

HORIZON = 0.55
FLOOR_LINE = 0.86
SUPERSAMPLE = 4
LIGHT = (-0.5, -0.6)


def _ellipse(x: torch.Tensor, y: torch.Tensor, cx, cy, rx, ry) -> torch.Tensor:
    return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1


def _object(x: torch.Tensor, y: torch.Tensor, shape: torch.Tensor, cx: torch.Tensor, s: torch.Tensor):
    """Mask and brightness [B, H, W] of the object: cube, cylinder, sphere or cone of height s at x = cx."""
    base = FLOOR_LINE
    dx = x - cx
    shape = shape.long().view(-1, 1, 1)
    # cube: front face, a lighter top face and a darker right side face (oblique projection)
    depth = 0.22 * s
    front = (dx.abs() <= 0.4 * s) & (y >= base - 0.8 * s) & (y <= base)
    t = (base - 0.8 * s - y) / depth
    top = (t >= 0) & (t <= 1) & (dx - t * depth >= -0.4 * s) & (dx - t * depth <= 0.4 * s)
    side_t = (dx - 0.4 * s) / depth
    side = (side_t >= 0) & (side_t <= 1) & (y <= base - side_t * depth) & (y >= base - 0.8 * s - side_t * depth)
    cube_mask = front | top | side
    cube_light = torch.where(top, 1.0, torch.where(front, 0.8, 0.55))
    # cylinder: shaded body with an elliptical top and a rounded bottom
    r, cap = 0.32 * s, 0.1 * s
    body = (dx.abs() <= r) & (y >= base - 0.9 * s) & (y <= base)
    cyl_top = _ellipse(x, y, cx, base - 0.9 * s, r, cap)
    cyl_bottom = _ellipse(x, y, cx, base, r, cap)
    cyl_mask = body | cyl_top | cyl_bottom
    across = (dx / r).clamp(-1, 1)
    cyl_light = torch.where(cyl_top, 1.0, 0.55 + 0.4 * torch.sqrt(1 - across**2) - 0.15 * across)
    # sphere: Lambert shading with light from the upper left
    radius = 0.5 * s
    u, v = dx / radius, (y - (base - radius)) / radius
    rr = u**2 + v**2
    sph_mask = rr <= 1
    nz = torch.sqrt((1 - rr).clamp(min=0))
    lx, ly = LIGHT
    norm = math.sqrt(lx * lx + ly * ly + 1)
    sph_light = 0.35 + 0.65 * ((u * lx + v * ly + nz) / norm).clamp(min=0)
    # cone: triangle from apex to an elliptical base, shaded across
    frac = ((y - (base - s)) / s).clamp(0, 1)
    cone_body = (y >= base - s) & (y <= base) & (dx.abs() <= 0.42 * s * frac)
    cone_mask = cone_body | _ellipse(x, y, cx, base, 0.42 * s, cap)
    cone_across = (dx / (0.42 * s)).clamp(-1, 1)
    cone_light = 0.75 - 0.3 * cone_across + 0.1 * (1 - frac)
    masks = torch.stack([cube_mask, cyl_mask, sph_mask, cone_mask])
    lights = torch.stack([cube_light, cyl_light, sph_light, cone_light])
    index = shape.unsqueeze(0).expand(1, *masks.shape[1:])
    mask = masks.gather(0, index)[0]
    light = lights.gather(0, index)[0]
    return mask, light


def render(factors: torch.Tensor, resolution: int = 32) -> torch.Tensor:
    """factors [B, 6] (columns in FACTOR_NAMES order) → images [B, 3, resolution, resolution] in [-1, 1]."""
    f = dict(zip(FACTOR_NAMES, factors.float().unbind(dim=1)))
    b, n = factors.shape[0], resolution * SUPERSAMPLE
    x, y = pixel_centres(b, n)
    view = lambda t: t.view(b, 1, 1)  # noqa: E731
    wall = y < HORIZON
    wall_value = 0.78 + 0.12 * (y / HORIZON)
    floor_value = 0.62 + 0.3 * ((y - HORIZON) / (1 - HORIZON))
    scale, cx = view(f["object_scale"]), view(f["object_x"])
    shadow = _ellipse(x, y, cx + 0.18 * scale, FLOOR_LINE + 0.02, 0.62 * scale, 0.1 * scale) & ~wall
    floor_value = torch.where(shadow, floor_value * 0.55, floor_value)
    background = torch.where(wall.unsqueeze(-1),
                             hsv_to_rgb(view(f["wall_hue"]).expand(b, n, n), 0.5, wall_value),
                             hsv_to_rgb(view(f["floor_hue"]).expand(b, n, n), 0.65, floor_value))
    mask, light = _object(x, y, f["object_shape"], cx, scale)
    obj = hsv_to_rgb(view(f["object_hue"]).expand(b, n, n), 0.8, (0.98 * light).clamp(0, 1))
    img = torch.where(mask.unsqueeze(-1), obj, background).permute(0, 3, 1, 2)
    img = F.avg_pool2d(img, SUPERSAMPLE)
    return img * 2 - 1

