"""StyleGAN2 generators: the network, its checkpoint formats and the known-checkpoint registry."""

from pathlib import Path

from stylediscover.builtin import resolve_builtin
from stylediscover.errors import InputError
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


def load_generator(source: str | Path, class_index: int | None = None, class_field: str = "--class",
                   require_class: bool = True) -> Generator:
    """A generator from `builtin:<domain>`, a known name (`stylediscover generators list`) or a checkpoint path.
    A conditional generator needs `class_index` (the class its mapping uses) unless `require_class` is False;
    errors name `class_field`."""
    generator = load_checkpoint(generator_path(source))
    c_dim = generator.config.c_dim
    if c_dim and class_index is None and require_class:
        raise InputError(source, f"the generator is conditional on {c_dim} classes: choose one (0..{c_dim - 1})",
                         class_field)
    try:
        return generator.set_class(class_index)
    except ValueError as exc:
        raise InputError(source, str(exc), class_field) from None
