"""Turn nested plain data (from YAML) into validated dataclasses.

Each dataclass field may carry ``metadata`` with ``range=(lo, hi)``,
``choices=(...)``, ``length=n`` and ``doc=...``. Every problem is reported as
one line: ``FILE: FIELD = VALUE: what is allowed``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any

from robot_mirror.errors import ConfigError


def field_error(source: str, where: str, value: Any, allowed: str) -> ConfigError:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return ConfigError(f"{source}: {where} = {shown}: {allowed}")


def _convert(tp: Any, value: Any, source: str, where: str, meta: dict) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value, source, where, meta)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, source, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise field_error(source, where, value, "must be a list")
        item_tp = args[0] if args else Any
        n = meta.get("length")
        if n is not None and len(value) != n:
            raise field_error(source, where, value, f"must be a list of {n} numbers")
        items = [_convert(item_tp, v, source, f"{where}[{i}]", {}) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is bool:
        if not isinstance(value, bool):
            raise field_error(source, where, value, "must be true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise field_error(source, where, value, "must be an integer" + _range_text(meta))
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise field_error(source, where, value, "must be a number" + _range_text(meta))
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise field_error(source, where, value, "must be a string")
        return value
    if tp is Any:
        return value
    raise TypeError(f"unsupported field type {tp!r} at {where}")


def _range_text(meta: dict) -> str:
    if "range" in meta:
        lo, hi = meta["range"]
        return f" in {lo}..{hi}"
    return ""


def _check_constraints(value: Any, source: str, where: str, meta: dict) -> None:
    if value is None:
        return
    if "range" in meta:
        lo, hi = meta["range"]
        items = value if isinstance(value, (list, tuple)) else [value]
        for v in items:
            if not (lo <= v <= hi):
                raise field_error(source, where, value, f"must be in {lo}..{hi}")
    if "choices" in meta and value not in meta["choices"]:
        raise field_error(source, where, value, "must be one of " + ", ".join(map(str, meta["choices"])))


def from_dict(cls: type, data: Any, source: str, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, rejecting unknown and bad fields."""
    where = prefix or "(top level)"
    if not isinstance(data, dict):
        raise field_error(source, where, data, "must be a mapping of fields")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        key = unknown[0]
        raise field_error(source, _join(prefix, str(key)), data[key],
                    "unknown field; allowed: " + ", ".join(sorted(fields)))
    kwargs = {}
    for name, f in fields.items():
        path = _join(prefix, name)
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{source}: {path} is missing (required)")
            continue
        meta = dict(f.metadata)
        value = _convert(hints[name], data[name], source, path, meta)
        _check_constraints(value, source, path, meta)
        kwargs[name] = value
    return cls(**kwargs)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def field(default: Any = dataclasses.MISSING, *, doc: str = "", **meta: Any) -> Any:
    """A dataclass field with validation metadata (see module docstring)."""
    metadata = {"doc": doc, **meta}
    if isinstance(default, (list, dict)) or dataclasses.is_dataclass(default):
        value = default
        return dataclasses.field(default_factory=lambda: copy.deepcopy(value), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def describe_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
