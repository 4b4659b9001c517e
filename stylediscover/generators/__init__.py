"""StyleGAN2 generators: the network, its checkpoint formats and the known-checkpoint registry."""

from pathlib import Path

from stylediscover.builtin import resolve_builtin
from stylediscover.generators.formats import CheckpointFormat, detect_format, load_checkpoint
from stylediscover.generators.native import save_native
from stylediscover.generators.network import Generator, GeneratorConfig
from stylediscover.generators.registry import KNOWN_CHECKPOINTS, fetch

__all__ = ["CheckpointFormat", "Generator", "GeneratorConfig", "KNOWN_CHECKPOINTS", "detect_format",
           "generator_path", "load_generator", "save_native"]


def generator_path(source: str | Path) -> Path:
    """The file behind `builtin:<domain>`, a known name (downloaded when missing) or a path."""
    if isinstance(source, str) and source in KNOWN_CHECKPOINTS:
        return fetch(source)
    return Path(resolve_builtin(source, "generator"))


def load_generator(source: str | Path) -> Generator:
    """A generator from `builtin:<domain>`, a known name (`stylediscover generators list`) or a checkpoint path."""
    return load_checkpoint(generator_path(source))
