"""Check bus headers, fields and arrays against :mod:`robot_mirror.bus.schema`.

One validator serves both directions, so a message ``encode`` accepts is
exactly one ``decode`` accepts. Every check raises :class:`MalformedMessage`
with a stable reason code; the codec turns that into ``ValueError`` on the
sending side. Frame-level parsing (sizes, msgpack, raw array buffers) is the
codec's job, not this module's.
"""

from __future__ import annotations

import math
import re
import reprlib
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import numpy as np

from robot_mirror.bus.message import MalformedMessage
from robot_mirror.bus.schema import (
    COMPILED,
    FLOAT_DTYPES,
    ROBOT_NAME_RE,
    ROBOT_OR_EMPTY_RE,
    SCHEMA_VERSION,
    ArraySpec,
    CompiledKind,
    FieldSpec,
)

_INT64_MAX = 2**63 - 1
_ROBOT = re.compile(ROBOT_NAME_RE)
_ROBOT_OR_EMPTY = re.compile(ROBOT_OR_EMPTY_RE)


# --------------------------------------------------------------------------
# Small type predicates. msgpack gives bool for true/false and int for
# integers; Python's bool is an int subclass, so the checks keep them apart.
# --------------------------------------------------------------------------


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    """A finite float, or an int in msgpack's range (int64 or uint64)."""
    if isinstance(x, float):
        return math.isfinite(x)
    return _is_int(x) and -(2**63) <= x < 2**64


def _matches_type(x: Any, types: Tuple[type, ...]) -> bool:
    """isinstance with msgpack semantics: int is not bool, float accepts int."""
    for t in types:
        if t is int and _is_int(x):
            return True
        if t is float and _is_number(x):
            return True
        if t is bool and isinstance(x, bool):
            return True
        if t not in (int, float, bool) and isinstance(x, t):
            return True
    return False


_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxstring = _REPR.maxother = 60


