"""Typed configuration: dataclasses built from dicts and ``option=value`` strings.

Every model and the trainer take a dataclass config. ``build`` fills one from a
mapping, converting strings from the command line to the field's type, checking
``Literal`` choices and rejecting unknown option names with the list of valid ones.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from mgat.errors import ConfigError

T = TypeVar("T")


def build(cls: type[T], values: Mapping[str, Any] | None = None, **overrides) -> T:
    """An instance of the dataclass ``cls`` from ``values`` and ``overrides``.

    Raises:
        ConfigError: for an unknown option, a value of the wrong type, or a value
            outside a ``Literal`` field's choices.
    """
    merged = {**(values or {}), **overrides}
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(merged) - set(names))
    if unknown:
        raise ConfigError(
            f"unknown {cls.__name__} option(s) {', '.join(unknown)}; valid options: "
            f"{', '.join(names)}."
        )
    converted = {k: _convert(cls.__name__, k, v, hints[k]) for k, v in merged.items()}
    instance = cls(**converted)
    check = getattr(instance, "validate", None)
    if check:
        check()
    return instance


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def parse_assignments(items: list[str]) -> dict[str, str]:
    """``["lr=0.01", "gate=concat"]`` -> ``{"lr": "0.01", "gate": "concat"}``."""
    result = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(
                f"expected option=value, got {item!r}. Example: lr=0.001 num_layers=2"
            )
        result[key.strip().replace("-", "_")] = value.strip()
    return result


def read_config_file(path: str | Path) -> dict:
    """Read a JSON config file (as written into a run directory or by ``tune``)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise ConfigError(f"config file {path} does not exist.") from err
    except json.JSONDecodeError as err:
        raise ConfigError(f"config file {path} is not valid JSON: {err}.") from err
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a JSON object.")
    return data


def _convert(owner: str, name: str, value: Any, hint: Any) -> Any:
    origin = get_origin(hint)
    if origin is Literal:
        choices = get_args(hint)
        if value not in choices:
            valid = ", ".join(map(str, choices))
            raise ConfigError(
                f"{owner}.{name}: {value!r} is not a valid choice; expected one of "
                f"{valid}."
            )
        return value
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if value is None or value in ("none", "None", "null"):
            return None
        return _convert(owner, name, value, args[0])
    if origin in (dict, Mapping):
        return _convert_dict(owner, name, value, get_args(hint))
    if origin in (tuple, list):
        return _convert_sequence(owner, name, value, origin, get_args(hint))
    return _convert_scalar(owner, name, value, hint)


def _convert_scalar(owner: str, name: str, value: Any, hint: Any) -> Any:
    if hint is bool:
        if isinstance(value, bool):
            return value
        lowered = str(value).lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ConfigError(f"{owner}.{name}: expected true or false, got {value!r}.")
    if hint in (int, float, str):
        try:
            if hint is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            return hint(value)
        except (TypeError, ValueError) as err:
            raise ConfigError(
                f"{owner}.{name}: expected {hint.__name__}, got {value!r}."
            ) from err
    return value


def _convert_sequence(owner, name, value, origin, args):
    if isinstance(value, str):
        value = [v for v in value.split(",") if v]
    item = args[0] if args else str
    return origin(_convert(owner, name, v, item) for v in value)


def _convert_dict(owner, name, value, args):
    if isinstance(value, str):
        pairs = [p.partition(":") for p in value.split(",") if p]
        if any(not sep for _, sep, _ in pairs):
            raise ConfigError(
                f"{owner}.{name}: expected key:value pairs separated by commas "
                f"(e.g. visual:256,acoustic:128), got {value!r}."
            )
        value = {k: v for k, _, v in pairs}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{owner}.{name}: expected a mapping, got {value!r}.")
    value_type = args[1] if len(args) == 2 else str
    return {str(k): _convert(owner, name, v, value_type) for k, v in value.items()}
