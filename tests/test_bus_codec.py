"""Tests of the bus wire format (robot_mirror.bus.codec / schema).

Everything here is in-process and fast; only ``test_over_real_zmq_socket``
opens sockets (tcp on 127.0.0.1, random port, linger 0).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import msgpack
import numpy as np
import pytest

from robot_mirror.bus import (
    ALLOWED_DTYPES,
    KINDS,
    MAX_ARRAYS,
    MAX_HEADER_BYTES,
    MAX_MESSAGE_BYTES,
    REASONS,
    REPLY_CODES,
    SCHEMA_VERSION,
    DropCounter,
    MalformedMessage,
    Message,
    decode,
    decode_or_drop,
    encode,
)
from robot_mirror.errors import RobotMirrorError

DOC = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"
ROBOTS = ("left", "right")


# --------------------------------------------------------------------------
# Sample messages, one per kind
# --------------------------------------------------------------------------


def _state_arrays(dof: int = 7, links: int = 8, blocks: int = 3) -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays: Dict[str, np.ndarray] = {}
    for r in ROBOTS:
        arrays[f"{r}/q"] = rng.uniform(-3, 3, dof)
        arrays[f"{r}/dq"] = rng.uniform(-1, 1, dof)
        arrays[f"{r}/ee_pose"] = np.array([0.4, 0.1, 0.3, 0.0, 0.0, 0.0, 1.0])
        arrays[f"{r}/gripper"] = np.array([0.25])
        arrays[f"{r}/link_pos"] = rng.uniform(-1, 1, (links, 3))
    arrays["blocks"] = rng.uniform(-1, 1, (blocks, 7))
    return arrays


def _obs_arrays() -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {
        "q": rng.uniform(-3, 3, 7),
        "dq": rng.uniform(-1, 1, 7),
        "ee_pose": np.array([0.4, 0.1, 0.3, 0.0, 0.0, 0.0, 1.0]),
        "gripper": np.array([1.0]),
        "partner_ee_pose": np.array([0.9, 0.0, 0.3, 0.0, 0.0, 1.0, 0.0]),
        "partner_link_pos": rng.uniform(-1, 1, (8, 3)),
        "blocks": rng.uniform(-1, 1, (2, 7)),
    }


def samples() -> Dict[str, Tuple[str, Dict[str, Any]]]:
    """kind -> (topic, encode kwargs) for one valid message of every kind."""
    return {
        "hello": ("hello", dict(fields={"node": "policy.left", "pid": 4242})),
        "ready": ("ready", dict(fields={"node": "sim", "to": "policy.left"})),
        "heartbeat": ("heartbeat", dict(robot="left", fields={"node": "policy.left", "state": "running"})),
        "stop": ("stop", dict(fields={"reason": "episode budget reached"})),
        "state": ("state", dict(
            seq=17, t_sim=1.25, tick=75,
            fields={"robots": list(ROBOTS), "holder": "left", "episode": 2, "events": ["grasp:left:block0"]},
            arrays=_state_arrays(),
        )),
        "obs": ("obs.left", dict(
            robot="left", seq=5, t_sim=1.25, tick=75,
            fields={"holder": "", "observed": True}, arrays=_obs_arrays(),
        )),
        "cmd": ("cmd", dict(
            robot="right", seq=9, t_sim=1.25, tick=75,
            fields={"mode": "joint", "gripper": 0.5, "turn": "request"},
            arrays={"q_target": np.linspace(-1, 1, 7)},
        )),
        "reply": ("reply", dict(
            robot="right", seq=3, tick=75,
            fields={"ok": True, "code": "clamped", "message": "joint 3 clamped", "clamped": 1, "ack": 9},
        )),
        "turn": ("turn", dict(fields={"holder": "right", "event": "grant", "reason": "requested"})),
        "error": ("error", dict(fields={"code": "bad_message", "message": "nope"})),
    }


def sample_frames(kind: str) -> List[bytes]:
    topic, kw = samples()[kind]
    return encode(topic, kind, t_wall=1000.0, **kw)


def parts(frames: List[bytes]) -> Tuple[bytes, Dict[str, Any], List[bytes]]:
    """Split frames into (topic, header dict, array frames) for mutation."""
    return frames[0], msgpack.unpackb(frames[1]), list(frames[2:])


def join(topic: bytes, header: Any, arrays: List[bytes]) -> List[bytes]:
    return [topic, msgpack.packb(header, use_bin_type=True)] + list(arrays)


def mutate(kind: str, fn: Callable[[Dict[str, Any]], Any]) -> List[bytes]:
    """A valid message of ``kind`` whose header went through ``fn``."""
    topic, header, arrays = parts(sample_frames(kind))
    fn(header)
    return join(topic, header, arrays)


def reject_reason(frames: Any) -> str:
    with pytest.raises(MalformedMessage) as info:
        decode(frames)
    return info.value.reason


# --------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------


def test_samples_cover_every_kind() -> None:
    assert set(samples()) == set(KINDS)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_round_trip(kind: str) -> None:
    topic, kw = samples()[kind]
    msg = decode(encode(topic, kind, t_wall=1000.0, **kw))
    assert isinstance(msg, Message)
    assert (msg.topic, msg.kind, msg.robot) == (topic, kind, kw.get("robot", ""))
    assert (msg.seq, msg.t_sim, msg.t_wall, msg.tick) == (
        kw.get("seq", 0), kw.get("t_sim", 0.0), 1000.0, kw.get("tick", -1))
    assert msg.fields == kw["fields"]
    sent = kw.get("arrays", {})
    assert list(msg.arrays) == list(sent)
    for name, arr in sent.items():
        got = msg.arrays[name]
        assert got.dtype.str == "<f8" and got.shape == arr.shape
        np.testing.assert_array_equal(got, arr)
        assert not got.flags.writeable


def test_frame_layout() -> None:
    frames = sample_frames("cmd")
    assert frames[0] == b"cmd" and len(frames) == 3
    header = msgpack.unpackb(frames[1])
    assert set(header) == {"v", "kind", "robot", "seq", "t_sim", "t_wall", "tick", "arrays", "fields"}
    assert header["v"] == SCHEMA_VERSION
    assert header["arrays"] == [{"name": "q_target", "dtype": "<f8", "shape": [7]}]
    assert frames[2] == np.linspace(-1, 1, 7).astype("<f8").tobytes()
    assert all(isinstance(f, bytes) for f in frames)


def test_golden_cmd_example_matches_the_doc() -> None:
    """The worked example in docs/protocol.md is a test vector for other
    languages, so the reference encoder must keep producing exactly it."""
    frames = encode("cmd", "cmd", robot="left", seq=42, t_sim=3.5, t_wall=1700000000.25, tick=210,
                    fields={"mode": "joint", "gripper": 1.0, "turn": "request"},
                    arrays={"q_target": [0.0, -0.5, 0.0, -2.0, 0.0, 1.5, 0.785]})
    assert [len(f) for f in frames] == [3, 157, 56]
    doc = "".join(DOC.read_text(encoding="utf-8").split())
    assert frames[1].hex() in doc and frames[2].hex() in doc


def test_decode_is_zero_copy_and_read_only() -> None:
    frames = sample_frames("cmd")
    msg = decode(frames)
    q = msg.arrays["q_target"]
    assert np.shares_memory(q, np.frombuffer(frames[2], np.uint8))
    with pytest.raises(ValueError):
        q[0] = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        msg.seq = 1  # type: ignore[misc]


def test_decode_accepts_bytearray_and_memoryview_frames() -> None:
    frames = sample_frames("state")
    msg = decode([bytearray(f) for f in frames])
    assert not msg.arrays["left/q"].flags.writeable
    msg2 = decode([memoryview(f) for f in frames])
    np.testing.assert_array_equal(msg2.arrays["blocks"], msg.arrays["blocks"])


def test_encode_normalises_array_inputs() -> None:
    base = dict(robot="left", fields={"mode": "joint", "gripper": 1, "turn": ""})
    # list of ints -> <f8 (same-kind cast), float32 kept, big-endian -> little, strided -> contiguous
    for value, dtype in [
        ([0, 1, 2, 3, 4, 5, 6], "<f8"),
        (np.arange(7, dtype=np.float32), "<f4"),
        (np.arange(7, dtype=">f8"), "<f8"),
        (np.arange(14.0)[::2], "<f8"),
    ]:
        msg = decode(encode("cmd", "cmd", arrays={"q_target": value}, **base))
        assert msg.arrays["q_target"].dtype.str == dtype
        np.testing.assert_array_equal(msg.arrays["q_target"], np.asarray(value, dtype=float))
    assert msg.fields["gripper"] == 1  # an int is accepted for a float field


def test_encode_accepts_numpy_scalars() -> None:
    msg = decode(encode("reply", "reply", robot="left", seq=np.int64(4), t_sim=np.float32(0.5), fields={
        "ok": np.bool_(True), "code": "ok", "message": "", "clamped": np.int32(0), "ack": np.int64(3)}))
    assert (msg.seq, msg.t_sim, msg.fields["ok"], msg.fields["ack"]) == (4, 0.5, True, 3)


def test_unknown_extras_are_allowed_for_forward_compatibility() -> None:
    def add_extras(h: Dict[str, Any]) -> None:
        h["future_key"] = {"x": 1}
        h["fields"]["future_field"] = [1, "two"]
        h["arrays"].append({"name": "extra/thing", "dtype": "|u1", "shape": [2, 2], "unit": "px"})

    topic, header, arrays = parts(sample_frames("cmd"))
    add_extras(header)
    msg = decode(join(topic, header, arrays + [bytes(4)]))
    assert msg.fields["future_field"] == [1, "two"]
    assert msg.arrays["extra/thing"].shape == (2, 2)


def test_obs_partner_arrays_may_be_nan_when_not_observed() -> None:
    topic, kw = samples()["obs"]
    kw["fields"] = {"holder": "left", "observed": False}
    kw["arrays"]["partner_ee_pose"] = np.full(7, np.nan)
    kw["arrays"]["partner_link_pos"] = np.full((0, 3), np.nan)
    msg = decode(encode(topic, "obs", **kw))
    assert np.isnan(msg.arrays["partner_ee_pose"]).all()
    assert msg.arrays["partner_link_pos"].shape == (0, 3)


def test_cmd_ee_mode() -> None:
    msg = decode(encode("cmd", "cmd", robot="left", fields={"mode": "ee", "gripper": 0.0, "turn": "release"},
                        arrays={"ee_pose": [0.3, 0.0, 0.2, 0, 0, 0, 1]}))
    assert list(msg.arrays) == ["ee_pose"]


def test_bool_and_int_arrays_round_trip() -> None:
    topic, header, arrays = parts(sample_frames("stop"))
    header["arrays"] = [{"name": "mask", "dtype": "|b1", "shape": [3]}, {"name": "ids", "dtype": "<i4", "shape": [2]}]
    msg = decode(join(topic, header, [b"\x01\x00\x01", np.array([7, -1], "<i4").tobytes()]))
    assert msg.arrays["mask"].tolist() == [True, False, True]
    assert msg.arrays["ids"].tolist() == [7, -1]


# --------------------------------------------------------------------------
# Encode rejects programmer errors with ValueError
# --------------------------------------------------------------------------

CMD_FIELDS = {"mode": "joint", "gripper": 0.5, "turn": ""}
Q7 = np.zeros(7)


@pytest.mark.parametrize("call", [
    lambda: encode("cmd", "nope", robot="left"),
    lambda: encode("state", "cmd", robot="left", fields=CMD_FIELDS, arrays={"q_target": Q7}),
    lambda: encode("cmd", "cmd", fields=CMD_FIELDS, arrays={"q_target": Q7}),
    lambda: encode("cmd", "cmd", robot="left", fields={"mode": "joint"}, arrays={"q_target": Q7}),
    lambda: encode("cmd", "cmd", robot="left", fields={**CMD_FIELDS, "gripper": 2.0}, arrays={"q_target": Q7}),
    lambda: encode("cmd", "cmd", robot="left", fields=CMD_FIELDS, arrays={"q_target": np.full(7, np.nan)}),
    lambda: encode("cmd", "cmd", robot="left", fields=CMD_FIELDS, arrays={"q_target": np.zeros(7, complex)}),
    lambda: encode("cmd", "cmd", robot="left", fields=CMD_FIELDS, arrays={"q_target": ["a"] * 7}),
    lambda: encode("cmd", "cmd", robot="left", fields=CMD_FIELDS, arrays={"ee_pose": Q7}),
    lambda: encode("cmd", "cmd", robot="left", seq=-1, fields=CMD_FIELDS, arrays={"q_target": Q7}),
    lambda: encode("cmd", "cmd", robot="left", fields={**CMD_FIELDS, "x": object()}, arrays={"q_target": Q7}),
    lambda: encode("stop", "stop", fields={"reason": ""}, arrays={"bad name": Q7}),
    lambda: encode("stop", "stop", fields={"reason": ""}, arrays={"big": np.zeros(MAX_MESSAGE_BYTES // 8 + 1)}),
])
def test_encode_rejects_programmer_errors(call: Callable[[], Any]) -> None:
    with pytest.raises(ValueError):
        call()


# --------------------------------------------------------------------------
# Decode rejects malformed input with the right reason
# --------------------------------------------------------------------------


def _set(key: str, value: Any) -> Callable[[Dict[str, Any]], None]:
    def fn(h: Dict[str, Any]) -> None:
        h[key] = value
    return fn


def _del(key: str) -> Callable[[Dict[str, Any]], None]:
    return lambda h: h.pop(key)


def _field(key: str, value: Any) -> Callable[[Dict[str, Any]], None]:
    def fn(h: Dict[str, Any]) -> None:
        h["fields"][key] = value
    return fn


def _del_field(key: str) -> Callable[[Dict[str, Any]], None]:
    return lambda h: h["fields"].pop(key)


def _entry(i: int, key: str, value: Any) -> Callable[[Dict[str, Any]], None]:
    def fn(h: Dict[str, Any]) -> None:
        h["arrays"][i][key] = value
    return fn


def _with_array(kind: str, name: str, data: np.ndarray, dtype: str | None = None) -> List[bytes]:
    """Replace (or add) one array with raw, consistent header entry + frame."""
    topic, header, arrays = parts(sample_frames(kind))
    names = [e["name"] for e in header["arrays"]]
    dtype = dtype or data.dtype.str
    entry = {"name": name, "dtype": dtype, "shape": list(data.shape)}
    raw = np.ascontiguousarray(data).tobytes()
    if name in names:
        i = names.index(name)
        header["arrays"][i], arrays[i] = entry, raw
    else:
        header["arrays"].append(entry)
        arrays.append(raw)
    return join(topic, header, arrays)


def _without_array(kind: str, name: str) -> List[bytes]:
    topic, header, arrays = parts(sample_frames(kind))
    i = [e["name"] for e in header["arrays"]].index(name)
    del header["arrays"][i], arrays[i]
    return join(topic, header, arrays)


def _cmd_frames() -> List[bytes]:
    return sample_frames("cmd")


def _tiny_header(obj: Any) -> List[bytes]:
    return [b"stop", msgpack.packb(obj)]


MALFORMED: List[Tuple[str, Callable[[], Any], str]] = [
    # framing
    ("no frames", lambda: [], "frame_count"),
    ("one frame", lambda: [b"cmd"], "frame_count"),
    ("not a list", lambda: b"cmd", "frame_count"),
    ("int frame", lambda: [b"cmd", 5], "frame_count"),
    ("str frame", lambda: ["cmd", "x"], "frame_count"),
    ("strided frame", lambda: [b"cmd", memoryview(_cmd_frames()[1] * 2)[::2]], "frame_count"),
    ("too many frames", lambda: _cmd_frames() + [b""] * MAX_ARRAYS, "oversize"),
    ("total too big", lambda: _cmd_frames() + [bytes(MAX_MESSAGE_BYTES)], "oversize"),
    ("header too big", lambda: [b"stop", bytes(MAX_HEADER_BYTES + 1)], "oversize"),
    ("too many array entries", lambda: mutate("stop", _set("arrays", [{}] * (MAX_ARRAYS + 1))), "oversize"),
    ("empty topic", lambda: [b""] + _cmd_frames()[1:], "topic"),
    ("topic with space", lambda: [b"c md"] + _cmd_frames()[1:], "topic"),
    ("non-ascii topic", lambda: [b"\xffcmd"] + _cmd_frames()[1:], "topic"),
    # header bytes
    ("header not msgpack", lambda: [b"cmd", b"\xc1"], "header_msgpack"),
    ("header truncated", lambda: [b"cmd", _cmd_frames()[1][:-3]] + _cmd_frames()[2:], "header_msgpack"),
    ("header trailing bytes", lambda: [b"cmd", _cmd_frames()[1] + b"\x00"] + _cmd_frames()[2:], "header_msgpack"),
    ("header empty", lambda: [b"cmd", b""], "header_msgpack"),
    ("header is a list", lambda: _tiny_header([1, 2]), "header_map"),
    ("header is an int", lambda: _tiny_header(7), "header_map"),
    # header keys
    ("v missing", lambda: mutate("cmd", _del("v")), "header_key"),
    ("v is str", lambda: mutate("cmd", _set("v", "1")), "header_key"),
    ("v is bool", lambda: mutate("cmd", _set("v", True)), "header_key"),
    ("kind missing", lambda: mutate("cmd", _del("kind")), "header_key"),
    ("kind is int", lambda: mutate("cmd", _set("kind", 3)), "header_key"),
    ("robot missing", lambda: mutate("cmd", _del("robot")), "header_key"),
    ("robot is None", lambda: mutate("cmd", _set("robot", None)), "header_key"),
    ("seq missing", lambda: mutate("cmd", _del("seq")), "header_key"),
    ("seq negative", lambda: mutate("cmd", _set("seq", -1)), "header_key"),
    ("seq float", lambda: mutate("cmd", _set("seq", 1.0)), "header_key"),
    ("seq too big", lambda: mutate("cmd", _set("seq", 2**64 - 1)), "header_key"),
    ("t_sim missing", lambda: mutate("cmd", _del("t_sim")), "header_key"),
    ("t_sim nan", lambda: mutate("cmd", _set("t_sim", math.nan)), "header_key"),
    ("t_wall str", lambda: mutate("cmd", _set("t_wall", "now")), "header_key"),
    ("t_wall inf", lambda: mutate("cmd", _set("t_wall", math.inf)), "header_key"),
    ("tick -2", lambda: mutate("cmd", _set("tick", -2)), "header_key"),
    ("tick bool", lambda: mutate("cmd", _set("tick", False)), "header_key"),
    ("arrays missing", lambda: mutate("cmd", _del("arrays")), "header_key"),
    ("arrays is map", lambda: mutate("cmd", _set("arrays", {})), "header_key"),
    ("fields missing", lambda: mutate("cmd", _del("fields")), "header_key"),
    ("fields is list", lambda: mutate("cmd", _set("fields", [])), "header_key"),
    ("version 2", lambda: mutate("cmd", _set("v", 2)), "version"),
    ("version 0", lambda: mutate("cmd", _set("v", 0)), "version"),
    ("unknown kind", lambda: mutate("cmd", _set("kind", "teleport")), "kind"),
    ("cmd without robot", lambda: mutate("cmd", _set("robot", "")), "robot"),
    ("robot with dot", lambda: mutate("turn", _set("robot", "a.b")), "robot"),
    ("obs for other robot", lambda: mutate("obs", _set("robot", "right")), "topic_mismatch"),
    ("cmd on state topic", lambda: [b"state"] + _cmd_frames()[1:], "topic_mismatch"),
    ("obs on bare obs topic", lambda: [b"obs"] + sample_frames("obs")[1:], "topic_mismatch"),
    # arrays: framing
    ("array frame missing", lambda: _cmd_frames()[:2], "array_count"),
    ("extra array frame", lambda: _cmd_frames() + [b""], "array_count"),
    ("entry not a map", lambda: mutate("cmd", _set("arrays", ["q_target"])), "array_entry"),
    ("entry name missing", lambda: mutate("cmd", lambda h: h["arrays"][0].pop("name")), "array_entry"),
    ("entry name with space", lambda: mutate("cmd", _entry(0, "name", "q target")), "array_entry"),
    ("entry shape not list", lambda: mutate("cmd", _entry(0, "shape", 7)), "array_entry"),
    ("entry shape negative", lambda: mutate("cmd", _entry(0, "shape", [-7])), "array_entry"),
    ("entry shape bool", lambda: mutate("cmd", _entry(0, "shape", [True])), "array_entry"),
    ("entry shape too many dims", lambda: mutate("cmd", _entry(0, "shape", [1] * 9)), "array_entry"),
    ("duplicate array names", lambda: mutate_dup(), "array_entry"),
    ("dtype big-endian", lambda: mutate("cmd", _entry(0, "dtype", ">f8")), "dtype"),
    ("dtype f2", lambda: mutate("cmd", _entry(0, "dtype", "<f2")), "dtype"),
    ("dtype object", lambda: mutate("cmd", _entry(0, "dtype", "|O")), "dtype"),
    ("dtype native", lambda: mutate("cmd", _entry(0, "dtype", "float64")), "dtype"),
    ("dtype missing", lambda: mutate("cmd", lambda h: h["arrays"][0].pop("dtype")), "dtype"),
    ("dtype int for q_target", lambda: _with_array("cmd", "q_target", np.zeros(7, "<i4")), "dtype"),
    ("dtype f4 in state", lambda: _with_array("state", "left/q", np.zeros(7, "<f4")), "dtype"),
    ("bool byte 2", lambda: _with_array("stop", "m", np.array([2], "u1"), dtype="|b1"), "dtype"),
    ("frame too short", lambda: _cmd_frames()[:2] + [_cmd_frames()[2][:-1]], "byte_length"),
    ("frame too long", lambda: _cmd_frames()[:2] + [_cmd_frames()[2] + b"\0" * 8], "byte_length"),
    ("shape claims more", lambda: mutate("cmd", _entry(0, "shape", [8])), "byte_length"),
    # arrays: schema
    ("ee_pose 6 long", lambda: _with_array("obs", "ee_pose", np.zeros(6)), "shape"),
    ("q_target 2-d", lambda: _with_array("cmd", "q_target", np.zeros((7, 1))), "shape"),
    ("link_pos x2", lambda: _with_array("state", "left/link_pos", np.zeros((8, 2))), "shape"),
    ("dq length != q length", lambda: _with_array("obs", "dq", np.zeros(6)), "shape"),
    ("state dq length != q", lambda: _with_array("state", "right/dq", np.zeros(6)), "shape"),
    ("cmd NaN", lambda: _with_array("cmd", "q_target", np.array([0, 0, np.nan, 0, 0, 0, 0.0])), "nonfinite"),
    ("cmd inf", lambda: _with_array("cmd", "q_target", np.array([0, 0, 0, 0, 0, 0, np.inf], "<f4")), "nonfinite"),
    ("state NaN", lambda: _with_array("state", "blocks", np.full((1, 7), np.nan)), "nonfinite"),
    ("cmd joint without q_target", lambda: _without_array("cmd", "q_target"), "missing_array"),
    ("state without right/dq", lambda: _without_array("state", "right/dq"), "missing_array"),
    ("obs without blocks", lambda: _without_array("obs", "blocks"), "missing_array"),
    ("cmd joint with ee_pose", lambda: _with_array("cmd", "ee_pose", np.zeros(7)), "unexpected_array"),
    ("state for unlisted robot", lambda: _with_array("state", "bob/q", np.zeros(7)), "unexpected_array"),
    # fields
    ("mode missing", lambda: mutate("cmd", _del_field("mode")), "field"),
    ("gripper str", lambda: mutate("cmd", _field("gripper", "0.5")), "field"),
    ("gripper NaN", lambda: mutate("cmd", _field("gripper", math.nan)), "field"),
    ("gripper bool", lambda: mutate("cmd", _field("gripper", True)), "field"),
    ("observed int", lambda: mutate("obs", _field("observed", 1)), "field"),
    ("pid float", lambda: mutate("hello", _field("pid", 1.5)), "field"),
    ("events item int", lambda: mutate("state", _field("events", [3])), "field"),
    ("robots is str", lambda: mutate("state", _field("robots", "left")), "field"),
    ("bytes field key", lambda: mutate("stop", lambda h: h["fields"].__setitem__(b"k", 1)), "field"),
    ("mode unknown", lambda: mutate("cmd", _field("mode", "cartesian")), "field_value"),
    ("gripper > 1", lambda: mutate("cmd", _field("gripper", 1.5)), "field_value"),
    ("gripper < 0", lambda: mutate("cmd", _field("gripper", -0.1)), "field_value"),
    ("turn unknown", lambda: mutate("cmd", _field("turn", "grab")), "field_value"),
    ("reply code unknown", lambda: mutate("reply", _field("code", "meh")), "field_value"),
    ("turn event unknown", lambda: mutate("turn", _field("event", "steal")), "field_value"),
    ("holder bad name", lambda: mutate("turn", _field("holder", "a/b")), "field_value"),
    ("episode negative", lambda: mutate("state", _field("episode", -1)), "field_value"),
    ("robots duplicated", lambda: mutate("state", _field("robots", ["left", "left"])), "field_value"),
    ("robots empty", lambda: mutate("state", _field("robots", [])), "field_value"),
    ("hello node empty", lambda: mutate("hello", _field("node", "")), "field_value"),
    ("ack below -1", lambda: mutate("reply", _field("ack", -2)), "field_value"),
]


def mutate_dup() -> List[bytes]:
    topic, header, arrays = parts(sample_frames("cmd"))
    header["arrays"].append(dict(header["arrays"][0]))
    return join(topic, header, arrays + [arrays[0]])


@pytest.mark.parametrize("case,build,reason", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_is_rejected_with_reason(case: str, build: Callable[[], Any], reason: str) -> None:
    frames = build()
    try:
        decode(frames)
    except MalformedMessage as err:
        assert err.reason == reason, f"{case}: {err}"
        assert isinstance(err, RobotMirrorError)
        assert "\n" not in str(err) and err.reason in str(err)
    else:
        pytest.fail(f"{case}: decoded without error")


def test_malformed_cases_cover_every_reason() -> None:
    assert {reason for _, _, reason in MALFORMED} == set(REASONS) - {"internal"}


def test_decode_of_non_sequence_types_never_raises_other_errors() -> None:
    for junk in (None, 3, "text", {"a": 1}, [None, None], [b"cmd", object()], (b"cmd",) * 3):
        assert reject_reason(junk) != "internal"


# --------------------------------------------------------------------------
# Drop counting, logging and the fuzz test
# --------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_drop_counter_rate_limits_logging(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    counter = DropCounter(clock=clock)
    bad_topic = [b"", b""]
    caplog.set_level(logging.WARNING, logger="robot_mirror.bus")
    for _ in range(5):
        assert decode_or_drop(bad_topic, counter, source="tcp://peer\nx") is None
    assert len(caplog.records) == 1  # first drop of a reason is always logged
    assert decode_or_drop([b"cmd"], counter) is None
    assert len(caplog.records) == 2  # another reason has its own budget
    clock.now += 1.0
    decode_or_drop(bad_topic, counter)
    assert len(caplog.records) == 3
    assert "5 since last report" in caplog.records[-1].getMessage()
    assert all("\n" not in r.getMessage() for r in caplog.records)
    assert "tcp://peer x" in caplog.records[0].getMessage()
    assert counter.total == 7
    assert counter.by_reason == {"topic": 6, "frame_count": 1}
    assert counter.as_dict() == {"total": 7, "by_reason": {"topic": 6, "frame_count": 1}}
    assert decode_or_drop(sample_frames("cmd"), counter) is not None
    assert counter.total == 7


_BAD_BY_TYPE: Dict[type, List[Any]] = {
    str: [None, 1, 2.5, True, [], {}, b"x"],
    int: [None, "1", 1.5, True, [], {}],
    float: [None, "1", True, [], {}, math.nan, math.inf],
    bool: [None, 0, 1, "true", [], {}],
    list: [None, "x", 1, {}, True],
}
_BAD_HEADER: Dict[str, List[Any]] = {
    "v": [None, "1", 1.0, 2, -1, True, 99],
    "kind": [None, 1, "", "bogus", [], {}],
    "robot": [None, 1, "a b", "x" * 40, "a.b", []],
    "seq": [None, -1, 1.5, "0", True, 2**64 - 1],
    "t_sim": [None, "0", math.nan, -math.inf, True, []],
    "t_wall": [None, "0", math.nan, math.inf, False, {}],
    "tick": [None, -2, 0.5, "1", True],
    "arrays": [None, {}, "x", 1, [1], [{"name": "q"}]],
    "fields": [None, [], "x", 1, {"mode": None}],
}


def _bad_inputs(rng: random.Random, n: int) -> List[Any]:
    """``n`` inputs that are all invalid by construction."""
    kinds = sorted(KINDS)
    valid = {k: sample_frames(k) for k in kinds}
    out: List[Any] = []
    for _ in range(n):
        kind = rng.choice(kinds)
        frames = list(valid[kind])
        how = rng.randrange(5)
        if how == 0:  # random bytes in random frame counts
            out.append([rng.randbytes(rng.randrange(0, 64)) for _ in range(rng.randrange(0, 6))])
        elif how == 1:  # a valid message with a frame removed or one added
            if rng.random() < 0.5:
                del frames[rng.randrange(len(frames))]
            else:
                frames.insert(rng.randrange(2, len(frames) + 1), rng.randbytes(rng.randrange(0, 16)))
            out.append(frames)
        elif how == 2:  # a valid message with one frame truncated
            i = rng.randrange(len(frames))
            frames[i] = frames[i][: rng.randrange(len(frames[i]))]
            out.append(frames)
        elif how == 3:  # a header key replaced by a bad value
            key = rng.choice(sorted(_BAD_HEADER))
            out.append(mutate(kind, _set(key, rng.choice(_BAD_HEADER[key]))))
        else:  # a declared field replaced by a value of the wrong type
            name, spec = rng.choice(sorted(KINDS[kind].fields.items()))
            out.append(mutate(kind, _field(name, rng.choice(_BAD_BY_TYPE[spec.types[0]]))))
    return out


def test_fuzz_decode_or_drop_never_raises() -> None:
    rng = random.Random(1234)
    bad = _bad_inputs(rng, 3000)
    good = [sample_frames(k) for k in sorted(KINDS)] * 20
    counter = DropCounter()
    start = time.perf_counter()
    decoded = [decode_or_drop(frames, counter, source="fuzz") for frames in bad + good]
    elapsed = time.perf_counter() - start
    assert decoded[: len(bad)] == [None] * len(bad)
    assert all(isinstance(m, Message) for m in decoded[len(bad):])
    assert counter.total == len(bad)
    assert "internal" not in counter.by_reason, counter.by_reason
    assert elapsed < 5.0


def test_fuzz_random_byte_flips_never_raise() -> None:
    """Flipped bytes may or may not leave a valid message; either way decode
    must answer with a Message or MalformedMessage, never another error."""
    rng = random.Random(99)
    counter = DropCounter()
    dropped = 0
    for _ in range(2000):
        frames = [bytearray(f) for f in sample_frames(rng.choice(sorted(KINDS)))]
        i = rng.randrange(len(frames))
        if frames[i]:
            for _ in range(rng.randrange(1, 4)):
                frames[i][rng.randrange(len(frames[i]))] = rng.randrange(256)
        dropped += decode_or_drop([bytes(f) for f in frames], counter) is None
    assert counter.total == dropped
    assert "internal" not in counter.by_reason, counter.by_reason


# --------------------------------------------------------------------------
# Over a real socket
# --------------------------------------------------------------------------


def test_over_real_zmq_socket() -> None:
    zmq = pytest.importorskip("zmq")
    topic, kw = samples()["state"]
    frames = encode(topic, "state", t_wall=1000.0, **kw)
    with zmq.Context() as ctx:
        pull = ctx.socket(zmq.PULL)
        push = ctx.socket(zmq.PUSH)
        try:
            for s in (pull, push):
                s.setsockopt(zmq.LINGER, 0)
            pull.setsockopt(zmq.RCVTIMEO, 5000)
            port = pull.bind_to_random_port("tcp://127.0.0.1")
            push.connect(f"tcp://127.0.0.1:{port}")
            push.send_multipart(frames)
            push.send_multipart(frames)
            copied = decode(pull.recv_multipart())
            zero_copy = decode(pull.recv_multipart(copy=False))
        finally:
            push.close(linger=0)
            pull.close(linger=0)
    for msg in (copied, zero_copy):
        assert (msg.topic, msg.kind, msg.seq, msg.t_sim, msg.t_wall, msg.tick) == ("state", "state", 17, 1.25, 1000.0, 75)
        assert msg.fields == kw["fields"]
        assert list(msg.arrays) == list(kw["arrays"])
        for name, arr in kw["arrays"].items():
            np.testing.assert_array_equal(msg.arrays[name], arr)


# --------------------------------------------------------------------------
# Schema registry and its documentation
# --------------------------------------------------------------------------


def test_registry_is_consistent() -> None:
    for spec in KINDS.values():
        assert spec.topic_for("left").replace(".left", "") == spec.name
        for arr in spec.arrays:
            assert set(arr.dtypes) <= set(ALLOWED_DTYPES)
            if arr.is_pattern:
                assert spec.robots_field in spec.fields
            if arr.when is not None:
                assert arr.when[1] in (spec.fields[arr.when[0]].choices or ())


def test_protocol_doc_mentions_everything() -> None:
    text = DOC.read_text(encoding="utf-8")
    words = set(REASONS) | set(REPLY_CODES) | set(ALLOWED_DTYPES)
    for spec in KINDS.values():
        words |= {spec.name, *spec.fields}
        words |= {f"<robot>/{a.suffix}" if a.is_pattern else a.name for a in spec.arrays}
        for f in spec.fields.values():
            words |= {str(c) for c in f.choices or () if c}
    missing = sorted(w for w in words if f"`{w}`" not in text)
    assert not missing, f"docs/protocol.md does not mention: {missing}"
    for section in ("Endpoints and sockets", "Sequence of a turn", "Heartbeats", "Lock-step vs real-time"):
        assert section in text
