"""Option files and overrides: YAML mappings, dotted `key=value` overrides, validation naming file and field."""

import difflib
import stat
import types
import typing
from pathlib import Path
from typing import Any, Iterable, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from stylediscover.errors import InputError
from stylediscover.safe_files import open_regular

M = TypeVar("M", bound=BaseModel)
MAX_YAML_BYTES = 2 << 20  # option files are a few kB; larger ones are refused unread
MAX_YAML_NODES = 100_000  # values of a document with its aliases expanded (refuses "billion laughs")


class YamlLimitError(ValueError):
    """A YAML document refused for its shape (aliases expanding too far, or to themselves), not its syntax."""


class BoundedLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses documents whose aliases expand to more than MAX_YAML_NODES values or refer to
    themselves, before anything is built from them."""

    def compose_document(self) -> yaml.Node:
        node = super().compose_document()
        if _expanded_size(node, {}) > MAX_YAML_NODES:
            raise YamlLimitError(f"its aliases expand to more than {MAX_YAML_NODES} values")
        return node


def _expanded_size(node: yaml.Node, sizes: dict[int, int | None]) -> int:
    """Values under `node` with every alias expanded; each node is counted once (sizes: by id, None while open)."""
    if id(node) in sizes:
        if sizes[id(node)] is None:
            raise YamlLimitError("an alias refers to a value that contains it")
        return sizes[id(node)]
    sizes[id(node)] = None
    if isinstance(node, yaml.SequenceNode):
        children = node.value
    elif isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    else:
        children = []
    sizes[id(node)] = size = 1 + sum(_expanded_size(child, sizes) for child in children)
    return size


def load_yaml(text: str) -> Any:
    """`text` parsed by BoundedLoader; any problem is a ValueError with a one-line description."""
    try:
        return yaml.load(text, Loader=BoundedLoader)
    except YamlLimitError:
        raise
    except RecursionError:
        raise ValueError("not valid YAML (nested too deeply)") from None
    except Exception as exc:  # the loader's constructors raise ValueError, TypeError, AttributeError, ...
        raise ValueError(f"not valid YAML ({exc})") from None


def _read_text(path: Path) -> str:
    """A regular UTF-8 file of at most MAX_YAML_BYTES (its size is checked before it is read)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except (OSError, ValueError) as exc:
        raise InputError(path, f"cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(path, "is a directory, expected a YAML file")
    if not stat.S_ISREG(info.st_mode):
        raise InputError(path, "is not a regular file")
    if info.st_size > MAX_YAML_BYTES:
        raise InputError(path, f"{info.st_size} bytes; option files of more than {MAX_YAML_BYTES} bytes are refused")
    try:
        with open_regular(path, "YAML file") as (f, _):
            data = f.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise InputError(path, f"cannot be read ({exc.strerror})") from None
    if len(data) > MAX_YAML_BYTES:
        raise InputError(path, f"option files of more than {MAX_YAML_BYTES} bytes are refused")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start})") from None


def read_yaml_mapping(path: Path) -> dict:
    """The top-level mapping of a YAML file; missing, unreadable, oversized, malformed or non-mapping files are
    named."""
    path = Path(path)
    try:
        data = load_yaml(_read_text(path))
    except ValueError as exc:
        raise InputError(path, str(exc)) from None
    if not isinstance(data, dict):
        raise InputError(path, "expected a mapping of options at the top level")
    return data


def set_dotted(data: dict, key: str, value: Any) -> dict:
    """A copy of `data` with the dotted `key` set to `value` (intermediate dicts created); ValueError where the key
    goes through a value that is not a mapping or has an empty part."""
    out = dict(data)
    head, _, rest = key.partition(".")
    if not head or key.endswith("."):
        raise ValueError("the dotted key has an empty part")
    if not rest:
        out[head] = value
        return out
    inner = out.get(head)
    if inner is not None and not isinstance(inner, dict):
        raise ValueError(f"{head} is {inner!r}, not a mapping of options, so {head}.{rest} cannot be set")
    out[head] = set_dotted(inner or {}, rest, value)
    return out


