"""Encode and decode robot_mirror bus messages (wire format v1).

A message is a ZeroMQ multipart message::

    frame 0   topic, ASCII             e.g. b"obs.left"
    frame 1   header, one msgpack map  {"v": 1, "kind": "obs", ..., "arrays": [...]}
    frame 2+  one raw C-contiguous little-endian buffer per header["arrays"] entry

Arrays travel as raw frames (no base64, no pickle) so that a C or Rust client
can read them with one ``memcpy`` and Python can wrap them without copying.

Both directions share one validator driven by :mod:`robot_mirror.bus.schema`:
``encode`` raises :class:`ValueError` (the caller has a bug), ``decode`` raises
:class:`MalformedMessage` (the *peer* has a bug, or the bytes are hostile) and
never anything else, so a receive loop can drop bad input with one ``except``.
"""

from __future__ import annotations

import logging
import math
import re
import reprlib
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import msgpack
import numpy as np

from robot_mirror.errors import RobotMirrorError
from robot_mirror.bus.schema import (
    ALLOWED_DTYPES,
    ARRAY_NAME_RE,
    COMPILED,
    FLOAT_DTYPES,
    MAX_ARRAYS,
    MAX_HEADER_BYTES,
    MAX_MESSAGE_BYTES,
    MAX_NDIM,
    ROBOT_NAME_RE,
    ROBOT_OR_EMPTY_RE,
    SCHEMA_VERSION,
    TOPIC_RE,
    ArraySpec,
    CompiledKind,
    FieldSpec,
)

logger = logging.getLogger("robot_mirror.bus")

#: Every reason code :class:`MalformedMessage` can carry, with its meaning.
REASONS: Mapping[str, str] = {
    "frame_count": "fewer than 2 frames, or a frame is not a bytes-like object",
    "oversize": "message, header or array count over the size limits",
    "topic": "topic frame is not 1-64 characters of [A-Za-z0-9_.-]",
    "header_msgpack": "header frame is not exactly one msgpack object",
    "header_map": "header is not a msgpack map",
    "header_key": "a required header key is missing or has the wrong type/range",
    "version": "header v differs from this receiver's SCHEMA_VERSION",
    "kind": "unknown message kind",
    "robot": "header robot is not a valid robot name, or is empty where required",
    "topic_mismatch": "topic is not the one the kind (and robot) require",
    "array_entry": "a header arrays entry is malformed (name/shape) or duplicated",
    "array_count": "number of array frames differs from len(header arrays)",
    "dtype": "dtype not in the whitelist or not allowed for this array",
    "byte_length": "array frame length != prod(shape) * itemsize",
    "shape": "array shape does not match the kind's shape pattern",
    "nonfinite": "NaN or infinity in an array that must be finite",
    "missing_array": "a required array is absent",
    "unexpected_array": "a known array is present where the kind forbids it",
    "field": "a required field is missing or has the wrong type",
    "field_value": "a field value is outside its enum, range or pattern",
    "internal": "the decoder itself failed (a bug in robot_mirror; report it)",
}

_INT64_MAX = 2**63 - 1
_TOPIC = re.compile(TOPIC_RE)
_ROBOT = re.compile(ROBOT_NAME_RE)
_ROBOT_OR_EMPTY = re.compile(ROBOT_OR_EMPTY_RE)
_ARRAY_NAME = re.compile(ARRAY_NAME_RE)
_DTYPES: Mapping[str, np.dtype] = {code: np.dtype(code) for code in ALLOWED_DTYPES}
_LITTLE = sys.byteorder == "little"


