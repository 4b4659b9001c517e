"""The faces domain's generative factors: names, kinds, ranges and regions, in one place.

Every factor is sampled independently and uniformly. Local factors change only their region of the
image (`stylediscover.faces.render.region_mask` gives its pixels for given factors):

| factor          | kind        | range / classes          | region  | what it changes                          |
|-----------------|-------------|--------------------------|---------|------------------------------------------|
| skin_tone       | linear      | [0, 1] light to dark     | —       | skin colour of face and neck             |
| hair_hue        | hue         | [0, 1)                   | —       | colour of hair, brows and beard          |
| background_hue  | hue         | [0, 1)                   | —       | backdrop colour                          |
| light_direction | linear      | [-1, 1] left to right    | —       | shading across the head and shoulders    |
| head_yaw        | linear      | [-1, 1] left to right    | —       | features shift sideways, outline follows |
| face_width      | linear      | [0.85, 1.15]             | —       | width of the face outline and hair       |
| smile           | linear      | [-1, 1] frown to smile   | mouth   | mouth curvature                          |
| mouth_open      | linear      | [0, 1]                   | mouth   | gap between the lips                     |
| eye_openness    | linear      | [0.1, 1]                 | eyes    | eyelid opening                           |
| eyebrow_height  | linear      | [0, 1]                   | brows   | brow height above the eyes               |
| glasses         | categorical | none, round, square      | glasses | frames over the eyes                     |
| fringe          | linear      | [0, 1]                   | fringe  | hair length over the forehead            |
| beard           | linear      | [0, 1]                   | beard   | hair over chin and jaw                   |
"""

from stylediscover.factors import Factor

GLASSES = ("none", "round", "square")
FACTORS = (
    Factor("skin_tone", "linear", 0.0, 1.0),
    Factor("hair_hue", "hue"),
    Factor("background_hue", "hue"),
    Factor("light_direction", "linear", -1.0, 1.0),
    Factor("head_yaw", "linear", -1.0, 1.0),
    Factor("face_width", "linear", 0.85, 1.15),
    Factor("smile", "linear", -1.0, 1.0, region="mouth"),
    Factor("mouth_open", "linear", 0.0, 1.0, region="mouth"),
    Factor("eye_openness", "linear", 0.1, 1.0, region="eyes"),
    Factor("eyebrow_height", "linear", 0.0, 1.0, region="brows"),
    Factor("glasses", "categorical", 0, len(GLASSES), GLASSES, region="glasses"),
    Factor("fringe", "linear", 0.0, 1.0, region="fringe"),
    Factor("beard", "linear", 0.0, 1.0, region="beard"),
)
FACTOR_NAMES = tuple(f.name for f in FACTORS)

