"""Hostile bus messages for the fuzz tests, built with raw msgpack (never the
project's encoder, so the tests do not share the code they check), and the
one place that connects a fuzzing socket to a run (:func:`connect`: when runs
get credentials, this is where the keys go).

A case is ``(endpoint name, identity, frames)``. The default identities are
none of the run's nodes: a ROUTER with ROUTER_HANDOVER gives a node's
identity to whoever claims it, and the node's own connection is left open
but unread for good (issue 8 item 5, closed by per-run credentials); that
case is NODE_IDENTITIES, in a strict xfail of tests/test_fuzz_bus.py.
"""

from __future__ import annotations

import math
import struct
import time
from pathlib import Path

import msgpack
import zmq

from tests.helpers import raw_curve
from hypothesis import strategies as st

ROUTERS = ("cmd", "turn_rpc", "control")
PUBLISHERS = ("state", "obs", "turn")
SPOOFED = {"cmd": ("controller.x", "controller.y"), "turn_rpc": ("x",), "control": ("fuzz",)}
NODE_IDENTITIES = {"cmd": ("policy.left", "policy.right"), "turn_rpc": ("sim",), "control": ("sim", "policy.right")}


def connect(ctx: zmq.Context, kind: int, endpoint: str, *, identity: bytes | None = None,
            run_dir: Path | None = None, key: str | None = None) -> zmq.Socket:
    """A raw pyzmq socket connected to one of a run's endpoints, with the
    run's CURVE key ``key`` from ``run_dir``/keys (every run has keys: a peer
    without one is refused at the handshake and reaches no node)."""
    sock = ctx.socket(kind)
    if run_dir is not None and key is not None:
        raw_curve(sock, run_dir, key)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 100_000)
    if identity is not None:
        sock.setsockopt(zmq.IDENTITY, identity)
    sock.connect(endpoint)
    return sock


def zmtp_send(endpoint: str, socket_type: bytes, frames: list[bytes], timeout: float = 10.0) -> None:
    """Speak ZMTP 3.0 (NULL mechanism) over plain TCP as ``socket_type`` and
    send ``frames`` as one message. For frames no libzmq socket should send
    itself: an XSUB files a subscription in its own trie first, and a 50 MB
    one overflows that trie's recursion (a segfault in the *sender*)."""
    import socket

    host, port = endpoint[len("tcp://"):].rsplit(":", 1)
    greeting = b"\xff" + b"\0" * 8 + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\0") + b"\0" + b"\0" * 31
    prop = b"\x0bSocket-Type" + struct.pack(">I", len(socket_type)) + socket_type
    ready = b"\x05READY" + prop
    with socket.create_connection((host, int(port)), timeout=timeout) as raw:
        raw.sendall(greeting + b"\x04" + bytes([len(ready)]) + ready)
        for i, frame in enumerate(frames):
            more = 0x01 if i < len(frames) - 1 else 0
            head = (bytes([more, len(frame)]) if len(frame) < 256
                    else bytes([more | 0x02]) + struct.pack(">Q", len(frame)))
            try:
                raw.sendall(head + frame)
            except OSError:  # cut by the receiver's size limit: what we wanted
                return
        time.sleep(0.2)


def header(kind: str, robot: str = "", *, seq: int = 1, tick: int = -1, t_sim: float = 0.0,
           arrays: list | None = None, fields: dict | None = None) -> dict:
    return {"v": 1, "kind": kind, "robot": robot, "seq": seq, "t_sim": t_sim, "t_wall": time.time(),
            "tick": tick, "arrays": arrays or [], "fields": fields or {}}


def frames(topic: str, head: dict, *arrays: bytes) -> list[bytes]:
    return [topic.encode(), msgpack.packb(head, use_bin_type=True), *arrays]


def f8(*values: float) -> bytes:
    return struct.pack(f"<{len(values)}d", *values)


# Values of every wrong type (and wrong range) for any header key or field.
INT64 = st.integers(min_value=-2**63, max_value=2**64 - 1)
HOSTILE = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-2**63, max_value=2**64 - 1),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12), st.binary(max_size=12),
    st.lists(INT64, max_size=3), st.dictionaries(st.text(max_size=4), INT64, max_size=2),
    st.sampled_from(["abc", "", "left", "right", "x" * 70, "\n\rforged line", math.nan, 1e308, -1e308]),
)
NUMBER = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64), st.sampled_from([0.0, 1e308, -1e308]))
TICK = st.one_of(st.sampled_from([-1, 0, 1, 2, 2**62, 2**63 - 1]), st.integers(min_value=-5, max_value=400))


