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

import math
import re
import sys
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import msgpack
import numpy as np

from robot_mirror.bus.drops import DropCounter
from robot_mirror.bus.message import REASONS, MalformedMessage, Message
from robot_mirror.bus.schema import (
    ALLOWED_DTYPES,
    ARRAY_NAME_RE,
    COMPILED,
    MAX_ARRAYS,
    MAX_HEADER_BYTES,
    MAX_MESSAGE_BYTES,
    MAX_NDIM,
    SCHEMA_VERSION,
    TOPIC_RE,
    ArraySpec,
    CompiledKind,
)
from robot_mirror.bus.validate import (
    MAX_FIELD_DEPTH,
    check_body,
    check_head,
    check_topic,
    short,
    spec_for,
)

__all__ = [
    "MAX_FIELD_DEPTH",
    "REASONS",
    "DropCounter",
    "MalformedMessage",
    "Message",
    "decode",
    "decode_or_drop",
    "encode",
]

_TOPIC = re.compile(TOPIC_RE)
_ARRAY_NAME = re.compile(ARRAY_NAME_RE)
_DTYPES: Mapping[str, np.dtype] = {code: np.dtype(code) for code in ALLOWED_DTYPES}
_LITTLE = sys.byteorder == "little"


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
        raise MalformedMessage("array_entry", f"arrays[{i}] name {short(name, 40)} is not 1-128 chars of [A-Za-z0-9_./-]")
    if not isinstance(code, str) or code not in _DTYPES:
        raise MalformedMessage("dtype", f"array {name!r} dtype {short(code, 20)} is not one of {list(ALLOWED_DTYPES)}")
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_NDIM
        or not all(type(d) is int and 0 <= d <= MAX_MESSAGE_BYTES for d in shape)  # not bool
    ):
        raise MalformedMessage("array_entry", f"array {name!r} shape {short(shape, 60)} is not a list of <= {MAX_NDIM} sizes")
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


def _decode(frames: Sequence[Any], trusted: bool = False) -> Message:
    bufs = _buffers(frames)
    _check_sizes(bufs)
    topic = _parse_topic(bufs[0])
    header = _unpack_header(bufs[1])
    head, compiled = check_head(header)
    check_topic(topic, compiled, head.robot)
    entries = _parse_entries(header["arrays"])
    if len(entries) != len(bufs) - 2:
        raise MalformedMessage("array_count", f"header declares {len(entries)} arrays, got {len(bufs) - 2} array frames")
    arrays = {name: _frame_to_array(name, code, shape, buf) for (name, code, shape), buf in zip(entries, bufs[2:])}
    fields = header["fields"]
    if not trusted:
        check_body(compiled, fields, arrays)
    return Message(topic, head.kind, head.robot, head.seq, head.t_sim, head.t_wall, head.tick, fields, arrays)


def decode(frames: Sequence[Any], *, trusted: bool = False) -> Message:
    """Parse and validate a received multipart message.

    Raises :class:`MalformedMessage` and nothing else, whatever the bytes: a
    receiver must survive any peer. An unexpected internal exception is
    reported with reason ``"internal"`` (that would be a decoder bug).

    ``trusted``: the frames come from one of the run's own publishers over an
    authenticated connection (a SUB receives only from the PUB it connected
    to, whose CURVE server key it checked): the structure is still parsed and
    bounded, but the per-field semantic checks, which cost most of a decode,
    are left to the edge, where peers are not the run's own processes.
    """
    try:
        return _decode(frames, trusted)
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
            spec, _ = spec_for(compiled, name, robots)
        except MalformedMessage:
            spec = None  # reported with its proper message by check_body
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
    if validate:
        _check_outgoing(topic, compiled, header, wire_arrays)
    return _pack(topic, header, wire_arrays)


def _check_outgoing(topic: Any, compiled: CompiledKind, header: Dict[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
    """Run the receiver's checks on a message about to be sent, as ``ValueError``.

    The caller built the message, so a violation is the caller's bug and is
    reported as one, not as the peer-facing :class:`MalformedMessage`.
    """
    kind = header["kind"]
    try:
        if not isinstance(topic, str) or not _TOPIC.fullmatch(topic):
            raise MalformedMessage("topic", f"topic {short(topic, 40)} is not 1-64 chars of [A-Za-z0-9_.-]")
        head, _ = check_head(header)
        check_topic(topic, compiled, head.robot)
        if len(arrays) > MAX_ARRAYS:
            raise MalformedMessage("oversize", f"{len(arrays)} arrays, limit {MAX_ARRAYS}")
        check_body(compiled, header["fields"], arrays)
    except MalformedMessage as exc:
        raise ValueError(f"cannot encode {kind!r}: {exc}") from None


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


def decode_or_drop(frames: Sequence[Any], counter: DropCounter, source: str = "", *,
                   trusted: bool = False) -> Optional[Message]:
    """Decode ``frames``, or count and log them and return None.

    This is the call receive loops should use: a bad peer costs a counter
    increment, never an exception in the loop.
    """
    try:
        return decode(frames, trusted=trusted)
    except MalformedMessage as err:
        counter.record(err, source)
        return None