def apply_overrides(data: dict, overrides: dict[str, Any], source: str | Path) -> dict:
    """`data` with each dotted override set; a key that cannot be set is named as `--set KEY`."""
    for key, value in overrides.items():
        try:
            data = set_dotted(data, key, value)
        except ValueError as exc:
            raise InputError(source, str(exc), f"--set {key}") from None
    return data


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
            parsed[key] = load_yaml(value)
        except ValueError as exc:
            raise InputError(source, str(exc), f"--set {key}") from None
    return parsed


def dotted_fields(model_cls: type[BaseModel], prefix: str = "") -> list[str]:
    """Every dotted key of a pydantic model, nested models included: ['steps', 'loss.form', ...]."""
    keys = []
    for name, info in model_cls.model_fields.items():
        keys.append(prefix + name)
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            keys += dotted_fields(info.annotation, f"{prefix}{name}.")
    return keys


def _unwrapped(annotation: Any) -> Any:
    """`Annotated[X, ...]` → X, `X | None` → X; other annotations as they are."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _unwrapped(members[0]) if len(members) == 1 else annotation
    return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _member(annotation: Any, part: str) -> Any:
    """The model of a union that a validation location's `part` names: by its `type` literal (a discriminated union)
    or by class name; None when none does."""
    for member in map(_unwrapped, typing.get_args(annotation)):
        tag = member.model_fields.get("type") if _is_model(member) else None
        if member.__name__ == part or (tag is not None and part in typing.get_args(tag.annotation)):
            return member
    return None


def fields_at(model_cls: type[BaseModel], loc: tuple) -> list[str]:
    """The option names of the mapping at a validation error's location `loc` (mapping keys, list indices and union
    tags included, as pydantic reports them) inside `model_cls`; [] where it is not a model."""
    annotation: Any = model_cls
    for part in loc:
        annotation = _unwrapped(annotation)
        origin = typing.get_origin(annotation)
        if _is_model(annotation):
            field = annotation.model_fields.get(str(part))
            annotation = field.annotation if field is not None else None
        elif origin is dict:
            annotation = typing.get_args(annotation)[1]
        elif origin in (list, tuple):
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            annotation = _member(annotation, str(part))
        else:
            return []
    annotation = _unwrapped(annotation)
    return list(annotation.model_fields) if _is_model(annotation) else []


def validate(model_cls: type[M], data: dict, source: str | Path, overrides: Iterable[str] = ()) -> M:
    """`data` as `model_cls`; an unknown key (reported before the problems it causes, such as the right key missing)
    is given the nearest known one, and a problem at or under the key of an override names that override
    (`--set KEY`)."""
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        field = ".".join(str(part) for part in first["loc"]) or None
        key = next((k for k in overrides if field and (field + ".").startswith(k + ".")), None)
        if first["type"] != "extra_forbidden":
            raise InputError(source, first["msg"], f"--set {key}" if key else field) from None
        if key is not None:
            nearest = difflib.get_close_matches(key, dotted_fields(model_cls), n=1, cutoff=0.5)
        else:
            nearest = [".".join(map(str, first["loc"][:-1] + (name,))) for name in difflib.get_close_matches(
                str(first["loc"][-1]), fields_at(model_cls, first["loc"][:-1]), n=1, cutoff=0.5)]
        problem = f"no such option{f'; did you mean {nearest[0]}?' if nearest else ''}"
        raise InputError(source, problem, f"--set {key}" if key else field) from None


def load_options(model_cls: type[M], base: dict, overrides: tuple[str, ...], source: str | Path) -> M:
    """`base` with the dotted overrides applied, validated as `model_cls`."""
    parsed = parse_overrides(overrides, str(source))
    return validate(model_cls, apply_overrides(dict(base), parsed, source), source, parsed)
