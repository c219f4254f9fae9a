"""The values the bus codec hands out: decoded messages and the error for bad ones.

These sit below every other bus module so that the validator, the codec and
anything that only needs to *catch* a bad message can import them without
pulling in each other; :data:`REASONS` lives here because it documents the
``reason`` codes that :class:`MalformedMessage` carries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping

import numpy as np

from robot_mirror.errors import RobotMirrorError

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
