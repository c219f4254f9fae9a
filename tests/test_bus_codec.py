"""Tests of the bus wire format (robot_mirror.bus.codec / schema).

Everything here is in-process and fast; only ``test_over_real_zmq_socket``
opens sockets (tcp on 127.0.0.1, random port, linger 0).
"""

from __future__ import annotations

import json
import dataclasses
import logging
import math
import random
import re
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
from robot_mirror.bus.wire import decode_episode, encode_episode
from robot_mirror.errors import RobotMirrorError

DOC = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"
ROBOTS = ("left", "right")


# --------------------------------------------------------------------------
# Sample messages, one per kind
# --------------------------------------------------------------------------


def _state_arrays(dof: int = 7, blocks: int = 3) -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays: Dict[str, np.ndarray] = {"blocks": rng.uniform(-1, 1, (blocks, 7))}
    for r in ROBOTS:
        arrays[f"{r}/q"] = rng.uniform(-3, 3, dof)
        arrays[f"{r}/dq"] = rng.uniform(-1, 1, dof)
        arrays[f"{r}/ee_pose"] = np.array([0.4, 0.1, 0.3, 0.0, 0.0, 0.0, 1.0])
        arrays[f"{r}/keypoints"] = rng.uniform(-1, 1, (5, 3))
    return arrays


def _state_fields() -> Dict[str, Any]:
    return {
        "robots": list(ROBOTS), "holder": "left", "episode": 2, "seed": 1236,
        "arms": {
            "left": {"holding": 0, "in_zone": True, "gripper": 0.8},
            "right": {"holding": -1, "in_zone": False, "gripper": 0.0},
        },
        "task": {
            "left": {"my_blocks": [True, False, True], "placed": [True, False, False],
                     "tower_count": 1, "tower_xy": [0.0, 0.05]},
            "right": {"my_blocks": [False, True, False], "placed": [True, False, False],
                      "tower_count": 1, "tower_xy": [0.0, 0.05]},
        },
        "events": [
            {"t": 1.25, "type": "grasp", "robot": "left", "block": 2},
            {"t": 1.25, "type": "turn_start", "robot": "left", "reason": "requested"},
            {"t": 1.25, "type": "tower_fell", "robot": "", "level": 0},
        ],
        "done": False,
    }


def _obs_arrays() -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {
        "q": rng.uniform(-3, 3, 7),
        "dq": rng.uniform(-1, 1, 7),
        "ee_pose": np.array([0.4, 0.1, 0.3, 0.0, 0.0, 0.0, 1.0]),
        "keypoints": rng.uniform(-1, 1, (5, 3)),
        "blocks": rng.uniform(-1, 1, (3, 7)),
        "seen_partner_ee_pose": np.array([0.9, 0.0, 0.3, 0.0, 0.0, 1.0, 0.0]),
        "seen_partner_keypoints": rng.uniform(-1, 1, (5, 3)),
        # task extras (not declared by the schema)
        "my_blocks": np.array([True, False, True]),
        "placed": np.array([True, False, False]),
        "tower_xy": np.array([0.0, 0.05]),
    }


def _obs_fields(observed: bool = True) -> Dict[str, Any]:
    return {
        "holder": "", "observed": observed, "episode": 2,
        "scalars": {"t": 1.25, "gripper": 1.0, "holding": -1, "in_zone": False, "partner_in_zone": True,
                    "my_turn": False, "seen_partner_gripper": 0.25, "tower_count": 1},
    }