class MalformedMessage(RobotMirrorError):
    """A received message violates the wire format; drop it.

    ``reason`` is a short stable code (a key of :data:`REASONS`) suitable for
    counters and ``error`` replies; the message is one human-readable line.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"bad bus message [{reason}]: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Message:
    """A decoded (and validated) bus message.

    ``arrays`` values are read-only numpy arrays; when the frames were
    ``bytes`` (the pyzmq default) they share memory with the frames, so
    decoding costs no copy of the array data.
    """

    topic: str
    kind: str
    robot: str
    seq: int
    t_sim: float
    t_wall: float
    tick: int
    fields: Dict[str, Any]
    arrays: Dict[str, np.ndarray]


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


def _short(value: Any, limit: int = 60) -> str:
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
        raise MalformedMessage("header_key", f"header key {key!r} must be {what}, got {_short(value, 60)}")
    return value


def _check_head(header: Mapping[str, Any]) -> Tuple[_Head, CompiledKind]:
    """Validate the common header keys; the version is checked first because
    a future version may change every other key."""
    v = _require_key(header, "v", _is_int, "an int")
    if v != SCHEMA_VERSION:
        raise MalformedMessage("version", f"schema version {v}, this receiver speaks {SCHEMA_VERSION}")
    kind = _require_key(header, "kind", lambda x: isinstance(x, str), "a str")
    compiled = COMPILED.get(kind)
    if compiled is None:
        raise MalformedMessage("kind", f"unknown kind {_short(kind, 40)}")
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
        raise MalformedMessage("robot", f"robot name {_short(robot, 40)} is not [A-Za-z0-9_-]{{1,32}}")
    if compiled.spec.robot_required and not robot:
        raise MalformedMessage("robot", f"kind {compiled.spec.name!r} needs a non-empty robot")


def _check_topic(topic: str, compiled: CompiledKind, robot: str) -> None:
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
            raise MalformedMessage("field", f"field key {_short(key, 40)} is not a str")
    for name, spec in compiled.spec.fields.items():
        if name not in fields:
            raise MalformedMessage("field", f"{compiled.spec.name} field {name!r} is missing")
        _check_field_value(compiled, name, spec, fields[name])


def _check_field_value(compiled: CompiledKind, name: str, spec: FieldSpec, value: Any) -> None:
    kind = compiled.spec.name
    if not _matches_type(value, spec.types):
        raise MalformedMessage("field", f"{kind} field {name!r} must be {_type_names(spec.types)}, got {_short(value, 60)}")
    if spec.choices is not None and value not in spec.choices:
        raise MalformedMessage("field_value", f"{kind} field {name!r} must be one of {list(spec.choices)}, got {_short(value, 60)}")
    if spec.lo is not None and value < spec.lo or spec.hi is not None and value > spec.hi:
        raise MalformedMessage("field_value", f"{kind} field {name!r} must be in [{spec.lo}, {spec.hi}], got {value!r}")
    if isinstance(value, (dict, list)):
        _check_nested(kind, name, value, 0)
    pattern = compiled.patterns.get(name)
    if isinstance(value, list):
        for item in value:
            if spec.items is not None and not _matches_type(item, spec.items):
                raise MalformedMessage("field", f"{kind} field {name!r} items must be {_type_names(spec.items)}, got {_short(item, 60)}")
            if pattern is not None and isinstance(item, str) and not pattern.fullmatch(item):
                raise MalformedMessage("field_value", f"{kind} field {name!r} item {_short(item, 40)} must match {pattern.pattern}")
    elif pattern is not None and isinstance(value, str) and not pattern.fullmatch(value):
        raise MalformedMessage("field_value", f"{kind} field {name!r} value {_short(value, 40)} must match {pattern.pattern}")


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
                raise MalformedMessage("field", f"{kind} field {name!r} has a non-str key {_short(key, 40)}")
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


def _spec_for(compiled: CompiledKind, name: str, robots: Tuple[str, ...]) -> Tuple[Optional[ArraySpec], str]:
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
        spec, scope = layout.get(name) or _spec_for(compiled, name, robots)
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


def _check_body(compiled: CompiledKind, fields: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
    _check_fields(compiled, fields)
    _check_arrays(compiled, fields, arrays)


# --------------------------------------------------------------------------
# Decode
# --------------------------------------------------------------------------


def _buffers(frames: Any) -> List[Any]:
    """Turn the frames into bytes-like objects without copying.

    Accepts ``bytes`` (pyzmq's default), ``bytearray``, ``memoryview`` and
    ``zmq.Frame`` (``recv_multipart(copy=False)``).
    """
    if not isinstance(frames, (list, tuple)):
        raise MalformedMessage("frame_count", f"frames must be a list, got {type(frames).__name__}")
    out: List[Any] = []
    for i, frame in enumerate(frames):
        if isinstance(frame, (bytes, bytearray)):
            out.append(frame)
            continue
        try:
            view = memoryview(getattr(frame, "buffer", frame))
            if not view.c_contiguous:
                raise TypeError("non-contiguous buffer")
            out.append(view if view.format == "B" and view.ndim == 1 else view.cast("B"))
        except (TypeError, ValueError):
            raise MalformedMessage("frame_count", f"frame {i} is a {type(frame).__name__}, not contiguous bytes") from None
    return out


def _check_sizes(bufs: List[Any]) -> None:
    if len(bufs) < 2:
        raise MalformedMessage("frame_count", f"need at least 2 frames (topic, header), got {len(bufs)}")
    if len(bufs) - 2 > MAX_ARRAYS:
        raise MalformedMessage("oversize", f"{len(bufs) - 2} array frames, limit {MAX_ARRAYS}")
    if len(bufs[1]) > MAX_HEADER_BYTES:
        raise MalformedMessage("oversize", f"header is {len(bufs[1])} bytes, limit {MAX_HEADER_BYTES}")
    total = sum(len(b) for b in bufs)
    if total > MAX_MESSAGE_BYTES:
        raise MalformedMessage("oversize", f"message is {total} bytes, limit {MAX_MESSAGE_BYTES}")


def _parse_topic(buf: Any) -> str:
    raw = bytes(buf)
    topic = raw.decode("ascii", errors="replace")
    if not _TOPIC.fullmatch(topic):
        raise MalformedMessage("topic", f"topic {raw[:40]!r} is not 1-64 chars of [A-Za-z0-9_.-]")
    return topic


def _unpack_header(buf: Any) -> Dict[Any, Any]:
    try:
        header = msgpack.unpackb(buf, raw=False, strict_map_key=True, use_list=True)
    except Exception as exc:  # msgpack raises many types for garbage input
        raise MalformedMessage("header_msgpack", f"header is not one msgpack object ({type(exc).__name__})") from None
    if not isinstance(header, dict):
        raise MalformedMessage("header_map", f"header is a msgpack {type(header).__name__}, not a map")
    return header


def _parse_entry(i: int, entry: Any) -> Tuple[str, str, Tuple[int, ...]]:
    """Validate one ``header["arrays"]`` entry; extra keys are ignored."""
    if not isinstance(entry, dict):
        raise MalformedMessage("array_entry", f"arrays[{i}] is not a map")
    name, code, shape = entry.get("name"), entry.get("dtype"), entry.get("shape")
    if not isinstance(name, str) or not _ARRAY_NAME.fullmatch(name):
        raise MalformedMessage("array_entry", f"arrays[{i}] name {_short(name, 40)} is not 1-128 chars of [A-Za-z0-9_./-]")
    if not isinstance(code, str) or code not in _DTYPES:
        raise MalformedMessage("dtype", f"array {name!r} dtype {_short(code, 20)} is not one of {list(ALLOWED_DTYPES)}")
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_NDIM
        or not all(type(d) is int and 0 <= d <= MAX_MESSAGE_BYTES for d in shape)  # not bool
    ):
        raise MalformedMessage("array_entry", f"array {name!r} shape {_short(shape, 60)} is not a list of <= {MAX_NDIM} sizes")
    return name, code, tuple(shape)


def _parse_entries(raw: List[Any]) -> List[Tuple[str, str, Tuple[int, ...]]]:
    if len(raw) > MAX_ARRAYS:
        raise MalformedMessage("oversize", f"{len(raw)} arrays declared, limit {MAX_ARRAYS}")
    entries = [_parse_entry(i, e) for i, e in enumerate(raw)]
    names = [e[0] for e in entries]
    if len(set(names)) != len(names):
        raise MalformedMessage("array_entry", "duplicate array names")
    return entries


def _frame_to_array(name: str, code: str, shape: Tuple[int, ...], buf: Any) -> np.ndarray:
    """Wrap one array frame without copying, after checking its length."""
    dtype = _DTYPES[code]
    count = math.prod(shape)
    if len(buf) != count * dtype.itemsize:
        raise MalformedMessage(
            "byte_length", f"array {name!r} frame has {len(buf)} bytes, shape {list(shape)} {code} needs {count * dtype.itemsize}"
        )
    arr = np.frombuffer(buf, dtype=dtype, count=count).reshape(shape)
    if code == "|b1" and count and np.frombuffer(buf, dtype=np.uint8).max() > 1:
        raise MalformedMessage("dtype", f"bool array {name!r} has bytes other than 0 and 1")
    if arr.flags.writeable:
        arr.flags.writeable = False
    return arr


def _decode(frames: Sequence[Any]) -> Message:
    bufs = _buffers(frames)
    _check_sizes(bufs)
    topic = _parse_topic(bufs[0])
    header = _unpack_header(bufs[1])
    head, compiled = _check_head(header)
    _check_topic(topic, compiled, head.robot)
    entries = _parse_entries(header["arrays"])
    if len(entries) != len(bufs) - 2:
        raise MalformedMessage("array_count", f"header declares {len(entries)} arrays, got {len(bufs) - 2} array frames")
    arrays = {name: _frame_to_array(name, code, shape, buf) for (name, code, shape), buf in zip(entries, bufs[2:])}
    fields = header["fields"]
    _check_body(compiled, fields, arrays)
    return Message(topic, head.kind, head.robot, head.seq, head.t_sim, head.t_wall, head.tick, fields, arrays)


def decode(frames: Sequence[Any]) -> Message:
    """Parse and validate a received multipart message.

    Raises :class:`MalformedMessage` and nothing else, whatever the bytes: a
    receiver must survive any peer. An unexpected internal exception is
    reported with reason ``"internal"`` (that would be a decoder bug).
    """
    try:
        return _decode(frames)
    except MalformedMessage:
        raise
    except Exception as exc:
        raise MalformedMessage("internal", f"decoder failed: {type(exc).__name__}: {exc}") from exc


# --------------------------------------------------------------------------
# Encode
# --------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """Turn numpy scalars and tuples into the plain types msgpack and the
    validator understand, so callers can pass ``np.float32(0.5)``."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _prepare_array(name: str, value: Any, spec: Optional[ArraySpec]) -> np.ndarray:
    """Make an array wire-ready: little-endian, whitelisted, C-contiguous.

    A value whose dtype the spec does not allow is cast to the spec's first
    dtype when that is a same-kind cast (e.g. a list of ints for q_target);
    anything else is the caller's bug.
    """
    arr = np.asarray(value)
    if arr.dtype.byteorder == ">" or (arr.dtype.byteorder == "=" and not _LITTLE):
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    code = arr.dtype.str
    if spec is not None and code not in spec.dtypes:
        target = np.dtype(spec.dtypes[0])
        if arr.dtype.kind not in "biuf" or not np.can_cast(arr.dtype, target, "same_kind"):
            raise ValueError(f"array {name!r}: dtype {code} cannot be sent as {spec.dtypes[0]}")
        arr = arr.astype(target)
    elif code not in _DTYPES:
        raise ValueError(f"array {name!r}: dtype {code} is not one of {list(ALLOWED_DTYPES)}")
    return np.ascontiguousarray(arr)


def _prepare_arrays(compiled: CompiledKind, fields: Mapping[str, Any], arrays: Mapping[str, Any]) -> Dict[str, np.ndarray]:
    listed = fields.get(compiled.spec.robots_field) if compiled.spec.robots_field else None
    robots = tuple(r for r in listed if isinstance(r, str)) if isinstance(listed, list) else ()
    out: Dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        if not isinstance(name, str) or not _ARRAY_NAME.fullmatch(name):
            raise ValueError(f"array name {name!r} is not 1-128 chars of [A-Za-z0-9_./-]")
        try:
            spec, _ = _spec_for(compiled, name, robots)
        except MalformedMessage:
            spec = None  # reported with its proper message by _check_body
        out[name] = _prepare_array(name, value, spec)
    return out


def encode(
    topic: str,
    kind: str,
    *,
    robot: str = "",
    seq: int = 0,
    t_sim: float = 0.0,
    t_wall: Optional[float] = None,
    tick: int = -1,
    fields: Optional[Mapping[str, Any]] = None,
    arrays: Optional[Mapping[str, Any]] = None,
    validate: bool = True,
) -> List[bytes]:
    """Build the frames of one message, validated exactly as ``decode`` would.

    Validating on the sending side turns a wrong field into a ``ValueError``
    at the line that built it instead of a silent drop on the receiver.
    ``validate=False`` skips that for the nodes' hot path (state, obs, cmd
    and reply built every tick from data that was itself decoded and
    checked); receivers validate every message regardless.
    ``t_wall`` defaults to ``time.time()``. Returns ``[topic, header, *arrays]``
    ready for ``socket.send_multipart``.
    """
    compiled = COMPILED.get(kind)
    if compiled is None:
        raise ValueError(f"unknown message kind {kind!r}")
    plain_fields = {k: _plain(v) for k, v in (fields or {}).items()}
    wire_arrays = _prepare_arrays(compiled, plain_fields, arrays or {})
    header = {
        "v": SCHEMA_VERSION,
        "kind": kind,
        "robot": robot,
        "seq": _plain(seq),
        "t_sim": _plain(t_sim),
        "t_wall": time.time() if t_wall is None else _plain(t_wall),
        "tick": _plain(tick),
        "arrays": [{"name": n, "dtype": a.dtype.str, "shape": list(a.shape)} for n, a in wire_arrays.items()],
        "fields": plain_fields,
    }
    if not validate:
        return _pack(topic, header, wire_arrays)
    try:
        if not isinstance(topic, str) or not _TOPIC.fullmatch(topic):
            raise MalformedMessage("topic", f"topic {_short(topic, 40)} is not 1-64 chars of [A-Za-z0-9_.-]")
        head, _ = _check_head(header)
        _check_topic(topic, compiled, head.robot)
        if len(wire_arrays) > MAX_ARRAYS:
            raise MalformedMessage("oversize", f"{len(wire_arrays)} arrays, limit {MAX_ARRAYS}")
        _check_body(compiled, plain_fields, wire_arrays)
    except MalformedMessage as exc:
        raise ValueError(f"cannot encode {kind!r}: {exc}") from None
    return _pack(topic, header, wire_arrays)


def _pack(topic: str, header: Dict[str, Any], arrays: Mapping[str, np.ndarray]) -> List[bytes]:
    try:
        head = msgpack.packb(header, use_bin_type=True, use_single_float=False)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"header cannot be packed as msgpack: {exc}") from None
    frames = [topic.encode("ascii"), head] + [a.tobytes() for a in arrays.values()]
    if len(head) > MAX_HEADER_BYTES:
        raise ValueError(f"header is {len(head)} bytes, limit {MAX_HEADER_BYTES}")
    total = sum(len(f) for f in frames)
    if total > MAX_MESSAGE_BYTES:
        raise ValueError(f"message is {total} bytes, limit {MAX_MESSAGE_BYTES}")
    return frames


