"""Parameter types and parsers shared by the command groups: finite numbers in range, seed lists, strength
lists, --force."""

import math

import click

FORCE = click.option("--force", is_flag=True, help="Overwrite existing outputs.")


MAX_SEEDS = 4096
MAX_STRENGTH = 1e4


class Finite(click.ParamType):
    """A finite number in [low, high] (click.FloatRange lets NaN through)."""

    name = "number"

    def __init__(self, low: float, high: float):
        self.low, self.high = low, high

    def convert(self, value, param, ctx) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not (math.isfinite(number) and self.low <= number <= self.high):
            self.fail(f"{value!r} is not a finite number in [{self.low:g}, {self.high:g}]", param, ctx)
        return number


PSI = Finite(0.0, 2.0)
STRENGTH = Finite(0.0, MAX_STRENGTH)


def parse_seeds(text: str) -> list[int]:
    """'0-3,7' → [0, 1, 2, 3, 7]; at most MAX_SEEDS seeds, each in [0, 2³²)."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            first, last = int(lo), int(hi or lo)
            if not 0 <= first <= last < 2**32 or len(seeds) + last - first >= MAX_SEEDS:
                raise click.BadParameter(f"at most {MAX_SEEDS} seeds, each in 0..{2**32 - 1}, ranges ascending; got "
                                         f"{text!r}", param_hint="--seeds")
            seeds.extend(range(first, last + 1))
    except ValueError:
        raise click.BadParameter(f"expected seeds like '0-7,42', got {text!r}", param_hint="--seeds") from None
    return seeds


def parse_floats(text: str, option: str) -> list[float]:
    """'-2,0,2' → [-2.0, 0.0, 2.0]; each finite and at most MAX_STRENGTH in size."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected numbers like '-2,0,2', got {text!r}", param_hint=option) from None
    if not all(math.isfinite(v) and abs(v) <= MAX_STRENGTH for v in values):
        raise click.BadParameter(f"each must be a finite number within ±{MAX_STRENGTH:g}, got {text!r}",
                                 param_hint=option)
    return values