def short(value: Any, limit: int = 60) -> str:
    """A depth- and length-limited repr cut to ``limit`` characters, so hostile
    values (huge, or nested ~1000 deep) keep log lines short and cannot hit the
    recursion limit."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_names(types: Tuple[type, ...]) -> str:
    return "|".join(t.__name__ for t in types)


# --------------------------------------------------------------------------
# Header
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Head:
    """The typed common header keys (everything except arrays/fields)."""

    kind: str
    robot: str
    seq: int
    t_sim: float
    t_wall: float
    tick: int


def _require_key(header: Mapping[str, Any], key: str, ok: Callable[[Any], bool], what: str) -> Any:
    """Fetch a header key, raising ``header_key`` when absent or ill-typed."""
    if key not in header:
        raise MalformedMessage("header_key", f"header key {key!r} is missing")
    value = header[key]
    if not ok(value):
        raise MalformedMessage("header_key", f"header key {key!r} must be {what}, got {short(value, 60)}")
    return value


def check_head(header: Mapping[str, Any]) -> Tuple[_Head, CompiledKind]:
    """Validate the common header keys; the version is checked first because
    a future version may change every other key."""
    v = _require_key(header, "v", _is_int, "an int")
    if v != SCHEMA_VERSION:
        raise MalformedMessage("version", f"schema version {v}, this receiver speaks {SCHEMA_VERSION}")
    kind = _require_key(header, "kind", lambda x: isinstance(x, str), "a str")
    compiled = COMPILED.get(kind)
    if compiled is None:
        raise MalformedMessage("kind", f"unknown kind {short(kind, 40)}")
    robot = _require_key(header, "robot", lambda x: isinstance(x, str), "a str")
    seq = _require_key(header, "seq", lambda x: _is_int(x) and 0 <= x <= _INT64_MAX, "an int in [0, 2^63)")
    t_sim = _require_key(header, "t_sim", _is_number, "a finite number")
    t_wall = _require_key(header, "t_wall", _is_number, "a finite number")
    tick = _require_key(header, "tick", lambda x: _is_int(x) and -1 <= x <= _INT64_MAX, "an int >= -1")
    _require_key(header, "arrays", lambda x: isinstance(x, list), "a list")
    _require_key(header, "fields", lambda x: isinstance(x, dict), "a map")
    _check_robot(compiled, robot)
    return _Head(kind, robot, seq, float(t_sim), float(t_wall), tick), compiled


def _check_robot(compiled: CompiledKind, robot: str) -> None:
    if not _ROBOT_OR_EMPTY.fullmatch(robot):
        raise MalformedMessage("robot", f"robot name {short(robot, 40)} is not [A-Za-z0-9_-]{{1,32}}")
    if compiled.spec.robot_required and not robot:
        raise MalformedMessage("robot", f"kind {compiled.spec.name!r} needs a non-empty robot")


def check_topic(topic: str, compiled: CompiledKind, robot: str) -> None:
    """Each kind has one topic (per robot) so subscribers can filter by prefix;
    a message on any other topic would reach the wrong readers."""
    expected = compiled.spec.topic_for(robot)
    if topic != expected:
        raise MalformedMessage(
            "topic_mismatch", f"kind {compiled.spec.name!r} must be sent on topic {expected!r}, not {topic!r}"
        )


# --------------------------------------------------------------------------
# Fields
# --------------------------------------------------------------------------


def _check_fields(compiled: CompiledKind, fields: Mapping[Any, Any]) -> None:
    """Check every declared field; unknown extra fields are allowed so that
    fields can be added without a version bump."""
    for key in fields:
        if not isinstance(key, str):
            raise MalformedMessage("field", f"field key {short(key, 40)} is not a str")
    for name, spec in compiled.spec.fields.items():
        if name not in fields:
            raise MalformedMessage("field", f"{compiled.spec.name} field {name!r} is missing")
        _check_field_value(compiled, name, spec, fields[name])


def _check_field_value(compiled: CompiledKind, name: str, spec: FieldSpec, value: Any) -> None:
    kind = compiled.spec.name
    if not _matches_type(value, spec.types):
        raise MalformedMessage("field", f"{kind} field {name!r} must be {_type_names(spec.types)}, got {short(value, 60)}")
    if spec.choices is not None and value not in spec.choices:
        raise MalformedMessage("field_value", f"{kind} field {name!r} must be one of {list(spec.choices)}, got {short(value, 60)}")
    if spec.lo is not None and value < spec.lo or spec.hi is not None and value > spec.hi:
        raise MalformedMessage("field_value", f"{kind} field {name!r} must be in [{spec.lo}, {spec.hi}], got {value!r}")
    if isinstance(value, (dict, list)):
        _check_nested(kind, name, value, 0)
    pattern = compiled.patterns.get(name)
    if isinstance(value, list):
        for item in value:
            if spec.items is not None and not _matches_type(item, spec.items):
                raise MalformedMessage("field", f"{kind} field {name!r} items must be {_type_names(spec.items)}, got {short(item, 60)}")
            if pattern is not None and isinstance(item, str) and not pattern.fullmatch(item):
                raise MalformedMessage("field_value", f"{kind} field {name!r} item {short(item, 40)} must match {pattern.pattern}")
    elif pattern is not None and isinstance(value, str) and not pattern.fullmatch(value):
        raise MalformedMessage("field_value", f"{kind} field {name!r} value {short(value, 40)} must match {pattern.pattern}")


#: Deepest nesting allowed inside a map- or array-typed field.
MAX_FIELD_DEPTH = 32


def _check_nested(kind: str, name: str, value: Any, depth: int) -> None:
    """Plain data only inside map/array fields: str keys, finite floats,
    str/int/bool/nil leaves (no bin, no ext), bounded depth."""
    if depth > MAX_FIELD_DEPTH:
        raise MalformedMessage("field", f"{kind} field {name!r} is nested deeper than {MAX_FIELD_DEPTH}")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise MalformedMessage("field", f"{kind} field {name!r} has a non-str key {short(key, 40)}")
            _check_nested(kind, name, item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_nested(kind, name, item, depth + 1)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise MalformedMessage("field", f"{kind} field {name!r} contains NaN or infinity")
    elif value is not None and not isinstance(value, (str, int)):  # bool is an int
        raise MalformedMessage("field", f"{kind} field {name!r} contains a {type(value).__name__}")


def _robots_of(compiled: CompiledKind, fields: Mapping[str, Any]) -> Tuple[str, ...]:
    """The robot names "*/..." arrays expand over (empty for most kinds)."""
    rf = compiled.spec.robots_field
    if rf is None:
        return ()
    robots = tuple(fields[rf])
    if not robots or len(set(robots)) != len(robots):
        raise MalformedMessage("field_value", f"{compiled.spec.name} field {rf!r} must list unique robots, at least one")
    return robots


# --------------------------------------------------------------------------
# Arrays against the schema
# --------------------------------------------------------------------------


_Layout = Dict[str, Tuple[ArraySpec, str]]
_LAYOUTS: Dict[Tuple[str, Tuple[str, ...]], _Layout] = {}
_MAX_LAYOUTS = 64


def _layout(compiled: CompiledKind, robots: Tuple[str, ...]) -> _Layout:
    """Every known array name of a kind for these robots -> (spec, scope).

    Expanding the "*/..." patterns once per robot set (cached; the set hardly
    ever changes during a run) keeps per-message matching to dict lookups.
    The cache is bounded so hostile robot lists cannot grow it without limit.
    """
    key = (compiled.spec.name, robots)
    layout = _LAYOUTS.get(key)
    if layout is None:
        layout = {spec.name: (spec, "") for spec in compiled.spec.arrays if not spec.is_pattern}
        for spec in compiled.spec.arrays:
            if spec.is_pattern:
                layout.update({f"{r}/{spec.suffix}": (spec, r) for r in robots})
        if len(_LAYOUTS) >= _MAX_LAYOUTS:
            _LAYOUTS.clear()
        _LAYOUTS[key] = layout
    return layout


def spec_for(compiled: CompiledKind, name: str, robots: Tuple[str, ...]) -> Tuple[Optional[ArraySpec], str]:
    """Find the ArraySpec for an array name and its shape-symbol scope.

    Returns ``(None, "")`` for unknown arrays, which are allowed (additive
    evolution) but not interpreted.
    """
    found = _layout(compiled, robots).get(name)
    if found is not None:
        return found
    prefix, sep, suffix = name.partition("/")
    if sep and suffix in compiled.by_suffix and _ROBOT.fullmatch(prefix):
        raise MalformedMessage("unexpected_array", f"array {name!r} is for a robot not listed in {compiled.spec.robots_field!r}")
    return None, ""


def _check_shape(name: str, spec: ArraySpec, shape: Tuple[int, ...], scope: str, bound: Dict[Tuple[str, str], int]) -> None:
    if len(shape) != len(spec.shape):
        raise MalformedMessage("shape", f"array {name!r} must have {len(spec.shape)} dims {_pattern_str(spec)}, got {list(shape)}")
    for size, want in zip(shape, spec.shape):
        if isinstance(want, int) and size != want:
            raise MalformedMessage("shape", f"array {name!r} must have shape {_pattern_str(spec)}, got {list(shape)}")
        if isinstance(want, str):
            key = (scope, want)
            if bound.setdefault(key, size) != size:
                raise MalformedMessage("shape", f"array {name!r} dim {want!r} is {size} but {bound[key]} elsewhere")


def _pattern_str(spec: ArraySpec) -> str:
    return "[" + ", ".join("*" if d is None else str(d) for d in spec.shape) + "]"


def _check_arrays(compiled: CompiledKind, fields: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
    """Match every array to its spec (dtype, shape, finiteness, condition),
    then make sure every required array is there."""
    robots = _robots_of(compiled, fields)
    layout = _layout(compiled, robots)
    bound: Dict[Tuple[str, str], int] = {}
    for name, arr in arrays.items():
        spec, scope = layout.get(name) or spec_for(compiled, name, robots)
        if spec is None:
            continue
        if spec.when is not None and fields.get(spec.when[0]) != spec.when[1]:
            raise MalformedMessage("unexpected_array", f"array {name!r} is only allowed when {spec.when[0]}={spec.when[1]!r}")
        code = arr.dtype.str
        if code not in spec.dtypes:
            raise MalformedMessage("dtype", f"array {name!r} must have dtype {'/'.join(spec.dtypes)}, got {code}")
        _check_shape(name, spec, arr.shape, scope, bound)
        if not spec.allow_nonfinite and code in FLOAT_DTYPES and not _all_finite(arr):
            raise MalformedMessage("nonfinite", f"array {name!r} contains NaN or infinity")
    for name, (spec, _) in layout.items():
        if name in arrays or not spec.required:
            continue
        if spec.when is None or fields.get(spec.when[0]) == spec.when[1]:
            raise MalformedMessage("missing_array", f"{compiled.spec.name} needs array {name!r}")


def _all_finite(arr: np.ndarray) -> bool:
    """True when no element is NaN or infinite.

    A sum is finite only if every term is (NaN and inf propagate), and one
    reduction is about twice as fast as ``isfinite(...).all()``; only when the
    sum is not finite (non-finite input, or overflow of huge finite values)
    does the exact element-wise test decide.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.add.reduce(arr, axis=None)
    if math.isfinite(total):
        return True
    return bool(np.isfinite(arr).all())


def check_body(compiled: CompiledKind, fields: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
    """Fields first: the arrays' expected names depend on a field (the robot list)."""
    _check_fields(compiled, fields)
    _check_arrays(compiled, fields, arrays)
