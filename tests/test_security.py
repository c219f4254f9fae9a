"""The bus stays on loopback unless it is encrypted and authenticated."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from robot_mirror.bus.codec import encode
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


@pytest.mark.multiprocess
def test_curve_bus_runs_and_ignores_clients_without_keys(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    assert run_cli("keys", str(keys)).returncode == 0
    out = tmp_path / "run"
    proc = launch(out, "launch/tower_external.yaml", "--set", "task.blocks=1", "--set", f"bus.keys_dir={keys}",
                  "--set", "robots.left.policy=expert")
    endpoints = wait_for(out / "endpoints.json")
    # Without keys: the handshake fails, nothing is delivered either way.
    with Controller("left", endpoints, timeout=1.5) as stranger:
        with pytest.raises(ControllerError, match="no observation"):
            stranger.next_observation()
    ctx = zmq.Context()
    try:
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(__import__("json").loads(endpoints.read_text())["cmd"])
        sock.send_multipart(encode("cmd", "cmd", robot="left", fields={"mode": "joint", "gripper": 0.0, "turn": ""},
                                   arrays={"q_target": np.zeros(7)}))
        assert not sock.poll(1000), "an unauthenticated client got a reply"
    finally:
        ctx.destroy(linger=0)
    # The nodes themselves hold the keys: the run completes.
    summary = finish(proc, out)
    assert summary["_returncode"] == 0, summary["_stderr"]
    assert summary["episodes"][0]["success"]
