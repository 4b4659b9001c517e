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


SPACE = "search_space."


def _with_space_overrides(data: dict, overrides: dict[str, Any], path: Path) -> dict:
    """`data` with the `--set search_space.KEY[.FIELD]=VALUE` overrides applied. Search-space keys hold dots
    themselves, so the longest existing key that prefixes the rest is the entry (`search_space.loss.form.values=[a]`
    sets `values` of entry `loss.form`); otherwise a mapping value adds or replaces a whole entry."""
    space = dict(data.get("search_space") or {}) if isinstance(data.get("search_space") or {}, dict) else None
    for key, value in overrides.items():
        if not key.startswith(SPACE):
            continue
        if space is None:
            raise InputError(path, "search_space is not a mapping, so its entries cannot be set", f"--set {key}")
        rest = key[len(SPACE):]
        entry = max((k for k in space if rest == k or rest.startswith(k + ".")), key=len, default=None)
        if entry is not None and rest != entry and isinstance(space[entry], dict):
            space[entry] = set_dotted(space[entry], rest[len(entry) + 1:], value)
        elif isinstance(value, dict) or value is None:
            space = {k: v for k, v in space.items() if k != rest} | ({rest: value} if value is not None else {})
        else:
            raise InputError(path, f"expected a parameter mapping (e.g. {{type: choice, values: [...]}}) or a field "
                             f"of one of the entries {sorted(space)}", f"--set {key}")
    return data | {"search_space": space} if any(k.startswith(SPACE) for k in overrides) else data


def load_spec(path: Path, overrides: dict[str, Any] | None = None) -> SweepSpec:
    """Reads and validates a sweep YAML; the search space is checked value by value against TrainConfig (see
    `_probes`) and no number may be infinite or NaN."""
    path = Path(path)
    data = read_yaml_mapping(path)
    retired = [k for k in ("confirm_seed", "confirm_samples") if k in (data.get("selection") or {})]
    if retired:
        raise InputError(path, "retired by the held-out split: use selection.test_sets and selection.test_samples "
                         "(the test codes derive from base.eval.metrics.seed)", f"selection.{retired[0]}")
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
    spec = validate(SweepSpec, apply_overrides(_with_space_overrides(data, overrides, path),
                                               {k: v for k, v in overrides.items() if not k.startswith(SPACE)},
                                               path), path, overrides)
    base = spec.base.model_dump()
    bad = _non_finite(base)
    if bad is not None:
        raise InputError(path, "not a finite number", f"base.{bad}")
    for key, param in spec.search_space.items():
        for value in _probes(param):
            _check_value(base, key, param, value, path)
    if "eval.validation_sets" in spec.search_space:
        raise InputError(path, "not searchable: it changes what a trial's objective measures (see "
                         "metrics.objective), so trials would not compare", "search_space.eval.validation_sets")
    if spec.selection.rule == "robust_then_margin" and spec.base.eval.validation_sets < 2:
        raise InputError(path, "robust_then_margin needs trials evaluated on several validation code sets: set "
                         "base.eval.validation_sets to 2 or more", "selection.rule")
    return spec
