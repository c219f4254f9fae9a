"""The robot_mirror message bus: versioned wire format over ZeroMQ.

Import the codec from here::

    from robot_mirror.bus import encode, decode_or_drop, DropCounter

The wire format is specified in ``docs/protocol.md``; the message kinds are
declared as data in :mod:`robot_mirror.bus.schema`.
"""

from robot_mirror.bus.codec import (
    REASONS,
    DropCounter,
    MalformedMessage,
    Message,
    decode,
    decode_or_drop,
    encode,
)
from robot_mirror.bus.schema import (
    ALLOWED_DTYPES,
    KINDS,
    MAX_ARRAYS,
    MAX_HEADER_BYTES,
    MAX_MESSAGE_BYTES,
    REPLY_CODES,
    SCHEMA_VERSION,
    ArraySpec,
    FieldSpec,
    KindSpec,
)

__all__ = [
    "ALLOWED_DTYPES",
    "KINDS",
    "MAX_ARRAYS",
    "MAX_HEADER_BYTES",
    "MAX_MESSAGE_BYTES",
    "REASONS",
    "REPLY_CODES",
    "SCHEMA_VERSION",
    "ArraySpec",
    "DropCounter",
    "FieldSpec",
    "KindSpec",
    "MalformedMessage",
    "Message",
    "decode",
    "decode_or_drop",
    "encode",
]
