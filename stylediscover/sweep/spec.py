"""Sweep specification (YAML), validated before Ray starts; every error names the file and the field.

A spec holds the base trial config (a TrainConfig, inline, or `base_config: path.yaml` updated key by key
by an inline `base`), a search space over dotted TrainConfig keys, the search algorithm, the scheduler,
trial counts and resources, storage, MLflow tracking and the selection rule. The search space is validated
as TrainConfig values up front (see `_probes`), and no number may be infinite or NaN, so a bad value fails
here, not inside a Ray worker. What the sweep needs from the machine is checked by `preflight`.
"""

import math
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from stylediscover.config import TrainConfig
from stylediscover.errors import InputError
from stylediscover.options import apply_overrides, merged, read_yaml_mapping, set_dotted, validate
from stylediscover.sweep.settings import Choice, Param, Range, SweepSettings


class SweepSpec(SweepSettings):
    base: TrainConfig


def trial_config(base: TrainConfig, params: dict[str, Any]) -> TrainConfig:
    """The base config with the sampled dotted parameters applied."""
    data = base.model_dump(mode="json")
    for key, value in params.items():
        data = set_dotted(data, key, value)
    return TrainConfig.model_validate(data)


def _probes(param: Param) -> list[Any]:
    """The values of a parameter that are validated before Ray starts.

    choice, grid: every value. randint (the integers low..high-1, as Ray and Optuna draw them): every one when
    there are at most 100, else the two lowest, the middle one and the two highest; TrainConfig's constraints
    are bounds and parity, which these catch. uniform, loguniform: both ends and the middle (geometric for
    loguniform), each of which must also stay a float, so a float range on an integer field is refused.
    """
    if isinstance(param, Choice):
        return param.values
    low, high = param.low, param.high
    if param.type == "randint":
        values = range(int(low), int(high))
        return list(values) if len(values) <= 100 else [*values[:2], values[len(values) // 2], *values[-2:]]
    return [low, (low * high) ** 0.5 if param.type == "loguniform" else (low + high) / 2, high]


def _non_finite(value: Any, path: str = "") -> str | None:
    """The dotted path (relative to `value`) of the first infinite or NaN float in nested mappings and lists,
    "" for `value` itself, or None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else path
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list | tuple) else ()
    for key, item in items:
        found = _non_finite(item, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


def _dotted(data: dict, key: str) -> Any:
    for part in key.split("."):
        data = data[part]
    return data


def _check_value(base: dict, key: str, param: Param, value: Any, path: Path) -> None:
    """`value` of search_space[key] must be finite and make a valid TrainConfig (of the same type for ranges)."""
    field = f"search_space.{key}"
    if _non_finite(value) is not None:
        raise InputError(path, f"value {value!r} holds an infinite or NaN number", field)
    try:
        data = set_dotted(base, key, value)
    except ValueError as exc:
        raise InputError(path, str(exc), field) from None
    try:
        cfg = TrainConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        at = ".".join(map(str, err["loc"]))
        raise InputError(path, f"value {value!r} is invalid for {key}: {err['msg']}" + (f" (at {at})" if at else ""),
                         field) from None
    if isinstance(param, Range) and param.type != "randint" and not isinstance(_dotted(cfg.model_dump(), key), float):
        raise InputError(path, f"{param.type} draws fractional numbers but {key} takes whole ones: use randint", field)


def load_spec(path: Path, overrides: dict[str, Any] | None = None) -> SweepSpec:
    """Reads and validates a sweep YAML; the search space is checked value by value against TrainConfig (see
    `_probes`) and no number may be infinite or NaN."""
    path = Path(path)
    data = read_yaml_mapping(path)
    if "base_config" in data:
        ref = data.pop("base_config")
        if not isinstance(ref, str) or not ref:
            raise InputError(path, f"expected the path of a YAML file, got {ref!r}", "base_config")
        try:
            base = read_yaml_mapping(path.parent / ref)
        except InputError as exc:
            raise InputError(path, f"{exc.source}: {exc.problem}", "base_config") from None
        data["base"] = merged(base, data["base"]) if isinstance(data.get("base"), dict) else data.get("base", base)
    overrides = overrides or {}
    spec = validate(SweepSpec, apply_overrides(data, overrides, path), path, overrides)
    base = spec.base.model_dump()
    bad = _non_finite(base)
    if bad is not None:
        raise InputError(path, "not a finite number", f"base.{bad}")
    for key, param in spec.search_space.items():
        for value in _probes(param):
            _check_value(base, key, param, value, path)
    return spec
