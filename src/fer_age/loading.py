"""Loading params.yaml into the typed :class:`~fer_age.config.Config`, validated once, before any work."""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from fer_age.config import MOVED_KEYS, Config, ConfigError, Entries, Section, shown
from fer_age.registry import MODEL_NAMES, model_spec
from fer_age.validation import validate


class UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key written twice in one mapping (plain YAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConfigError(
                    f"'{key}' is given twice in one mapping of params.yaml (lines {seen[key]} and "
                    f"{key_node.start_mark.line + 1}): keep one"
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | Path = "params.yaml") -> Config:
    """Read and validate ``params.yaml``. Errors name keys and places, never echo the file's content."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"params file not found: {path}")
    try:
        data = yaml.load(path.read_text(), Loader=UniqueKeyLoader) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or type(err).__name__
        raise ConfigError(f"{path} is not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path} is not a params file: its top level is a {type(data).__name__}, not a mapping of keys"
        )
    try:
        return config_from_dict(data)
    except ConfigError as err:
        if path.name == "params.yaml":
            raise
        raise ConfigError(f"{path}: {err}") from None


def config_from_dict(data: dict[str, Any]) -> Config:
    """Build and validate a :class:`Config` from a plain mapping."""
    config = _build(Config, data, "")
    model = object.__getattribute__(config, "model")
    if object.__getattribute__(config, "head") is None and model in MODEL_NAMES:  # else validate names 'model'
        object.__setattr__(config, "head", model_spec(model).own_head)
    validate(config)
    return config


def _build(cls: type, data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"'{path or 'params'}' must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names, key=str)
    if unknown:
        key = f"{path}.{unknown[0]}" if path else unknown[0]
        if key in MOVED_KEYS:
            raise ConfigError(f"'{key}' is now '{MOVED_KEYS[key]}' in params.yaml: move it there")
        key = f"{path}.{shown(unknown[0])}" if path else shown(unknown[0])
        raise ConfigError(f"unknown key '{key}' in params.yaml (valid keys here: {', '.join(sorted(names))})")
    values = {}
    for f in dataclasses.fields(cls):
        key = f"{path}.{f.name}" if path else f.name
        if f.name in data:
            values[f.name] = _coerce(hints[f.name], data[f.name], key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing required key '{key}' in params.yaml")
    section = cls(**values)
    object.__setattr__(section, "_key", path)
    for f in dataclasses.fields(cls):  # sections left at their defaults learn their key too
        value = object.__getattribute__(section, f.name)
        if isinstance(value, Section) and f.name not in data:
            object.__setattr__(section, f.name, _build(type(value), {}, f"{path}.{f.name}" if path else f.name))
        elif isinstance(value, dict):
            entries = value if isinstance(value, Entries) else Entries(value)
            entries.key = f"{path}.{f.name}" if path else f.name
            object.__setattr__(section, f.name, entries)
    return section


def _coerce(hint: Any, value: Any, key: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(inner, value, key)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value, key)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"'{key}' must be a list, got {value!r}")
        return [_coerce(args[0], v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ConfigError(f"'{key}' must be a mapping, got {value!r}")
        entries = Entries({str(k): _coerce(args[1], v, f"{key}.{k}") for k, v in value.items()})
        entries.key = key
        return entries
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"'{key}' must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"'{key}' must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, str):  # YAML reads "1e-4" as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"'{key}' must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ConfigError(f"'{key}' must be a string, got {value!r}")
        return str(value)  # YAML reads codes such as 1 or 0.5 as numbers
    raise TypeError(f"unsupported config type {hint} for '{key}'")
