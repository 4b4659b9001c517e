"""The project's own generator and discriminator format (see stylediscover.weights)."""

from pathlib import Path

from stylediscover.generators.discriminator import Discriminator, DiscriminatorConfig
from stylediscover.generators.network import Generator, GeneratorConfig
from stylediscover.weights import load_network, save_network

GENERATOR_TAG = "stylediscover.generator"
DISCRIMINATOR_TAG = "stylediscover.discriminator"


def save_native(network: Generator | Discriminator, path: Path, **metadata: str) -> None:
    tag = GENERATOR_TAG if isinstance(network, Generator) else DISCRIMINATOR_TAG
    save_network(network, path, tag, **metadata)


def load_native(path: Path) -> Generator:
    return load_network(path, GENERATOR_TAG, Generator, GeneratorConfig)


def load_discriminator(path: Path) -> Discriminator:
    return load_network(path, DISCRIMINATOR_TAG, Discriminator, DiscriminatorConfig)
