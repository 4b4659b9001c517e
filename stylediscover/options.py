"""Option files and overrides: YAML mappings, dotted `key=value` overrides, validation naming file and field."""

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from stylediscover.errors import InputError, from_validation_error

M = TypeVar("M", bound=BaseModel)


def read_yaml_mapping(path: Path) -> dict:
    """The top-level mapping of a YAML file; missing, malformed or non-mapping files are named."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except yaml.YAMLError as exc:
        raise InputError(path, f"not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(path, "expected a mapping of options at the top level")
    return data


def set_dotted(data: dict, key: str, value: Any) -> dict:
    """A copy of `data` with the dotted `key` set to `value` (intermediate dicts created)."""
    out = dict(data)
    head, _, rest = key.partition(".")
    out[head] = set_dotted(dict(out.get(head) or {}), rest, value) if rest else value
    return out


def merged(base: dict, top: dict) -> dict:
    """`base` updated by `top`, mappings merged key by key at every depth (other values replaced)."""
    out = dict(base)
    for key, value in top.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def parse_overrides(items: tuple[str, ...] | list[str], source: str) -> dict[str, Any]:
    """['a.b=1', 'c=[x, y]'] → {'a.b': 1, 'c': ['x', 'y']} (values parsed as YAML)."""
    parsed = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(source, f"expected key=value, got {item!r}", "--set")
        try:
            parsed[key] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise InputError(source, f"value of {key} is not valid YAML ({exc})", "--set") from None
    return parsed


def validate(model_cls: type[M], data: dict, source: str | Path) -> M:
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        raise from_validation_error(source, exc) from None


def load_options(model_cls: type[M], base: dict, overrides: tuple[str, ...], source: str | Path) -> M:
    """`base` with the dotted overrides applied, validated as `model_cls`."""
    data = dict(base)
    for key, value in parse_overrides(overrides, str(source)).items():
        data = set_dotted(data, key, value)
    return validate(model_cls, data, source)
