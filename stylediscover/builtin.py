"""Built-in networks shipped inside the package, by name: `builtin:<domain>` for a given kind.

Each embedded domain (stylediscover.domains.NAMES) ships its generator, its discriminator (the offline
feature network) and its attribute predictor in stylediscover/<domain>/weights/. `DEFAULT` is the domain
that trial configs use unless they name another.
"""

from pathlib import Path
from typing import Literal

from stylediscover.domains import NAMES, weights_dir
from stylediscover.errors import InputError

Kind = Literal["generator", "discriminator", "predictor"]
PREFIX = "builtin:"
DEFAULT = f"{PREFIX}{NAMES[0]}"


def resolve_builtin(source: str | Path, kind: Kind) -> str | Path:
    """The packaged file for `builtin:<domain>`; any other source is returned unchanged."""
    if not isinstance(source, str) or not source.startswith(PREFIX):
        return source
    domain = source[len(PREFIX):]
    if domain not in NAMES:
        raise InputError(source, f"unknown built-in; known: {', '.join(PREFIX + d for d in NAMES)}")
    path = weights_dir(domain) / f"{kind}.safetensors"
    if not path.is_file():
        raise InputError(source, f"the built-in {kind} is missing from the package ({path})")
    return path


def discriminator_for(generator: str, weights: str | None) -> str | None:
    """The discriminator a feature network uses: `weights` when given, else a built-in generator's own
    (`builtin:<domain>`), else None (the default domain's)."""
    if weights is None and generator.startswith(PREFIX) and generator != DEFAULT:
        return generator
    return weights
