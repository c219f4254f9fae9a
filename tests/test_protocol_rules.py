"""docs/protocol.md §4.2, the rules a client in another language relies on,
checked with messages built from msgpack alone (no project encoder)."""

from __future__ import annotations

import struct
import time

import msgpack
import pytest

from robot_mirror.bus.codec import MalformedMessage, decode
from robot_mirror.bus.wire import decode_cmd


def cmd_frames(*, gripper=0.0, t_sim=0.0, t_wall=None, seq=1, tick=-1) -> list[bytes]:
    header = {"v": 1, "kind": "cmd", "robot": "left", "seq": seq, "t_sim": t_sim,
              "t_wall": time.time() if t_wall is None else t_wall, "tick": tick,
              "arrays": [{"name": "q_target", "dtype": "<f8", "shape": [7]}],
              "fields": {"mode": "joint", "gripper": gripper, "turn": ""}}
    return [b"cmd", msgpack.packb(header), struct.pack("<7d", *[0.1] * 7)]


def test_integers_where_floats_are_declared_are_accepted() -> None:
    """A msgpack library without an int/float distinction (JavaScript) writes 1, not 1.0."""
    msg = decode(cmd_frames(gripper=1, t_sim=3, t_wall=int(time.time())))
    assert msg.t_sim == 3.0
    assert decode_cmd(msg).gripper == 1.0


def test_seq_up_to_javascripts_safe_integer_and_beyond() -> None:
    assert decode(cmd_frames(seq=2**53 - 1)).seq == 2**53 - 1
    assert decode(cmd_frames(seq=2**63 - 1)).seq == 2**63 - 1


def test_a_dealer_sends_no_empty_delimiter_frame() -> None:
    with pytest.raises(MalformedMessage) as err:
        decode([b"", *cmd_frames()])
    assert err.value.reason == "topic"