# --------------------------------------------------------------------------
# Dropping bad input
# --------------------------------------------------------------------------


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class DropCounter:
    """Counts dropped (malformed) messages per reason and logs them sparingly.

    A misbehaving peer can send thousands of bad messages per second; logging
    each would drown the log and slow the control loop. The first drop of each
    reason is always logged, later ones at most once per ``interval`` seconds
    per reason, with the number dropped since the previous line. Thread-safe.
    """

    def __init__(self, interval: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: Dict[str, int] = {}
        self._last_log: Dict[str, float] = {}
        self._unlogged: Dict[str, int] = {}

    def record(self, err: BaseException, source: str = "") -> None:
        """Count one dropped message and maybe log one line about it."""
        reason = getattr(err, "reason", None) or type(err).__name__
        with self._lock:
            self._counts[reason] = self._counts.get(reason, 0) + 1
            pending = self._unlogged.get(reason, 0) + 1
            now = self._clock()
            last = self._last_log.get(reason)
            if last is not None and now - last < self._interval:
                self._unlogged[reason] = pending
                return
            self._last_log[reason] = now
            self._unlogged[reason] = 0
            total = self._counts[reason]
        where = f" from {_one_line(source)}" if source else ""
        logger.warning(
            "dropped bus message%s: %s (%d since last report, %d total for %s)",
            where, _one_line(str(err)), pending, total, reason,
        )

    @property
    def total(self) -> int:
        """Number of messages dropped so far, all reasons together."""
        with self._lock:
            return sum(self._counts.values())

    @property
    def by_reason(self) -> Dict[str, int]:
        """A copy of the per-reason drop counts."""
        with self._lock:
            return dict(self._counts)

    def as_dict(self) -> Dict[str, Any]:
        """JSON-ready snapshot, e.g. for a run summary or a heartbeat."""
        by_reason = self.by_reason
        return {"total": sum(by_reason.values()), "by_reason": by_reason}


def decode_or_drop(frames: Sequence[Any], counter: DropCounter, source: str = "") -> Optional[Message]:
    """Decode ``frames``, or count and log them and return None.

    This is the call receive loops should use: a bad peer costs a counter
    increment, never an exception in the loop.
    """
    try:
        return decode(frames)
    except MalformedMessage as err:
        counter.record(err, source)
        return None
