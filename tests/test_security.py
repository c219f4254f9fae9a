"""Only the run's own processes get in, on loopback too.

Every launch makes fresh CURVE keys in RUN/keys (one pair per node and per
external controller, 0600); ZAP admits the public keys in RUN/keys/allowed
and tags each connection with its key's name, which the supervisor (control)
and the sim (cmd) check against the identity or robot a message claims.
Hostile clients here are raw pyzmq + msgpack, not the project's encoder.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import pytest
import zmq
import zmq.auth

from robot_mirror.bus.keys import Security, make_keys
from robot_mirror.bus.transport import Endpoints
from robot_mirror.client import Controller, ControllerError
from tests.helpers import ROOT, assert_one_line_error, finish, launch, run_cli, wait_for


def raw(kind: str, robot: str = "", fields: dict | None = None, arrays: list | None = None,
        topic: str | None = None) -> list[bytes]:
    """A message built with msgpack alone (no project code)."""
    header = {"v": 1, "kind": kind, "robot": robot, "seq": 1, "t_sim": 0.0, "t_wall": time.time(), "tick": -1,
              "arrays": [{"name": n, "dtype": "<f8", "shape": [len(v)]} for n, v in (arrays or [])],
              "fields": fields or {}}
    import struct

    data = [struct.pack(f"<{len(v)}d", *v) for _, v in (arrays or [])]
    return [(topic or kind).encode(), msgpack.packb(header), *data]


def hold_cmd(robot: str) -> list[bytes]:
    return raw("cmd", robot, {"mode": "joint", "gripper": 0.0, "turn": ""}, [("q_target", [0.0] * 7)])


def curve_socket(ctx: zmq.Context, kind: int, keys: Path, name: str | None, *, identity: bytes | None = None):
    """A raw CURVE client: server.key from ``keys``, own pair ``name``
    (None: a fresh pair the run never issued)."""
    sock = ctx.socket(kind)
    sock.linger = 0
    if identity:
        sock.identity = identity
    if name is None:
        sock.curve_publickey, sock.curve_secretkey = zmq.curve_keypair()
    else:
        sock.curve_publickey, sock.curve_secretkey = zmq.auth.load_certificate(str(keys / f"{name}.key_secret"))
    sock.curve_serverkey = zmq.auth.load_certificate(str(keys / "server.key"))[0]
    return sock


# ----------------------------------------------------------------- key files
def test_make_keys_one_pair_per_client_0600_public_keys_allowed(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    make_keys(keys, ["sim", "controller.left"])
    assert sorted(p.name for p in keys.iterdir()) == [
        "allowed", "controller.left.key_secret", "server.key", "server.key_secret", "sim.key_secret"]
    assert sorted(p.name for p in (keys / "allowed").iterdir()) == ["controller.left.key", "sim.key"]
    for path in [*keys.rglob("*.key"), *keys.rglob("*.key_secret")]:
        assert path.stat().st_mode & 0o077 == 0, path
    assert keys.stat().st_mode & 0o077 == 0
    before = (keys / "sim.key_secret").read_text()
    make_keys(keys, ["sim", "turn"])  # existing pairs are kept
    assert (keys / "sim.key_secret").read_text() == before and (keys / "turn.key_secret").is_file()


def test_keys_command_makes_server_and_client_pairs(tmp_path: Path) -> None:
    proc = run_cli("keys", str(tmp_path / "keys"), "--client", "controller.left")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "keys/server.key_secret").stat().st_mode & 0o077 == 0
    assert (tmp_path / "keys/allowed/controller.left.key").is_file()


def test_missing_keys_folder_is_refused(tmp_path: Path) -> None:
    proc = run_cli("launch", "launch/tower.yaml", "--set", f"bus.keys_dir={tmp_path / 'none'}")
    assert_one_line_error(proc, "bus.keys_dir", "robot-mirror keys")


# --------------------------------------------------------------------- ZAP
@pytest.fixture
def server(tmp_path: Path):
    """A CURVE ROUTER bound as the nodes bind (domain ``cmd``), with its keys."""
    keys = tmp_path / "keys"
    make_keys(keys, ["controller.left", "controller.right"])
    security = Security(keys, names=["sim"])
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.linger = 0
    security.server(router, "cmd")
    port = router.bind_to_random_port("tcp://127.0.0.1")
    yield keys, ctx, router, f"tcp://127.0.0.1:{port}"
    security.close()
    ctx.destroy(linger=0)


def _received(router: zmq.Socket, timeout_ms: int) -> list[tuple[bytes, str | None]]:
    """(identity, User-Id) of each message that arrives within the time."""
    got = []
    while router.poll(timeout_ms):
        frames = router.recv_multipart(copy=False)
        got.append((frames[0].bytes, frames[1].get("User-Id")))
        timeout_ms = 200
    return got


def send_or_refused(sock: zmq.Socket, frames: list) -> None:
    """Send without blocking; a DEALER whose connection was already refused
    has no pipe and answers EAGAIN, which is the refusal itself."""
    try:
        sock.send_multipart(frames, flags=zmq.NOBLOCK)
    except zmq.Again:
        pass


def test_zap_admits_allowed_keys_tags_them_and_refuses_others(server, caplog) -> None:
    keys, ctx, router, endpoint = server
    keyed = curve_socket(ctx, zmq.DEALER, keys, "controller.left", identity=b"a")
    stranger = curve_socket(ctx, zmq.DEALER, keys, None, identity=b"b")
    plain = ctx.socket(zmq.DEALER)
    plain.linger, plain.identity = 0, b"c"
    with caplog.at_level(logging.WARNING, logger="robot_mirror.keys"):
        for sock in (keyed, stranger, plain):
            sock.connect(endpoint)
            send_or_refused(sock, hold_cmd("left"))
        got = _received(router, 3000)
    assert got == [(b"a", "controller.left")]  # tagged with the key's name
    assert any("refused a connection" in r.getMessage() and "is not in" in r.getMessage() for r in caplog.records)


def test_a_key_is_revoked_by_removing_it_from_allowed(server) -> None:
    keys, ctx, router, endpoint = server
    first = curve_socket(ctx, zmq.DEALER, keys, "controller.right", identity=b"1")
    first.connect(endpoint)
    first.send_multipart(hold_cmd("right"))
    assert _received(router, 3000) == [(b"1", "controller.right")]
    (keys / "allowed/controller.right.key").unlink()
    again = curve_socket(ctx, zmq.DEALER, keys, "controller.right", identity=b"2")
    again.connect(endpoint)
    send_or_refused(again, hold_cmd("right"))
    assert _received(router, 1500) == []


def test_only_the_sim_key_may_ask_the_arbiter(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    make_keys(keys, ["sim", "policy.left"])
    security = Security(keys, names=["turn"])
    ctx = zmq.Context()
    try:
        router = ctx.socket(zmq.ROUTER)
        router.linger = 0
        security.server(router, "turn_rpc")
        endpoint = f"tcp://127.0.0.1:{router.bind_to_random_port('tcp://127.0.0.1')}"
        for name in ("policy.left", "sim"):
            sock = curve_socket(ctx, zmq.DEALER, keys, name, identity=name.encode())
            sock.connect(endpoint)
            send_or_refused(sock, [b"turn_query", b"x"])
        assert _received(router, 3000) == [(b"sim", "sim")]
    finally:
        security.close()
        ctx.destroy(linger=0)


def test_a_cmd_for_another_keys_robot_is_dropped_and_counted(server) -> None:
    """Node.key_may_command: the key of controller.right cannot move 'left'."""
    from robot_mirror.bus.codec import decode
    from robot_mirror.bus.keys import user_id
    from robot_mirror.nodes.base import Node

    keys, ctx, router, endpoint = server
    node = Node(None, None, name="sim", keys_dir=keys)
    try:
        sock = node.bound(zmq.ROUTER, "tcp://127.0.0.1:0", "cmd")
        endpoint = sock.getsockopt(zmq.LAST_ENDPOINT).decode()
        right = curve_socket(ctx, zmq.DEALER, keys, "controller.right", identity=b"policy.left")
        left = curve_socket(ctx, zmq.DEALER, keys, "controller.left", identity=b"mine")
        for s in (right, left):
            s.connect(endpoint)
        right.send_multipart(hold_cmd("left"))
        left.send_multipart(hold_cmd("left"))
        got, seen = [], 0
        deadline = time.monotonic() + 10
        while seen < 2 and time.monotonic() < deadline:  # both, in whichever order the handshakes finish
            if not sock.poll(100):
                continue
            frames = sock.recv_multipart(copy=False)
            seen += 1
            msg = decode(frames[1:])
            if node.key_may_command(user_id(frames[0]), msg):
                got.append((frames[0].bytes, msg.robot))
        assert got == [(b"mine", "left")]
        assert node.drops.as_dict()["by_reason"] == {"identity": 1}
    finally:
        node.security.close()
        node.ctx.destroy(linger=0)


# ----------------------------------------------------------------- clients
def test_a_client_needs_only_the_servers_public_key(server, tmp_path: Path) -> None:
    """A remote machine holds server.key and its own pair, never the server's secret."""
    keys, ctx, router, endpoint = server
    remote = tmp_path / "remote"
    remote.mkdir()
    for name in ("server.key", "controller.left.key_secret"):
        shutil.copy(keys / name, remote / name)
    endpoints = Endpoints(*[endpoint] * 6)
    with Controller("left", endpoints, keys_dir=remote, timeout=1) as arm:
        arm.cmd.send_multipart(hold_cmd("left"))
        assert _received(router, 3000)[0][1] == "controller.left"


