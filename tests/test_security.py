"""The bus stays on loopback unless it is encrypted and authenticated."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zmq
import zmq.auth

from robot_mirror.bus.codec import decode, encode
from robot_mirror.bus.keys import Security
from robot_mirror.client import Controller, ControllerError
from tests.helpers import ROOT, assert_one_line_error, finish, launch, run_cli, wait_for


def test_keys_command_makes_key_pairs(tmp_path: Path) -> None:
    proc = run_cli("keys", str(tmp_path / "keys"))
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in (tmp_path / "keys").iterdir())
    assert names == ["client.key", "client.key_secret", "server.key", "server.key_secret"]
    assert (tmp_path / "keys/server.key_secret").stat().st_mode & 0o077 == 0


def test_open_interface_without_keys_is_refused(tmp_path: Path) -> None:
    proc = run_cli("launch", "launch/tower.yaml", "--set", "bus.interface=0.0.0.0", "--out", str(tmp_path / "r"))
    assert_one_line_error(proc, "bus.interface", "0.0.0.0", "keys_dir")
    assert not (tmp_path / "r").exists()


def test_missing_keys_folder_is_refused(tmp_path: Path) -> None:
    proc = run_cli("launch", "launch/tower.yaml", "--set", f"bus.keys_dir={tmp_path / 'none'}")
    assert_one_line_error(proc, "bus.keys_dir", "not found")


def _dealer(ctx: zmq.Context, endpoint: str, keys: Path | None, *, impostor: bool = False) -> zmq.Socket:
    """A DEALER on ``cmd``: with the run's client keys, with none, or (impostor)
    with CURVE and the right server key but a client key pair of its own."""
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    if impostor:
        sock.curve_publickey, sock.curve_secretkey = zmq.curve_keypair()
        sock.curve_serverkey = zmq.auth.load_certificate(str(keys / "server.key"))[0]
    else:
        Security(keys).client(sock)
    sock.connect(endpoint)
    return sock


def _send_unless_refused(sock: zmq.Socket, frames: list[bytes]) -> None:
    """Send without blocking: once the handshake has failed there is no peer
    to queue for (a refused message is not delivered either way)."""
    try:
        sock.send_multipart(frames, flags=zmq.NOBLOCK)
    except zmq.Again:
        pass


def _reply_code(sock: zmq.Socket, timeout_ms: int) -> str | None:
    """The code of the next reply on ``sock``, or None if none comes in time."""
    if not sock.poll(timeout_ms):
        return None
    return decode(sock.recv_multipart()).fields["code"]


@pytest.mark.multiprocess
def test_curve_bus_runs_and_ignores_clients_without_keys(tmp_path: Path) -> None:
    """The same client, the same bytes: with the keys it is answered and
    counted, without them nothing reaches the sim, and the run completes.

    The left arm is external and the sim waits (up to controller_timeout) on
    tick 0 for its first command: the run cannot end during the checks."""
    keys = tmp_path / "keys"
    assert run_cli("keys", str(keys)).returncode == 0
    out = tmp_path / "run"
    proc = launch(out, "launch/tower_external.yaml", "--set", "task.blocks=1", "--set", "task.first=right",
                  "--set", f"bus.keys_dir={keys}", "--set", "bus.controller_timeout=60")
    endpoints = wait_for(out / "endpoints.json")
    cmd_endpoint = json.loads(endpoints.read_text())["cmd"]
    junk = [b"not a message"]  # malformed: the sim answers 'bad_message' and counts a drop
    nobody = encode("cmd", "cmd", robot="nobody", fields={"mode": "joint", "gripper": 0.0, "turn": ""},
                    arrays={"q_target": np.zeros(7)})  # answered 'unknown_robot'; moves and claims nothing
    keyed_junk = 0
    ctx = zmq.Context()
    try:
        with Controller("left", endpoints, timeout=30, keys_dir=keys) as arm:
            assert arm.next_observation()["tick"] == 0  # the sim now waits for this arm
            with Controller("left", endpoints, timeout=1.5) as stranger:
                with pytest.raises(ControllerError, match="no observation"):
                    stranger.next_observation()
            keyed, plain = _dealer(ctx, cmd_endpoint, keys), _dealer(ctx, cmd_endpoint, None)
            impostor = _dealer(ctx, cmd_endpoint, keys, impostor=True)
            keyed.send_multipart(nobody)
            assert _reply_code(keyed, 10_000) == "unknown_robot"
            keyed.send_multipart(junk)
            keyed_junk += 1
            assert _reply_code(keyed, 10_000) == "bad_message"
            for sock in (plain, impostor):
                for frames in [nobody] + [junk] * 5:
                    _send_unless_refused(sock, frames)
            assert _reply_code(plain, 1000) is None, "a client without CURVE got a reply"
            assert _reply_code(impostor, 0) is None, "a client with an unknown key got a reply"
            # The server answered keyed clients all along: the silence was a refusal.
            keyed.send_multipart(junk)
            keyed_junk += 1
            assert _reply_code(keyed, 10_000) == "bad_message"
            assert _reply_code(plain, 0) is None and _reply_code(impostor, 0) is None
            # The keyed controller drives its arm (holds still) until the run ends.
            arm.hold()
            assert arm.wait_reply().fields["ok"]
            for _ in arm.observations(timeout=5):
                arm.hold()
    finally:
        ctx.destroy(linger=0)
    # The nodes hold the keys: the run completes; the sim counted the keyed
    # client's commands and junk, and never saw the unkeyed junk.
    summary = finish(proc, out)
    assert summary["_returncode"] == 0, summary["_stderr"]
    episode = summary["episodes"][0]
    assert episode["success"]
    assert episode["bus"]["robots"]["left"]["commands"] >= 2
    assert summary["dropped_messages_by_node"]["sim"] == keyed_junk, summary["dropped_messages_by_node"]
