"""Built-in networks shipped inside the package, by name: `builtin:<domain>` for a given kind.

`builtin:shapes` is the embedded offline domain: its generator, its discriminator (the default
offline feature network) and its attribute predictor, in stylediscover/shapes/weights/.
"""

from pathlib import Path
from typing import Literal

from stylediscover.errors import InputError

Kind = Literal["generator", "discriminator", "predictor"]
PREFIX = "builtin:"
WEIGHTS = {"shapes": Path(__file__).parent / "shapes" / "weights"}


def resolve_builtin(source: str | Path, kind: Kind) -> str | Path:
    """The packaged file for `builtin:<domain>`; any other source is returned unchanged."""
    if not isinstance(source, str) or not source.startswith(PREFIX):
        return source
    domain = source[len(PREFIX):]
    if domain not in WEIGHTS:
        raise InputError(source, f"unknown built-in; known: {', '.join(PREFIX + d for d in WEIGHTS)}")
    path = WEIGHTS[domain] / f"{kind}.safetensors"
    if not path.is_file():
        raise InputError(source, f"the built-in {kind} is missing from the package ({path})")
    return path