def samples() -> Dict[str, Tuple[str, Dict[str, Any]]]:
    """kind -> (topic, encode kwargs) for one valid message of every kind."""
    return {
        "hello": ("hello", dict(fields={"node": "policy.left", "pid": 4242})),
        "heartbeat": ("heartbeat", dict(robot="left", fields={"node": "policy.left", "state": "running", "drops": 3})),
        "stop": ("stop", dict(fields={"reason": "episode budget reached"})),
        "state": ("state", dict(seq=17, t_sim=1.25, tick=75, fields=_state_fields(), arrays=_state_arrays())),
        "obs": ("obs.left", dict(
            robot="left", seq=5, t_sim=1.25, tick=75, fields=_obs_fields(), arrays=_obs_arrays(),
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
        "turn": ("turn", dict(seq=8, t_sim=1.25, tick=75, fields={
            "holder": "right", "event": "grant", "reason": "requested", "episode": 2,
            "events": [{"t": 1.2, "kind": "release", "robot": "left", "reason": "released"},
                       {"t": 1.25, "kind": "grant", "robot": "right", "reason": "requested"}],
            "next": "left",
        })),
        "turn_query": ("turn_query", dict(seq=18, t_sim=1.25, tick=75, fields={
            "episode": 2, "has_work": {"left": True, "right": True}, "release": ["left"],
            "request": ["right"], "last_heard": {"left": 1.2, "right": 0.0}, "holder": "left", "next": "right",
        })),
        "episode": ("episode", dict(seq=400, t_sim=30.0, fields={"index": 2, "last": False}, arrays={
            "summary": np.frombuffer(json.dumps({
                "index": 2, "seed": 1236, "success": True, "turns": 4, "turn_durations": [1.5, 2.25],
                "handoff_gaps": [], "zone_violations": 0, "min_arm_distance": 0.31, "real_time_factor": None,
                "blocks": 3, "blocks_stacked": 3,
                "bus": {"robots": {"left": {"commands": 120}}, "dropped_messages": {"total": 0, "by_reason": {}}},
            }).encode(), dtype=np.uint8)})),
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


def _assert_same_message(msg: Message, topic: str, kind: str, kw: Dict[str, Any]) -> None:
    assert (msg.topic, msg.kind, msg.robot) == (topic, kind, kw.get("robot", ""))
    assert (msg.seq, msg.t_sim, msg.t_wall, msg.tick) == (
        kw.get("seq", 0), kw.get("t_sim", 0.0), 1000.0, kw.get("tick", -1))
    assert msg.fields == kw["fields"]
    sent = kw.get("arrays", {})
    assert list(msg.arrays) == list(sent)
    for name, arr in sent.items():
        got = msg.arrays[name]
        assert got.dtype.str == np.asarray(arr).dtype.str and got.shape == np.shape(arr), name
        np.testing.assert_array_equal(got, arr)


# --------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------


def test_samples_cover_every_kind() -> None:
    assert set(samples()) == set(KINDS)
    assert {"turn_query", "episode"} <= set(KINDS)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_round_trip(kind: str) -> None:
    topic, kw = samples()[kind]
    msg = decode(encode(topic, kind, t_wall=1000.0, **kw))
    assert isinstance(msg, Message)
    _assert_same_message(msg, topic, kind, kw)
    assert all(not a.flags.writeable for a in msg.arrays.values())


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_samples_fill_every_declared_field_and_array(kind: str) -> None:
    """The samples exercise the whole schema: every field, every array
    (both cmd modes are covered by test_cmd_ee_mode)."""
    topic, kw = samples()[kind]
    spec = KINDS[kind]
    assert set(spec.fields) <= set(kw["fields"])
    names = set(kw.get("arrays", {}))
    for arr in spec.arrays:
        if arr.when is not None and kw["fields"][arr.when[0]] != arr.when[1]:
            continue
        expected = {f"{r}/{arr.suffix}" for r in kw["fields"][spec.robots_field]} if arr.is_pattern else {arr.name}
        assert expected <= names, arr.name


def test_map_and_list_of_map_fields_round_trip_exactly() -> None:
    """Map-typed fields (and arrays of maps) carry nested plain data through
    unchanged: nested maps, arrays, bool vs int, floats, nil."""
    msg = decode(sample_frames("state"))
    assert msg.fields["arms"]["left"] == {"holding": 0, "in_zone": True, "gripper": 0.8}
    assert type(msg.fields["arms"]["left"]["in_zone"]) is bool
    assert type(msg.fields["arms"]["right"]["holding"]) is int
    assert msg.fields["task"]["left"]["my_blocks"] == [True, False, True]
    assert msg.fields["events"][0] == {"t": 1.25, "type": "grasp", "robot": "left", "block": 2}
    assert msg.fields["done"] is False
    turn = decode(sample_frames("turn"))
    assert [e["kind"] for e in turn.fields["events"]] == ["release", "grant"]
    assert turn.fields["event"] == turn.fields["events"][-1]["kind"]
    query = decode(sample_frames("turn_query"))
    assert query.fields["has_work"] == {"left": True, "right": True}
    assert query.fields["last_heard"] == {"left": 1.2, "right": 0.0}
    assert type(query.fields["last_heard"]["right"]) is float
    episode = decode_episode(decode(sample_frames("episode")))
    assert episode["real_time_factor"] is None
    assert episode["bus"]["dropped_messages"] == {"total": 0, "by_reason": {}}


def test_empty_maps_and_lists_are_valid() -> None:
    """Nothing constrains the content of map fields, and event lists may be empty."""
    state_fields = {**_state_fields(), "arms": {}, "task": {}, "events": [], "done": True}
    msg = decode(encode("state", "state", fields=state_fields, arrays=_state_arrays()))
    assert (msg.fields["events"], msg.fields["task"], msg.fields["done"]) == ([], {}, True)
    query = {"episode": 0, "has_work": {}, "release": [], "request": [], "last_heard": {}, "holder": "", "next": ""}
    assert decode(encode("turn_query", "turn_query", fields=query)).fields == query
    turn = {"holder": "", "event": "none", "reason": "", "episode": 0, "events": [], "next": ""}
    assert decode(encode("turn", "turn", fields=turn)).fields == turn
    ep = {"index": 0, "last": True}
    assert decode(encode("episode", "episode", fields=ep, arrays={"summary": np.zeros(0, np.uint8)})).fields == ep
    obs_fields = {**_obs_fields(), "scalars": {}}
    assert decode(encode("obs.left", "obs", robot="left", fields=obs_fields, arrays=_obs_arrays())).fields["scalars"] == {}


def test_frame_layout() -> None:
    frames = sample_frames("cmd")
    assert frames[0] == b"cmd" and len(frames) == 3
    header = msgpack.unpackb(frames[1])
    assert set(header) == {"v", "kind", "robot", "seq", "t_sim", "t_wall", "tick", "arrays", "fields"}
    assert header["v"] == SCHEMA_VERSION
    assert header["arrays"] == [{"name": "q_target", "dtype": "<f8", "shape": [7]}]
    assert frames[2] == np.linspace(-1, 1, 7).astype("<f8").tobytes()
    assert all(isinstance(f, bytes) for f in frames)


def test_state_frame_layout() -> None:
    """Array frames follow the descriptors in order; per-robot arrays are
    named "<robot>/<suffix>"; keypoints are (5, 3) doubles."""
    topic, header, arrays = parts(sample_frames("state"))
    assert topic == b"state"
    names = [e["name"] for e in header["arrays"]]
    assert names == list(_state_arrays())
    entry = header["arrays"][names.index("left/keypoints")]
    assert entry == {"name": "left/keypoints", "dtype": "<f8", "shape": [5, 3]}
    assert len(arrays[names.index("left/keypoints")]) == 5 * 3 * 8
    assert set(header["fields"]) == set(KINDS["state"].fields)


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
    assert not msg.arrays["right/keypoints"].flags.writeable
    msg2 = decode([memoryview(f) for f in frames])
    np.testing.assert_array_equal(msg2.arrays["blocks"], msg.arrays["blocks"])
    np.testing.assert_array_equal(msg2.arrays["left/keypoints"], msg.arrays["left/keypoints"])
    assert msg2.fields == msg.fields


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


def test_encode_casts_state_keypoints_to_f8() -> None:
    """A declared <f8-only array given as float32 or a nested list is cast
    (same kind), and a transposed view is sent C-contiguous."""
    arrays = _state_arrays()
    arrays["left/keypoints"] = arrays["left/keypoints"].astype(np.float32)
    arrays["right/keypoints"] = np.asarray(arrays["right/keypoints"].T.copy()).T  # Fortran-ordered view
    arrays["blocks"] = arrays["blocks"].tolist()
    msg = decode(encode("state", "state", fields=_state_fields(), arrays=arrays))
    for name in ("left/keypoints", "right/keypoints", "blocks"):
        assert msg.arrays[name].dtype.str == "<f8"
        np.testing.assert_allclose(msg.arrays[name], np.asarray(arrays[name], float), rtol=1e-6)


def test_encode_accepts_numpy_scalars() -> None:
    msg = decode(encode("reply", "reply", robot="left", seq=np.int64(4), t_sim=np.float32(0.5), fields={
        "ok": np.bool_(True), "code": "ok", "message": "", "clamped": np.int32(0), "ack": np.int64(3)}))
    assert (msg.seq, msg.t_sim, msg.fields["ok"], msg.fields["ack"]) == (4, 0.5, True, 3)
    msg = decode(encode("episode", "episode", fields={"index": np.int64(1), "last": np.bool_(True)},
                        arrays={"summary": np.frombuffer(b"{}", np.uint8)}))
    assert (msg.fields["index"], msg.fields["last"]) == (1, True)
    msg = decode(encode("turn_query", "turn_query", fields={
        "episode": np.int32(0), "has_work": {}, "release": (np.str_("left"),), "request": [],
        "last_heard": {}, "holder": "", "next": ""}))
    assert msg.fields["release"] == ["left"]


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


def test_obs_task_arrays_are_extras() -> None:
    """Task arrays of an obs (bool my_blocks/placed, float tower_xy, ...)
    ride along with any allowed dtype and shape; only the six declared arrays
    are interpreted."""
    topic, kw = samples()["obs"]
    msg = decode(encode(topic, "obs", **kw))
    assert msg.arrays["my_blocks"].dtype.str == "|b1" and msg.arrays["my_blocks"].tolist() == [True, False, True]
    assert msg.arrays["placed"].dtype.str == "|b1"
    assert msg.arrays["tower_xy"].dtype.str == "<f8" and msg.arrays["tower_xy"].shape == (2,)
    kw["arrays"]["slots"] = np.arange(6, dtype="<i8").reshape(3, 2)
    kw["arrays"]["placed"] = np.array([True, False, False, True])  # not tied to the blocks dimension
    msg = decode(encode(topic, "obs", **kw))
    assert msg.arrays["slots"].dtype.str == "<i8" and msg.arrays["slots"].shape == (3, 2)
    assert msg.arrays["placed"].shape == (4,)
    without = {k: v for k, v in kw["arrays"].items() if k not in ("my_blocks", "placed", "tower_xy", "slots")}
    assert set(decode(encode(topic, "obs", robot="left", fields=kw["fields"], arrays=without)).arrays) == set(without)


def test_obs_not_observed_repeats_a_finite_view() -> None:
    """When the partner view was dropped the seen_partner_* arrays repeat the
    last view: still present, still finite (NaN is rejected, see MALFORMED)."""
    topic, kw = samples()["obs"]
    kw["fields"] = _obs_fields(observed=False)
    msg = decode(encode(topic, "obs", **kw))
    assert msg.fields["observed"] is False
    np.testing.assert_array_equal(msg.arrays["seen_partner_keypoints"], kw["arrays"]["seen_partner_keypoints"])
    kw["arrays"]["seen_partner_ee_pose"] = np.full(7, np.nan)
    with pytest.raises(ValueError, match="nonfinite"):
        encode(topic, "obs", **kw)


def test_zero_blocks_are_allowed() -> None:
    arrays = _state_arrays(blocks=0)
    assert decode(encode("state", "state", fields=_state_fields(), arrays=arrays)).arrays["blocks"].shape == (0, 7)
    topic, kw = samples()["obs"]
    kw["arrays"]["blocks"] = np.zeros((0, 7))
    assert decode(encode(topic, "obs", **kw)).arrays["blocks"].shape == (0, 7)


def test_state_dof_is_per_robot() -> None:
    """The "dof" symbol is scoped per robot: arms of different makes may have
    different joint counts in one state message, keypoints stay (5, 3)."""
    arrays = _state_arrays()
    arrays["right/q"], arrays["right/dq"] = np.zeros(6), np.zeros(6)
    msg = decode(encode("state", "state", fields=_state_fields(), arrays=arrays))
    assert (msg.arrays["left/q"].shape, msg.arrays["right/q"].shape) == ((7,), (6,))
    assert msg.arrays["right/keypoints"].shape == (5, 3)


def test_state_with_three_robots() -> None:
    fields = {**_state_fields(), "robots": ["left", "right", "third"]}
    arrays = _state_arrays()
    for suffix in ("q", "dq", "ee_pose", "keypoints"):
        arrays[f"third/{suffix}"] = arrays[f"left/{suffix}"]
    assert len(decode(encode("state", "state", fields=fields, arrays=arrays)).arrays) == 13
    del arrays["third/keypoints"]
    with pytest.raises(ValueError, match="third/keypoints"):
        encode("state", "state", fields=fields, arrays=arrays)


def test_removed_arrays_are_no_longer_interpreted() -> None:
    """<robot>/gripper and <robot>/link_pos (gripper is now in `arms`) are
    plain unknown arrays now: a message in the old layout lacks the required
    keypoints, and the old names alongside the new layout are passed through."""
    arrays = {k: v for k, v in _state_arrays().items() if not k.endswith("/keypoints")}
    arrays["left/gripper"], arrays["left/link_pos"] = np.array([0.25]), np.zeros((8, 3))
    with pytest.raises(ValueError, match="keypoints"):
        encode("state", "state", fields=_state_fields(), arrays=arrays)
    arrays.update({k: v for k, v in _state_arrays().items() if k.endswith("/keypoints")})
    arrays["left/gripper"] = np.zeros((2, 2))  # any shape: no longer declared
    msg = decode(encode("state", "state", fields=_state_fields(), arrays=arrays))
    assert msg.arrays["left/gripper"].shape == (2, 2)


def test_cmd_ee_mode() -> None:
    """ee_pose is a world-frame tool-pose target (f8 or f4)."""
    for dtype in ("<f8", "<f4"):
        msg = decode(encode("cmd", "cmd", robot="left", fields={"mode": "ee", "gripper": 0.0, "turn": "release"},
                            arrays={"ee_pose": np.array([0.3, 0.0, 0.2, 0, 0, 0, 1], dtype)}))
        assert list(msg.arrays) == ["ee_pose"] and msg.arrays["ee_pose"].dtype.str == dtype


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


def _state_with(fields: Dict[str, Any] | None = None, **arrays: Any) -> Callable[[], Any]:
    """An encode("state") call with some fields / arrays replaced ("__" in an
    array keyword stands for "/"; None removes the array)."""
    def call() -> Any:
        all_arrays: Dict[str, Any] = _state_arrays()
        for key, value in arrays.items():
            name = key.replace("__", "/")
            if value is None:
                all_arrays.pop(name)
            else:
                all_arrays[name] = value
        return encode("state", "state", fields={**_state_fields(), **(fields or {})}, arrays=all_arrays)
    return call


def _obs_with(fields: Dict[str, Any] | None = None, **arrays: Any) -> Callable[[], Any]:
    def call() -> Any:
        all_arrays: Dict[str, Any] = _obs_arrays()
        for name, value in arrays.items():
            if value is None:
                all_arrays.pop(name)
            else:
                all_arrays[name] = value
        return encode("obs.left", "obs", robot="left", fields={**_obs_fields(), **(fields or {})}, arrays=all_arrays)
    return call


def _fields_of(kind: str, **changes: Any) -> Callable[[], Any]:
    def call() -> Any:
        topic, kw = samples()[kind]
        kw["fields"] = {**kw["fields"], **changes}
        return encode(topic, kind, **kw)
    return call


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
    # the new schema
    _state_with(left__keypoints=np.zeros((4, 3))),
    _state_with(left__keypoints=np.zeros(15)),
    _state_with(right__keypoints=None),
    _state_with(left__keypoints=np.full((5, 3), np.inf)),
    _state_with(left__keypoints=np.zeros((5, 3), complex)),  # not a same-kind cast to <f8
    _state_with(bob__keypoints=np.zeros((5, 3))),
    _state_with({"arms": []}),
    _state_with({"task": None}),
    _state_with({"events": ["grasp:left:block0"]}),  # the old tag format
    _state_with({"done": 0}),
    _state_with({"seed": -1}),
    _state_with({"arms": {"left": {"gripper": object()}}}),  # not msgpack-able
    _obs_with(seen_partner_keypoints=np.zeros((8, 3))),
    _obs_with(seen_partner_ee_pose=np.full(7, np.nan)),
    _obs_with(seen_partner_keypoints=None),
    _obs_with(partner_ee_pose=np.zeros(7), seen_partner_ee_pose=None),  # the old name
    _obs_with({"scalars": [1.0]}),
    _obs_with({"episode": -1}),
    _fields_of("turn", events=[("grant",)]),
    _fields_of("turn", next="a.b"),
    _fields_of("turn_query", has_work=[["left", True]]),
    _fields_of("turn_query", release=["left", 3]),
    _fields_of("turn_query", request=["no/slash"]),
    _fields_of("turn_query", last_heard=None),
    _fields_of("episode", last=None),
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


def _old_layout(kind: str) -> List[bytes]:
    """A message laid out as before the schema change (state: gripper and
    link_pos instead of keypoints; obs: partner_* instead of seen_partner_*)."""
    topic, header, arrays = parts(sample_frames(kind))
    rename = {"seen_partner_ee_pose": "partner_ee_pose", "seen_partner_keypoints": "partner_link_pos",
              "left/keypoints": "left/link_pos", "right/keypoints": "right/link_pos"}
    for entry in header["arrays"]:
        entry["name"] = rename.get(entry["name"], entry["name"])
    return join(topic, header, arrays)


def _cmd_frames() -> List[bytes]:
    return sample_frames("cmd")


def _tiny_header(obj: Any) -> List[bytes]:
    return [b"stop", msgpack.packb(obj)]


def _event_item(i: int, item: Any) -> Callable[[Dict[str, Any]], None]:
    def fn(h: Dict[str, Any]) -> None:
        h["fields"]["events"][i] = item
    return fn


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
    ("state header too big", lambda: mutate("state", _field("task", {"left": {"pad": "x" * MAX_HEADER_BYTES}})),
     "oversize"),
    ("empty topic", lambda: [b""] + _cmd_frames()[1:], "topic"),
    ("topic with space", lambda: [b"c md"] + _cmd_frames()[1:], "topic"),
    ("non-ascii topic", lambda: [b"\xffcmd"] + _cmd_frames()[1:], "topic"),
    # header bytes
    ("header not msgpack", lambda: [b"cmd", b"\xc1"], "header_msgpack"),
    ("header truncated", lambda: [b"cmd", _cmd_frames()[1][:-3]] + _cmd_frames()[2:], "header_msgpack"),
    ("header trailing bytes", lambda: [b"cmd", _cmd_frames()[1] + b"\x00"] + _cmd_frames()[2:], "header_msgpack"),
    ("header empty", lambda: [b"cmd", b""], "header_msgpack"),
    ("int key inside a map field", lambda: mutate("episode", _field("summary", {1: "x"})), "header_msgpack"),
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
    ("turn_query t_sim inf", lambda: mutate("turn_query", _set("t_sim", math.inf)), "header_key"),
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
    ("kind with wrong case", lambda: mutate("episode", _set("kind", "Episode")), "kind"),
    ("cmd without robot", lambda: mutate("cmd", _set("robot", "")), "robot"),
    ("obs without robot", lambda: mutate("obs", _set("robot", "")), "robot"),
    ("robot with dot", lambda: mutate("turn", _set("robot", "a.b")), "robot"),
    ("turn_query robot with slash", lambda: mutate("turn_query", _set("robot", "a/b")), "robot"),
    ("obs for other robot", lambda: mutate("obs", _set("robot", "right")), "topic_mismatch"),
    ("cmd on state topic", lambda: [b"state"] + _cmd_frames()[1:], "topic_mismatch"),
    ("obs on bare obs topic", lambda: [b"obs"] + sample_frames("obs")[1:], "topic_mismatch"),
    ("turn_query on turn topic", lambda: [b"turn"] + sample_frames("turn_query")[1:], "topic_mismatch"),
    ("turn on turn_query topic", lambda: [b"turn_query"] + sample_frames("turn")[1:], "topic_mismatch"),
    ("episode on per-robot topic", lambda: [b"episode.left"] + sample_frames("episode")[1:], "topic_mismatch"),
    # arrays: framing
    ("array frame missing", lambda: _cmd_frames()[:2], "array_count"),
    ("extra array frame", lambda: _cmd_frames() + [b""], "array_count"),
    ("state frame missing", lambda: sample_frames("state")[:-1], "array_count"),
    ("array frame on turn_query", lambda: sample_frames("turn_query") + [b"\0" * 8], "array_count"),
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
    ("dtype f4 for state keypoints", lambda: _with_array("state", "left/keypoints", np.zeros((5, 3), "<f4")),
     "dtype"),
    ("dtype f4 in obs", lambda: _with_array("obs", "seen_partner_ee_pose", np.zeros(7, "<f4")), "dtype"),
    ("dtype bool for obs blocks", lambda: _with_array("obs", "blocks", np.zeros((3, 7), "|b1")), "dtype"),
    ("bool byte 2", lambda: _with_array("stop", "m", np.array([2], "u1"), dtype="|b1"), "dtype"),
    ("obs my_blocks bool byte 2", lambda: _with_array("obs", "my_blocks", np.array([1, 2, 0], "u1"), dtype="|b1"),
     "dtype"),
    ("frame too short", lambda: _cmd_frames()[:2] + [_cmd_frames()[2][:-1]], "byte_length"),
    ("frame too long", lambda: _cmd_frames()[:2] + [_cmd_frames()[2] + b"\0" * 8], "byte_length"),
    ("shape claims more", lambda: mutate("cmd", _entry(0, "shape", [8])), "byte_length"),
    ("keypoints frame short", lambda: mutate("state", lambda h: [
        e.__setitem__("shape", [6, 3]) for e in h["arrays"] if e["name"] == "left/keypoints"]), "byte_length"),
    # arrays: schema
    ("ee_pose 6 long", lambda: _with_array("obs", "ee_pose", np.zeros(6)), "shape"),
    ("q_target 2-d", lambda: _with_array("cmd", "q_target", np.zeros((7, 1))), "shape"),
    ("cmd ee_pose 8 long", lambda: mutate_cmd_ee(np.zeros(8)), "shape"),
    ("state keypoints 4x3", lambda: _with_array("state", "left/keypoints", np.zeros((4, 3))), "shape"),
    ("state keypoints 5x2", lambda: _with_array("state", "right/keypoints", np.zeros((5, 2))), "shape"),
    ("state keypoints flat", lambda: _with_array("state", "left/keypoints", np.zeros(15)), "shape"),
    ("state keypoints 3-d", lambda: _with_array("state", "left/keypoints", np.zeros((1, 5, 3))), "shape"),
    ("state ee_pose 2-d", lambda: _with_array("state", "left/ee_pose", np.zeros((1, 7))), "shape"),
    ("state blocks x6", lambda: _with_array("state", "blocks", np.zeros((3, 6))), "shape"),
    ("obs seen keypoints 8x3", lambda: _with_array("obs", "seen_partner_keypoints", np.zeros((8, 3))), "shape"),
    ("obs seen keypoints 5x2", lambda: _with_array("obs", "seen_partner_keypoints", np.zeros((5, 2))), "shape"),
    ("obs seen ee_pose 3 long", lambda: _with_array("obs", "seen_partner_ee_pose", np.zeros(3)), "shape"),
    ("obs blocks flat", lambda: _with_array("obs", "blocks", np.zeros(21)), "shape"),
    ("dq length != q length", lambda: _with_array("obs", "dq", np.zeros(6)), "shape"),
    ("state dq length != q", lambda: _with_array("state", "right/dq", np.zeros(6)), "shape"),
    ("cmd NaN", lambda: _with_array("cmd", "q_target", np.array([0, 0, np.nan, 0, 0, 0, 0.0])), "nonfinite"),
    ("cmd inf", lambda: _with_array("cmd", "q_target", np.array([0, 0, 0, 0, 0, 0, np.inf], "<f4")), "nonfinite"),
    ("cmd ee_pose NaN", lambda: mutate_cmd_ee(np.array([0, 0, 0, 0, 0, 0, np.nan])), "nonfinite"),
    ("state NaN", lambda: _with_array("state", "blocks", np.full((1, 7), np.nan)), "nonfinite"),
    ("state keypoints NaN", lambda: _with_array("state", "left/keypoints", _nan_at((5, 3), 7)), "nonfinite"),
    ("state ee_pose -inf", lambda: _with_array("state", "right/ee_pose", _nan_at((7,), 6, -np.inf)), "nonfinite"),
    ("obs seen ee_pose NaN", lambda: _with_array("obs", "seen_partner_ee_pose", np.full(7, np.nan)), "nonfinite"),
    ("obs seen keypoints inf", lambda: _with_array("obs", "seen_partner_keypoints", _nan_at((5, 3), 0, np.inf)),
     "nonfinite"),
    ("obs own q NaN", lambda: _with_array("obs", "q", _nan_at((7,), 3)), "nonfinite"),
    ("cmd joint without q_target", lambda: _without_array("cmd", "q_target"), "missing_array"),
    ("state without right/dq", lambda: _without_array("state", "right/dq"), "missing_array"),
    ("state without left/keypoints", lambda: _without_array("state", "left/keypoints"), "missing_array"),
    ("state without blocks", lambda: _without_array("state", "blocks"), "missing_array"),
    ("state in the old layout", lambda: _old_layout("state"), "missing_array"),
    ("obs without blocks", lambda: _without_array("obs", "blocks"), "missing_array"),
    ("obs without seen keypoints", lambda: _without_array("obs", "seen_partner_keypoints"), "missing_array"),
    ("obs without seen ee_pose", lambda: _without_array("obs", "seen_partner_ee_pose"), "missing_array"),
    ("obs in the old layout", lambda: _old_layout("obs"), "missing_array"),
    ("cmd joint with ee_pose", lambda: _with_array("cmd", "ee_pose", np.zeros(7)), "unexpected_array"),
    ("state for unlisted robot", lambda: _with_array("state", "bob/q", np.zeros(7)), "unexpected_array"),
    ("state keypoints for unlisted robot", lambda: _with_array("state", "bob/keypoints", np.zeros((5, 3))),
     "unexpected_array"),
    ("state robot dropped from robots", lambda: mutate("state", _field("robots", ["left"])), "unexpected_array"),
    # fields
    ("mode missing", lambda: mutate("cmd", _del_field("mode")), "field"),
    ("gripper str", lambda: mutate("cmd", _field("gripper", "0.5")), "field"),
    ("gripper NaN", lambda: mutate("cmd", _field("gripper", math.nan)), "field"),
    ("gripper bool", lambda: mutate("cmd", _field("gripper", True)), "field"),
    ("observed int", lambda: mutate("obs", _field("observed", 1)), "field"),
    ("pid float", lambda: mutate("hello", _field("pid", 1.5)), "field"),
    ("robots is str", lambda: mutate("state", _field("robots", "left")), "field"),
    ("robots item int", lambda: mutate("state", _field("robots", ["left", 2])), "field"),
    ("bytes field key", lambda: mutate("stop", lambda h: h["fields"].__setitem__(b"k", 1)), "field"),
    ("state seed missing", lambda: mutate("state", _del_field("seed")), "field"),
    ("state seed float", lambda: mutate("state", _field("seed", 1.0)), "field"),
    ("state arms missing", lambda: mutate("state", _del_field("arms")), "field"),
    ("state arms is list", lambda: mutate("state", _field("arms", [{"holding": 0}])), "field"),
    ("state arms is nil", lambda: mutate("state", _field("arms", None)), "field"),
    ("state task is str", lambda: mutate("state", _field("task", "tower")), "field"),
    ("state task missing", lambda: mutate("state", _del_field("task")), "field"),
    ("state events is map", lambda: mutate("state", _field("events", {"t": 0.0})), "field"),
    ("state events item str (old tags)", lambda: mutate("state", _field("events", ["grasp:left:block0"])), "field"),
    ("state events item int", lambda: mutate("state", _field("events", [3])), "field"),
    ("state events item list", lambda: mutate("state", _event_item(1, ["t", 0.0])), "field"),
    ("state events item nil", lambda: mutate("state", _event_item(2, None)), "field"),
    ("state done int", lambda: mutate("state", _field("done", 1)), "field"),
    ("state done missing", lambda: mutate("state", _del_field("done")), "field"),
    ("obs episode missing", lambda: mutate("obs", _del_field("episode")), "field"),
    ("obs episode bool", lambda: mutate("obs", _field("episode", False)), "field"),
    ("obs scalars missing", lambda: mutate("obs", _del_field("scalars")), "field"),
    ("obs scalars is list", lambda: mutate("obs", _field("scalars", [["t", 1.0]])), "field"),
    ("obs scalars is float", lambda: mutate("obs", _field("scalars", 1.25)), "field"),
    ("turn episode missing", lambda: mutate("turn", _del_field("episode")), "field"),
    ("turn events is map", lambda: mutate("turn", _field("events", {"kind": "grant"})), "field"),
    ("turn events item str", lambda: mutate("turn", _event_item(0, "grant")), "field"),
    ("turn events item bool", lambda: mutate("turn", _event_item(1, True)), "field"),
    ("turn next missing", lambda: mutate("turn", _del_field("next")), "field"),
    ("turn next nil", lambda: mutate("turn", _field("next", None)), "field"),
    ("turn_query has_work missing", lambda: mutate("turn_query", _del_field("has_work")), "field"),
    ("turn_query has_work is list", lambda: mutate("turn_query", _field("has_work", ["left"])), "field"),
    ("turn_query has_work is bool", lambda: mutate("turn_query", _field("has_work", True)), "field"),
    ("turn_query last_heard is float", lambda: mutate("turn_query", _field("last_heard", 1.2)), "field"),
    ("turn_query last_heard is nil", lambda: mutate("turn_query", _field("last_heard", None)), "field"),
    ("turn_query release is str", lambda: mutate("turn_query", _field("release", "left")), "field"),
    ("turn_query request item int", lambda: mutate("turn_query", _field("request", [1])), "field"),
    ("turn_query request item map", lambda: mutate("turn_query", _field("request", [{"robot": "left"}])), "field"),
    ("turn_query episode str", lambda: mutate("turn_query", _field("episode", "2")), "field"),
    ("turn_query holder missing", lambda: mutate("turn_query", _del_field("holder")), "field"),
    ("episode index missing", lambda: mutate("episode", _del_field("index")), "field"),
    ("episode index bool", lambda: mutate("episode", _field("index", True)), "field"),
    ("episode last int", lambda: mutate("episode", _field("last", 0)), "field"),
    ("episode summary array renamed", lambda: mutate("episode", lambda h: h["arrays"][0].update(name="x")),
     "missing_array"),
    ("episode last missing", lambda: mutate("episode", _del_field("last")), "field"),
    ("turn reason int", lambda: mutate("turn", _field("reason", 0)), "field"),
    ("reply ok int", lambda: mutate("reply", _field("ok", 1)), "field"),
    ("reply message int", lambda: mutate("reply", _field("message", 5)), "field"),
    ("heartbeat state list", lambda: mutate("heartbeat", _field("state", ["running"])), "field"),
    ("heartbeat drops float", lambda: mutate("heartbeat", _field("drops", 3.0)), "field"),
    ("heartbeat drops missing", lambda: mutate("heartbeat", _del_field("drops")), "field"),
    ("stop reason nil", lambda: mutate("stop", _field("reason", None)), "field"),
    ("mode unknown", lambda: mutate("cmd", _field("mode", "cartesian")), "field_value"),
    ("gripper > 1", lambda: mutate("cmd", _field("gripper", 1.5)), "field_value"),
    ("gripper < 0", lambda: mutate("cmd", _field("gripper", -0.1)), "field_value"),
    ("turn unknown", lambda: mutate("cmd", _field("turn", "grab")), "field_value"),
    ("reply code unknown", lambda: mutate("reply", _field("code", "meh")), "field_value"),
    ("turn event unknown", lambda: mutate("turn", _field("event", "steal")), "field_value"),
    ("holder bad name", lambda: mutate("turn", _field("holder", "a/b")), "field_value"),
    ("state holder too long", lambda: mutate("state", _field("holder", "x" * 33)), "field_value"),
    ("obs holder with dot", lambda: mutate("obs", _field("holder", "obs.left")), "field_value"),
    ("episode negative", lambda: mutate("state", _field("episode", -1)), "field_value"),
    ("state seed negative", lambda: mutate("state", _field("seed", -5)), "field_value"),
    ("obs episode negative", lambda: mutate("obs", _field("episode", -1)), "field_value"),
    ("turn episode negative", lambda: mutate("turn", _field("episode", -3)), "field_value"),
    ("turn next bad name", lambda: mutate("turn", _field("next", "left right")), "field_value"),
    ("turn_query episode negative", lambda: mutate("turn_query", _field("episode", -1)), "field_value"),
    ("turn_query release item empty", lambda: mutate("turn_query", _field("release", [""])), "field_value"),
    ("turn_query release item bad name", lambda: mutate("turn_query", _field("release", ["a.b"])), "field_value"),
    ("turn_query request item too long", lambda: mutate("turn_query", _field("request", ["r" * 33])),
     "field_value"),
    ("turn_query holder bad name", lambda: mutate("turn_query", _field("holder", "left/")), "field_value"),
    ("turn_query next bad name", lambda: mutate("turn_query", _field("next", "ü")), "field_value"),
    ("episode index negative", lambda: mutate("episode", _field("index", -1)), "field_value"),
    ("robots duplicated", lambda: mutate("state", _field("robots", ["left", "left"])), "field_value"),
    ("robots empty", lambda: mutate("state", _field("robots", [])), "field_value"),
    ("robots item bad name", lambda: mutate("state", _field("robots", ["left", "ri.ght"])), "field_value"),
    ("hello node empty", lambda: mutate("hello", _field("node", "")), "field_value"),
    ("heartbeat node too long", lambda: mutate("heartbeat", _field("node", "n" * 65)), "field_value"),
    ("heartbeat drops negative", lambda: mutate("heartbeat", _field("drops", -1)), "field_value"),
    ("ack below -1", lambda: mutate("reply", _field("ack", -2)), "field_value"),
    ("reply clamped negative", lambda: mutate("reply", _field("clamped", -1)), "field_value"),
]


def _nan_at(shape: Tuple[int, ...], flat_index: int, value: float = np.nan) -> np.ndarray:
    arr = np.zeros(shape)
    arr.flat[flat_index] = value
    return arr


def mutate_dup() -> List[bytes]:
    topic, header, arrays = parts(sample_frames("cmd"))
    header["arrays"].append(dict(header["arrays"][0]))
    return join(topic, header, arrays + [arrays[0]])


def mutate_cmd_ee(pose: np.ndarray) -> List[bytes]:
    """A valid ee-mode cmd whose ee_pose frame is replaced by ``pose``."""
    topic, header, _ = parts(encode("cmd", "cmd", robot="left", fields={**CMD_FIELDS, "mode": "ee"},
                                    arrays={"ee_pose": np.zeros(7)}))
    header["arrays"] = [{"name": "ee_pose", "dtype": "<f8", "shape": list(pose.shape)}]
    return join(topic, header, [pose.astype("<f8").tobytes()])


@pytest.mark.parametrize("case,build,reason", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_is_rejected_with_reason(case: str, build: Callable[[], Any], reason: str) -> None:
    frames = build()
    try:
        decode(frames)
    except MalformedMessage as err:
        assert err.reason == reason, f"{case}: {err}"
        assert isinstance(err, RobotMirrorError)
        assert "\n" not in str(err) and err.reason in str(err)
        assert len(str(err)) < 400, f"{case}: error line too long"
    else:
        pytest.fail(f"{case}: decoded without error")


def test_malformed_cases_cover_every_reason() -> None:
    assert {reason for _, _, reason in MALFORMED} == set(REASONS) - {"internal"}
    assert len({case for case, _, _ in MALFORMED}) == len(MALFORMED), "duplicate case names"


def test_malformed_cases_cover_every_kind_field_and_array() -> None:
    """Every declared field of every kind, and every declared array, has at
    least one malformed case that names it (keeps the table in step with
    the schema when fields are added)."""
    text = " ".join(case for case, _, _ in MALFORMED)
    missing = []
    for spec in KINDS.values():
        if spec.name not in text:
            missing.append(spec.name)
    for spec in KINDS.values():
        for name in spec.fields:
            if name not in text:
                missing.append(f"{spec.name}.{name}")
        for arr in spec.arrays:
            if (arr.suffix if arr.is_pattern else arr.name).replace("seen_partner_", "seen ") not in text:
                missing.append(f"{spec.name}/{arr.name}")
    assert not missing, missing


def test_decode_of_non_sequence_types_never_raises_other_errors() -> None:
    for junk in (None, 3, "text", {"a": 1}, [None, None], [b"cmd", object()], (b"cmd",) * 3):
        assert reject_reason(junk) != "internal"


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # see the report on _all_finite
def test_huge_finite_values_are_not_mistaken_for_nonfinite() -> None:
    """The finiteness check sums first; an overflowing sum of finite values
    must fall back to the exact test and pass."""
    arrays = _obs_arrays()
    arrays["q"] = np.full(7, 1e308)
    arrays["seen_partner_keypoints"] = np.full((5, 3), -1e308)
    msg = decode(encode("obs.left", "obs", robot="left", fields=_obs_fields(), arrays=arrays))
    assert np.isfinite(msg.arrays["q"]).all()


# --------------------------------------------------------------------------
# Contents of map-typed fields are checked too (string keys, finite floats,
# plain values, bounded depth), and encode converts numpy values inside them.
# --------------------------------------------------------------------------


def _episode_with_summary(summary: Any) -> List[bytes]:
    """(The episode summary now travels as a JSON frame; the state's ``task``
    map carries the same nested content.)"""
    return mutate("state", _field("task", summary))


@pytest.mark.parametrize("summary", [
    {b"seed": 1},                      # bin key: the doc says every key at any depth is a str
    {"real_time_factor": math.nan},    # the doc says floats at any depth are finite
    {"turn_durations": [math.inf]},
    {"video": b"\x00\x01"},            # bin value
    {"x": msgpack.ExtType(5, b"ab")},  # ext value
], ids=["bin key", "nan", "inf in list", "bin value", "ext value"])
def test_nested_content_of_map_fields_is_validated(summary: Any) -> None:
    assert reject_reason(_episode_with_summary(summary)) == "field"


def test_encode_accepts_numpy_scalars_inside_map_fields() -> None:
    fields = {**_state_fields(), "arms": {"left": {"holding": np.int64(-1), "in_zone": np.bool_(False),
                                                   "gripper": np.float32(0.5)}}}
    msg = decode(encode("state", "state", fields=fields, arrays=_state_arrays()))
    assert msg.fields["arms"]["left"] == {"holding": -1, "in_zone": False, "gripper": 0.5}


def _deep(depth: int) -> bytes:
    """msgpack bytes of ``depth`` nested one-element arrays around "x"."""
    return b"\x91" * depth + b"\xa1x"


def test_deeply_nested_field_value_is_not_an_internal_error() -> None:
    """msgpack accepts ~1000 levels of nesting; describing such a value in the
    error message must not hit Python's recursion limit."""
    topic, header, _ = parts(sample_frames("stop"))
    header["fields"] = {}
    head = msgpack.packb(header, use_bin_type=True)
    # header map with fields = {"reason": [[[...["x"]...]]]}: patch the empty fields map (0x80) at the end
    assert head.endswith(b"\xa6fields\x80")
    frames = [topic, head[:-1] + b"\x81\xa6reason" + _deep(1000)]
    assert reject_reason(frames) == "field"


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
    for kind in sorted(KINDS):
        assert decode_or_drop(sample_frames(kind), counter) is not None
    assert counter.total == 7


def test_drop_counter_logs_one_short_line_for_a_hostile_map_field(caplog: pytest.LogCaptureFixture) -> None:
    """A huge non-map value in a map field is described in a bounded line."""
    counter = DropCounter()
    caplog.set_level(logging.WARNING, logger="robot_mirror.bus")
    frames = mutate("turn_query", _field("has_work", ["left\nright"] * 5000))
    assert decode_or_drop(frames, counter, source="fuzz") is None
    assert counter.by_reason == {"field": 1}
    (record,) = caplog.records
    assert "\n" not in record.getMessage() and len(record.getMessage()) < 400


_BAD_BY_TYPE: Dict[type, List[Any]] = {
    str: [None, 1, 2.5, True, [], {}, b"x"],
    int: [None, "1", 1.5, True, [], {}],
    float: [None, "1", True, [], {}, math.nan, math.inf],
    bool: [None, 0, 1, "true", [], {}],
    list: [None, "x", 1, {}, True, b"[]"],
    dict: [None, "x", 1, 2.5, [], [["k", 1]], True, b"{}"],
}
#: Bad items for array-typed fields, by their item type.
_BAD_ITEMS: Dict[type, List[Any]] = {
    str: [None, 1, True, [], {}, b"left", "", "a.b", "a/b", "x" * 33],  # all str items here are robot names
    dict: [None, 1, "grant", [], True, ["t", 0.0], b"\x80"],
}
_BAD_HEADER: Dict[str, List[Any]] = {
    "v": [None, "1", 1.0, 2, -1, True, 99],
    "kind": [None, 1, "", "bogus", [], {}, "turn-query", "Episode"],
    "robot": [None, 1, "a b", "x" * 40, "a.b", []],
    "seq": [None, -1, 1.5, "0", True, 2**64 - 1],
    "t_sim": [None, "0", math.nan, -math.inf, True, []],
    "t_wall": [None, "0", math.nan, math.inf, False, {}],
    "tick": [None, -2, 0.5, "1", True],
    "arrays": [None, {}, "x", 1, [1], [{"name": "q"}]],
    "fields": [None, [], "x", 1, {"mode": None}],
}


def _list_fields(kind: str) -> List[Tuple[str, Any]]:
    return [(n, f) for n, f in sorted(KINDS[kind].fields.items()) if f.items is not None]


def _bad_inputs(rng: random.Random, n: int) -> List[Any]:
    """``n`` inputs that are all invalid by construction."""
    kinds = sorted(KINDS)
    valid = {k: sample_frames(k) for k in kinds}
    with_lists = [k for k in kinds if _list_fields(k)]
    with_arrays = [k for k in kinds if KINDS[k].arrays and k not in ("cmd", "episode")]  # episode: one byte frame
    out: List[Any] = []
    for _ in range(n):
        kind = rng.choice(kinds)
        frames = list(valid[kind])
        how = rng.randrange(7)
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
        elif how == 4:  # a declared field replaced by a value of the wrong type
            name, spec = rng.choice(sorted(KINDS[kind].fields.items()))
            out.append(mutate(kind, _field(name, rng.choice(_BAD_BY_TYPE[spec.types[0]]))))
        elif how == 5:  # an item of an array-typed field (robots, events, release, ...) of the wrong type
            kind = rng.choice(with_lists)
            name, spec = rng.choice(_list_fields(kind))
            bad = rng.choice(_BAD_ITEMS[spec.items[0]])

            def put(h: Dict[str, Any], name: str = name, bad: Any = bad) -> None:
                items = h["fields"][name]
                items.insert(rng.randrange(len(items) + 1), bad)
            out.append(mutate(kind, put))
        else:  # a declared array with a non-finite value, a wrong shape or removed
            kind = rng.choice(with_arrays)
            topic, header, arrays = parts(valid[kind])
            declared = [i for i, e in enumerate(header["arrays"])
                        if e["name"] not in ("my_blocks", "placed", "tower_xy") and e["dtype"] == "<f8"]
            i = rng.choice(declared)
            what = rng.randrange(3)
            if what == 0:
                data = np.frombuffer(arrays[i], "<f8").copy()
                if data.size == 0:
                    what = 2
                else:
                    data[rng.randrange(data.size)] = rng.choice([np.nan, np.inf, -np.inf])
                    arrays[i] = data.tobytes()
            if what == 1:  # (the blocks count itself is free, so grow a pose instead)
                shape = header["arrays"][i]["shape"]
                shape[-1 if header["arrays"][i]["name"] == "blocks" else rng.randrange(len(shape))] += 1
                header["arrays"][i]["shape"] = shape
                arrays[i] = arrays[i] + bytes(8 * int(np.prod(shape)) - len(arrays[i]))
            if what == 2:
                del header["arrays"][i], arrays[i]
            out.append(join(topic, header, arrays))
    return out


def test_fuzz_decode_or_drop_never_raises() -> None:
    rng = random.Random(1234)
    bad = _bad_inputs(rng, 4000)
    good = [sample_frames(k) for k in sorted(KINDS)] * 20
    counter = DropCounter()
    start = time.perf_counter()
    decoded = [decode_or_drop(frames, counter, source="fuzz") for frames in bad + good]
    elapsed = time.perf_counter() - start
    accepted = [i for i, m in enumerate(decoded[: len(bad)]) if m is not None]
    assert not accepted, [bad[i] for i in accepted[:3]]
    assert all(isinstance(m, Message) for m in decoded[len(bad):])
    assert counter.total == len(bad)
    assert "internal" not in counter.by_reason, counter.by_reason
    for reason in ("field", "field_value", "nonfinite", "shape", "missing_array", "header_key"):
        assert counter.by_reason.get(reason, 0) > 0, (reason, counter.by_reason)
    assert elapsed < 5.0


def test_fuzz_random_byte_flips_never_raise() -> None:
    """Flipped bytes may or may not leave a valid message; either way decode
    must answer with a Message or MalformedMessage, never another error."""
    rng = random.Random(99)
    counter = DropCounter()
    dropped = 0
    for _ in range(3000):
        frames = [bytearray(f) for f in sample_frames(rng.choice(sorted(KINDS)))]
        i = rng.randrange(len(frames))
        if frames[i]:
            for _ in range(rng.randrange(1, 4)):
                frames[i][rng.randrange(len(frames[i]))] = rng.randrange(256)
        dropped += decode_or_drop([bytes(f) for f in frames], counter) is None
    assert counter.total == dropped
    assert "internal" not in counter.by_reason, counter.by_reason


def test_fuzz_random_map_field_contents_round_trip() -> None:
    """Whatever plain nested data a map field holds, it arrives unchanged
    (the codec must not choke on depth, mixed types or unicode)."""
    rng = random.Random(7)

    def value(depth: int) -> Any:
        choice = rng.randrange(8 if depth < 4 else 5)
        if choice == 0:
            return rng.randrange(-2**63, 2**63)
        if choice == 1:
            return rng.uniform(-1e6, 1e6)
        if choice == 2:
            return rng.random() < 0.5
        if choice == 3:
            return "".join(rng.choice("aé-_ z🙂.") for _ in range(rng.randrange(6)))
        if choice == 4:
            return None
        if choice in (5, 6):
            return {f"k{j}": value(depth + 1) for j in range(rng.randrange(4))}
        return [value(depth + 1) for _ in range(rng.randrange(4))]

    for _ in range(200):
        summary = {f"key{j}": value(0) for j in range(rng.randrange(6))}
        events = [{"t": rng.random(), "type": "grasp", "robot": "left", "extra": value(1)} for _ in range(rng.randrange(3))]
        ep = decode(encode_episode(0, summary, False, seq=1))
        assert decode_episode(ep) == summary
        state = decode(encode("state", "state", fields={**_state_fields(), "events": events, "task": {"left": summary}},
                              arrays=_state_arrays()))
        assert state.fields["events"] == events and state.fields["task"] == {"left": summary}


# --------------------------------------------------------------------------
# Over a real socket
# --------------------------------------------------------------------------


def test_over_real_zmq_socket() -> None:
    zmq = pytest.importorskip("zmq")
    kinds = ("state", "obs", "turn_query", "turn", "episode", "cmd")
    with zmq.Context() as ctx:
        pull = ctx.socket(zmq.PULL)
        push = ctx.socket(zmq.PUSH)
        try:
            for s in (pull, push):
                s.setsockopt(zmq.LINGER, 0)
            pull.setsockopt(zmq.RCVTIMEO, 5000)
            port = pull.bind_to_random_port("tcp://127.0.0.1")
            push.connect(f"tcp://127.0.0.1:{port}")
            received: List[Tuple[str, Message]] = []
            for kind in kinds:
                frames = sample_frames(kind)
                push.send_multipart(frames)
                push.send_multipart(frames)
                received.append((kind, decode(pull.recv_multipart())))
                received.append((kind, decode(pull.recv_multipart(copy=False))))
            push.send_multipart(_with_array("state", "left/keypoints", np.zeros((4, 3))))
            counter = DropCounter()
            assert decode_or_drop(pull.recv_multipart(copy=False), counter, source="test") is None
            assert counter.by_reason == {"shape": 1}
        finally:
            push.close(linger=0)
            pull.close(linger=0)
    for kind, msg in received:
        topic, kw = samples()[kind]
        _assert_same_message(msg, topic, kind, kw)
    state = received[1][1]
    assert state.arrays["left/keypoints"].shape == (5, 3) and not state.arrays["left/keypoints"].flags.writeable


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
        for f in spec.fields.values():
            if list in f.types:
                assert f.items is not None, "array-typed fields declare their item type"


def test_registry_matches_the_new_schema() -> None:
    """Pin the shape of the schema this file (and docs/protocol.md) describe."""
    def arrays(kind: str) -> Dict[str, Tuple[Any, ...]]:
        return {a.name: a.shape for a in KINDS[kind].arrays}

    assert arrays("state") == {"*/q": ("dof",), "*/dq": ("dof",), "*/ee_pose": (7,), "*/keypoints": (5, 3),
                               "blocks": ("blocks", 7)}
    assert arrays("obs") == {"q": ("dof",), "dq": ("dof",), "ee_pose": (7,), "keypoints": (5, 3),
                             "blocks": ("blocks", 7),
                             "seen_partner_ee_pose": (7,), "seen_partner_keypoints": (5, 3)}
    assert not any(a.allow_nonfinite for k in KINDS.values() for a in k.arrays)
    assert list(KINDS["state"].fields) == ["robots", "holder", "episode", "seed", "arms", "task", "events", "done"]
    assert list(KINDS["obs"].fields) == ["holder", "observed", "episode", "scalars"]
    assert list(KINDS["turn"].fields) == ["holder", "event", "reason", "episode", "events", "next"]
    assert list(KINDS["turn_query"].fields) == ["episode", "has_work", "release", "request", "last_heard",
                                                "holder", "next"]
    assert list(KINDS["episode"].fields) == ["index", "last"]
    assert "world" in next(a.doc for a in KINDS["cmd"].arrays if a.name == "ee_pose")


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


def _doc_sections() -> Dict[str, str]:
    """Kind name -> text of its "### 2.x `kind`" section of the document."""
    text = DOC.read_text(encoding="utf-8")
    out: Dict[str, str] = {}
    for block in re.split(r"\n(?=#{2,3} )", text):
        m = re.match(r"### 2\.\d+ `([a-z_]+)`\n", block)
        if m:
            out[m.group(1)] = block
    return out


def _doc_rows(section: str) -> Dict[str, List[str]]:
    """First-column name (unquoted) -> cells, for every table row of a section."""
    rows: Dict[str, List[str]] = {}
    for line in section.splitlines():
        if line.startswith("| `"):
            cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            rows.setdefault(cells[0].strip("`"), cells)
    return rows


_DOC_TYPE = {str: "str", int: "int", float: "float", bool: "bool", dict: "map"}


def _doc_type(f: Any) -> str:
    if f.types == (list,):
        return f"array of {_DOC_TYPE[f.items[0]]}"
    return " or ".join(_DOC_TYPE[t] for t in f.types)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_protocol_doc_describes_each_kind_exactly(kind: str) -> None:
    """Each kind has its own section whose tables list exactly the schema's
    fields (with their type and choices) and arrays (dtype and shape), and a
    row in the kinds-at-a-glance table with its topic."""
    spec = KINDS[kind]
    sections = _doc_sections()
    assert kind in sections, f"no section for {kind!r}"
    rows = _doc_rows(sections[kind])
    for name, f in spec.fields.items():
        assert name in rows, f"{kind}: field {name!r} has no row"
        assert rows[name][1] == _doc_type(f), (kind, name, rows[name][1])
        for choice in f.choices or ():
            if choice:  # in the constraint cell, or (reply codes) as rows of a table of the section
                assert f"`{choice}`" in rows[name][2] or choice in rows, (kind, name, choice)
    for arr in spec.arrays:
        name = f"<robot>/{arr.suffix}" if arr.is_pattern else arr.name
        assert name in rows, f"{kind}: array {name!r} has no row"
        cells = rows[name]
        assert re.findall(r"`([^`]+)`", cells[1]) == list(arr.dtypes), (kind, name, cells[1])
        want = "[" + ", ".join("*" if d is None else str(d) for d in arr.shape) + "]"
        assert cells[2] == f"`{want}`", (kind, name, cells[2], want)
        assert ("world frame" in cells[3]) != ("observer" in cells[3]) or "frame" not in cells[3], (kind, name)
    glance = _doc_rows(DOC.read_text(encoding="utf-8").split("### 2.2", 1)[1].split("### 2.3", 1)[0])
    assert glance[kind][1] == f"`{spec.topic.replace('{robot}', '<robot>')}`", (kind, glance[kind])
    assert set(glance) == set(KINDS)


def test_protocol_doc_frames_match_the_schema() -> None:
    """Own pose, blocks and the cmd target are in the world frame; only the
    seen partner is in the observer's base frame."""
    sections = _doc_sections()
    obs, state, cmd = (_doc_rows(sections[k]) for k in ("obs", "state", "cmd"))
    for name in ("ee_pose", "blocks"):
        assert "world frame" in obs[name][3], name
    for name in ("seen_partner_ee_pose", "seen_partner_keypoints"):
        assert "observer's base frame" in obs[name][3], name
    for name in ("<robot>/ee_pose", "<robot>/keypoints", "blocks"):
        assert "world frame" in state[name][3], name
    assert "world frame" in cmd["ee_pose"][3]
    assert "base frame" not in " ".join(c for rows in (state, cmd) for row in rows.values() for c in row[3:])


def test_protocol_doc_has_no_stale_names() -> None:
    """Names removed from the schema must not linger in the document."""
    text = DOC.read_text(encoding="utf-8")
    for stale in ("`<robot>/gripper`", "`<robot>/link_pos`", "`partner_ee_pose`", "`partner_link_pos`",
                  "`links`", "`partner_*`", "NaN ok"):
        assert stale not in text, stale