def test_client_without_its_key_says_so_in_one_line(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    make_keys(keys, ["controller.right"])
    with pytest.raises(Exception, match=r"controller\.left\.key_secret missing"):
        Controller("left", Endpoints.allocate(), keys_dir=keys).connect()


def test_no_observation_names_the_missing_credentials(tmp_path: Path) -> None:
    with Controller("left", Endpoints.allocate(), timeout=0.3) as arm:
        with pytest.raises(ControllerError, match="no keys: pass the run's keys"):
            arm.next_observation()


def test_example_controller_without_a_run_exits_nonzero(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.json"
    Endpoints.allocate().save(path)
    proc = subprocess.run([sys.executable, "examples/external_controller.py", "--endpoints", str(path),
                           "--timeout", "1"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "no observation" in proc.stderr and "keys" in proc.stderr


def test_unsupervised_node_beyond_loopback_without_keys_is_refused(tmp_path: Path) -> None:
    """Only bus.interface used to be checked: the endpoints are what a node binds."""
    endpoints = json.dumps({n: f"tcp://0.0.0.0:{5900 + i}" for i, n in
                            enumerate(["state", "cmd", "obs", "turn", "turn_rpc", "control"])})
    proc = run_cli("node", "turn", "--scenario", "launch/tower.yaml", "--endpoints", endpoints, "--unsupervised")
    assert_one_line_error(proc, "0.0.0.0", "--keys")


# ------------------------------------------------------------ unsupervised
def _listener(endpoint: str, idle_exit: bool):
    from robot_mirror.nodes.base import Node

    class Listener(Node):
        kind = "listener"
        exits_when_idle = idle_exit

        def setup(self) -> None:
            self.sub = self.connected(zmq.SUB, endpoint, subscribe=b"")
            self.poller.register(self.sub, zmq.POLLIN)

        def tick(self) -> None:
            if self.sub in self.poll():
                self.sub.recv_multipart()

    return Listener(None, None, name="listener", supervised=False)


def test_unsupervised_node_says_when_nothing_arrives_and_exits_when_the_run_ends(monkeypatch, caplog) -> None:
    import threading

    import robot_mirror.nodes.base as base

    monkeypatch.setattr(base, "NO_INPUT_WARN_S", 0.3)
    monkeypatch.setattr(base, "IDLE_EXIT_S", 0.5)
    monkeypatch.setattr(base.signal, "signal", lambda *a: None)  # run() is not on the main thread here
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.linger = 0
    endpoint = f"tcp://127.0.0.1:{pub.bind_to_random_port('tcp://127.0.0.1')}"
    node = _listener(endpoint, idle_exit=True)
    result = {}
    with caplog.at_level(logging.INFO, logger="robot_mirror.node"):
        thread = threading.Thread(target=lambda: result.setdefault("rc", node.run()))
        thread.start()
        time.sleep(0.8)  # nothing published yet: one warning, still running
        assert thread.is_alive()
        for _ in range(5):
            pub.send_multipart([b"state", b"x"])
            time.sleep(0.05)
        thread.join(timeout=5)
    ctx.destroy(linger=0)
    assert not thread.is_alive() and result["rc"] == 0 and node.stop_reason == "run ended"
    warnings = [r.getMessage() for r in caplog.records if "nothing received" in r.getMessage()]
    assert len(warnings) == 1 and "--keys RUN/keys" in warnings[0]


# ----------------------------------------------------------- a real launch
@pytest.mark.multiprocess
def test_impersonation_on_control_is_refused(tmp_path: Path) -> None:
    """A local process claiming a node's identity on `control` – with no key,
    or with a key the run admits but issued to another name, connected
    before the real node – can neither take that node's messages (the
    supervisor routes by key, not by claimed identity), nor report an
    episode into summary.json, nor stop the run."""
    out = tmp_path / "run"
    proc = launch(out, "launch/tower.yaml", "--episodes", "1", "--set", "task.blocks=2")
    endpoints = json.loads(wait_for(out / "endpoints.json").read_text())
    keys = out / "keys"
    make_keys(keys, ["intruder"])  # a key the run admits (as if issued to a controller)
    bogus = {"index": 0, "summary": {"index": 0, "success": False}, "last": True}
    ctx = zmq.Context()
    try:
        socks = [curve_socket(ctx, zmq.DEALER, keys, "intruder", identity=b"policy.right"),
                 curve_socket(ctx, zmq.DEALER, keys, "intruder", identity=b"sim"),
                 curve_socket(ctx, zmq.DEALER, keys, None, identity=b"sim")]
        plain = ctx.socket(zmq.DEALER)
        plain.linger, plain.identity = 0, b"policy.left"
        socks.append(plain)
        deadline = time.monotonic() + 8
        for sock in socks:
            sock.connect(endpoints["control"])
        while time.monotonic() < deadline:  # keep at it while the run goes on
            for sock in socks:
                for frames in (raw("episode", fields=bogus), raw("stop", fields={"reason": "pwned"})):
                    try:
                        sock.send_multipart(frames, flags=zmq.NOBLOCK)
                    except zmq.Again:
                        pass
            time.sleep(0.2)
    finally:
        ctx.destroy(linger=0)
    summary = finish(proc, out)
    assert summary["_returncode"] == 0, summary["_stderr"]
    assert len(summary["episodes"]) == 1 and summary["episodes"][0]["success"]
    assert summary["restarts"]["policy.right"] == 0  # its identity was never taken over
    assert summary["dropped_messages_by_node"]["supervisor"] > 0


@pytest.mark.multiprocess
@pytest.mark.slow
def test_missing_controller_is_named_and_its_wait_is_not_episode_time(tmp_path: Path) -> None:
    """No controller for the external arm: the launch says which one and
    why it might be missing; the 30 s wait is not in the episode's wall time."""
    out = tmp_path / "run"
    proc = launch(out, "launch/tower_external.yaml", "--set", "task.blocks=1", "--set", "task.first=right",
                  "--set", "bus.controller_timeout=30")
    summary = finish(proc, out)
    assert summary["_returncode"] == 0, summary["_stderr"]
    assert "external controller of 'left'" in summary["_stderr"] and "controller.left.key_secret" in summary["_stderr"]
    episode = summary["episodes"][0]
    assert episode["wall_seconds"] < 25, episode["wall_seconds"]


@pytest.mark.multiprocess
def test_external_controller_with_the_runs_keys_drives_its_arm(tmp_path: Path) -> None:
    """The run's keys are found next to endpoints.json; a controller without
    them (or with a key the run never issued) gets nothing, and the run completes."""
    out = tmp_path / "run"
    proc = launch(out, "launch/tower_external.yaml", "--set", "task.blocks=1", "--set", "task.first=right",
                  "--set", "bus.controller_timeout=60")
    endpoints = wait_for(out / "endpoints.json")
    with Controller("left", endpoints, timeout=30) as arm:
        assert arm.keys_dir == out / "keys"
        assert arm.next_observation()["tick"] == 0  # the sim now waits for this arm
        with Controller("left", Endpoints.load(endpoints), timeout=1.5) as stranger:
            with pytest.raises(ControllerError, match="no observation"):
                stranger.next_observation()
        arm.hold()
        assert arm.wait_reply().fields["ok"]
        for _ in arm.observations(timeout=5):
            arm.hold()
    summary = finish(proc, out)
    assert summary["_returncode"] == 0, summary["_stderr"]
    assert summary["episodes"][0]["success"]
    assert summary["episodes"][0]["bus"]["robots"]["left"]["commands"] >= 2
