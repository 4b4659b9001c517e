"""The project's own generator format: one safetensors file whose metadata carries the JSON config.

Metadata keys: `format` = "stylediscover.generator", `config` = GeneratorConfig as JSON, and any
extra string fields the writer adds (e.g. `source`, the file it was converted from).
"""

import json
from pathlib import Path

from pydantic import ValidationError
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from stylediscover.errors import InputError, from_validation_error
from stylediscover.generators.network import Generator, GeneratorConfig, build_generator

FORMAT_TAG = "stylediscover.generator"


def save_native(generator: Generator, path: Path, **metadata: str) -> None:
    """Writes weights [float32] and config to `path` (.safetensors)."""
    state = {k: v.detach().float().contiguous() for k, v in generator.state_dict().items()}
    meta = {"format": FORMAT_TAG, "config": generator.config.model_dump_json(), **metadata}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata=meta)


def read_native_metadata(path: Path) -> dict[str, str]:
    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(path, f"corrupt or truncated safetensors file ({exc})") from None


def load_native(path: Path) -> Generator:
    meta = read_native_metadata(path)
    if meta.get("format") != FORMAT_TAG:
        raise InputError(path, f"not a stylediscover generator (format={meta.get('format')!r})", "metadata.format")
    try:
        config = GeneratorConfig.model_validate(json.loads(meta["config"]))
    except KeyError:
        raise InputError(path, "missing", "metadata.config") from None
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON ({exc})", "metadata.config") from None
    except ValidationError as exc:
        raise from_validation_error(path, exc, "metadata.config") from None
    try:
        with safe_open(str(path), framework="pt") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(path, f"corrupt or truncated safetensors file ({exc})") from None
    return build_generator(config, state, path)
