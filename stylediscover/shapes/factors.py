"""The embedded domain's generative factors: names, kinds and ranges, in one place.

Every factor is sampled independently and uniformly:

| factor        | kind        | range / classes                         | what it changes                       |
|---------------|-------------|-----------------------------------------|---------------------------------------|
| floor_hue     | hue         | [0, 1) (a turn of the colour wheel)     | floor colour (below the horizon)      |
| wall_hue      | hue         | [0, 1)                                  | wall colour (above the horizon)       |
| object_hue    | hue         | [0, 1)                                  | object colour                         |
| object_scale  | linear      | [0.25, 0.5] of the image height         | object size (and its shadow)          |
| object_shape  | categorical | cube, cylinder, sphere, cone            | object silhouette and shading         |
| object_x      | linear      | [0.25, 0.75] of the image width         | object horizontal position            |

Hues are compared on the circle (a predictor regresses cos/sin of 2π·hue).
"""

from stylediscover.factors import Factor

SHAPES = ("cube", "cylinder", "sphere", "cone")
FACTORS = (
    Factor("floor_hue", "hue"),
    Factor("wall_hue", "hue"),
    Factor("object_hue", "hue"),
    Factor("object_scale", "linear", 0.25, 0.5),
    Factor("object_shape", "categorical", 0, len(SHAPES), SHAPES),
    Factor("object_x", "linear", 0.25, 0.75),
)
FACTOR_NAMES = tuple(f.name for f in FACTORS)