def _cmd(draw, robot: str) -> list[bytes]:
    mode = draw(st.sampled_from(["joint", "ee"]))
    if mode == "joint":
        n = draw(st.sampled_from([7, 7, 7, 3, 0, 12]))
        values = draw(st.lists(NUMBER, min_size=n, max_size=n)) if draw(st.booleans()) else [0.1] * n
        desc, data = {"name": "q_target", "dtype": "<f8", "shape": [n]}, f8(*values)
    else:
        pos = draw(st.sampled_from([[0.4, 0.0, 0.3], [1e308, 0.0, 0.3], [5.0, 5.0, 5.0]]))
        quat = draw(st.sampled_from([[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1e-9], [1, 1, 1, 1], [math.nan, 0, 0, 1]]))
        desc, data = {"name": "ee_pose", "dtype": "<f8", "shape": [7]}, f8(*(pos + quat))
    fields = {"mode": mode, "gripper": draw(st.sampled_from([0.0, 1.0, 0.5])),
              "turn": draw(st.sampled_from(["", "request", "release"]))}
    return frames("cmd", header("cmd", robot, seq=draw(st.integers(0, 2**63 - 1)), tick=draw(TICK),
                                arrays=[desc], fields=fields), data)


def _turn_query(draw) -> list[bytes]:
    fields = {"episode": draw(st.sampled_from([0, 1, 99])), "has_work": {"left": True, "right": True},
              "release": [], "request": draw(st.sampled_from([[], ["left"], ["right"]])),
              "last_heard": {"left": 0.0, "right": 0.0}, "holder": "", "next": ""}
    return frames("turn_query", header("turn_query", tick=draw(TICK), fields=fields))


def _control(draw) -> list[bytes]:
    kind = draw(st.sampled_from(["hello", "heartbeat", "episode"]))
    fields = {"hello": {"node": "fuzz", "pid": 1}, "heartbeat": {"node": "fuzz", "state": "x", "drops": 0},
              "episode": {"index": 0, "summary": {}, "last": False}}[kind]
    return frames(kind, header(kind, fields=fields))


@st.composite
def valid_like(draw, where: str) -> list[bytes]:
    """A schema-valid message for ``where``, then at most one mutation: a key
    or field given a hostile value, a key removed, an extra frame."""
    robot = draw(st.sampled_from(["left", "right", "nobody"]))
    msg = {"cmd": lambda: _cmd(draw, robot), "turn_rpc": lambda: _turn_query(draw),
           "control": lambda: _control(draw)}[where]()
    mutation = draw(st.sampled_from(["none", "header", "field", "drop", "extra_frame", "topic"]))
    if mutation in ("header", "field", "drop"):
        head = msgpack.unpackb(msg[1], raw=False)
        target = head if mutation == "header" or not head["fields"] else head["fields"]
        key = draw(st.sampled_from(sorted(target)))
        if mutation == "drop":
            del target[key]
        else:
            target[key] = draw(HOSTILE)
        msg[1] = msgpack.packb(head, use_bin_type=True)
    elif mutation == "extra_frame":
        msg.append(draw(st.binary(max_size=64)))
    elif mutation == "topic":
        msg[0] = draw(st.binary(min_size=0, max_size=80))
    return msg


JUNK = st.lists(st.binary(max_size=200), min_size=0, max_size=5)


@st.composite
def router_case(draw) -> tuple[str, bytes, list[bytes]]:
    where = draw(st.sampled_from(ROUTERS))
    identity = draw(st.sampled_from(SPOOFED[where])).encode()
    msg = draw(st.one_of(valid_like(where), JUNK)) if draw(st.integers(0, 4)) else draw(JUNK)
    return where, identity, msg


@st.composite
def publisher_case(draw) -> tuple[str, bytes, list[bytes]]:
    """Subscriptions (sane, long, cancel of what was never subscribed) and
    non-subscription messages a SUB would never send."""
    where = draw(st.sampled_from(PUBLISHERS))
    flag = draw(st.sampled_from([b"\x01", b"\x00", b"\x02", b""]))
    topic = draw(st.one_of(st.binary(max_size=64), st.sampled_from([b"", b"state", b"obs.left", b"turn" * 16])))
    return where, b"", [flag + topic] + draw(st.lists(st.binary(max_size=32), max_size=2))


CASES = st.one_of(router_case(), router_case(), router_case(), publisher_case())
