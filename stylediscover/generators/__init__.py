"""StyleGAN2 generators: the network, its checkpoint formats and the known-checkpoint registry."""

from pathlib import Path

from stylediscover.generators.formats import CheckpointFormat, detect_format, load_checkpoint
from stylediscover.generators.native import save_native
from stylediscover.generators.network import Generator, GeneratorConfig
from stylediscover.generators.registry import KNOWN_CHECKPOINTS, fetch

__all__ = ["CheckpointFormat", "Generator", "GeneratorConfig", "KNOWN_CHECKPOINTS", "detect_format",
           "load_generator", "save_native"]


def load_generator(source: str | Path) -> Generator:
    """A generator from a known name (see `stylediscover generators list`) or a checkpoint path."""
    if isinstance(source, str) and source in KNOWN_CHECKPOINTS:
        return load_checkpoint(fetch(source))
    return load_checkpoint(Path(source))
