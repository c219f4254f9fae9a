"""Bounded messages, endpoint counters, per-episode drop counts and the
supervisor's progress receiver (issue 8: items 4, 13, 15).

Hostile frames are built with raw pyzmq (an XSUB sends any frame it likes
upstream to a publisher), never with the project's encoder.
"""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import zmq

from robot_mirror.bus.codec import encode
from robot_mirror.bus.drops import DropCounter
from robot_mirror.bus.schema import KINDS, MAX_HEADER_BYTES, MAX_MESSAGE_BYTES, TOPIC_RE
from robot_mirror.bus.transport import (
    CONNECTED_LIMITS, INBOUND_LIMITS, MAX_TOPIC_BYTES, PUBLISHER_IN_BYTES, SUBSCRIPTION_BYTES, Endpoints, bind,
    endpoint_counts, make_socket,
)
from tests.helpers import ROOT

BIG = 50 * 1024 * 1024

# A separate process sends the hostile subscription, so the publisher's RSS is
# measured alone. argv: endpoint, frame size.
_SENDER = """
import sys, time, zmq
ctx = zmq.Context()
s = ctx.socket(zmq.XSUB)
s.connect(sys.argv[1])
time.sleep(0.3)
s.send(b"\\x01" + b"x" * int(sys.argv[2]))
time.sleep(2.0)
ctx.destroy(linger=0)
"""


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_limits_follow_the_schema() -> None:
    """A topic of MAX_TOPIC_BYTES is valid and one more is not; a publisher
    takes one subscription frame; every request kind's fixed-size arrays fit
    the header-sized limit of the sockets that receive them."""
    assert re.fullmatch(TOPIC_RE, "a" * MAX_TOPIC_BYTES) and not re.fullmatch(TOPIC_RE, "a" * (MAX_TOPIC_BYTES + 1))
    assert {INBOUND_LIMITS[w] for w in ("state", "obs", "turn")} == {PUBLISHER_IN_BYTES}
    assert SUBSCRIPTION_BYTES <= PUBLISHER_IN_BYTES <= 4096
    for kind in ("cmd", "hello", "heartbeat", "episode", "turn_query", "reply", "turn", "stop"):
        for array in KINDS[kind].arrays:
            if all(isinstance(d, int) for d in array.shape):
                assert 8 * int(np.prod(array.shape)) <= MAX_HEADER_BYTES, (kind, array.name)
    assert CONNECTED_LIMITS[zmq.SUB] == MAX_MESSAGE_BYTES and CONNECTED_LIMITS[zmq.DEALER] == MAX_HEADER_BYTES
    ctx = zmq.Context()
    try:
        assert make_socket(ctx, zmq.SUB).getsockopt(zmq.MAXMSGSIZE) == MAX_MESSAGE_BYTES
        assert make_socket(ctx, zmq.DEALER, max_in=100).getsockopt(zmq.MAXMSGSIZE) == 100
        for what, limit in INBOUND_LIMITS.items():
            sock = make_socket(ctx, zmq.PUB if limit == PUBLISHER_IN_BYTES else zmq.ROUTER)
            bind(sock, "tcp://127.0.0.1:*", what)
            assert sock.getsockopt(zmq.MAXMSGSIZE) == limit, what
    finally:
        ctx.destroy(linger=0)


def test_a_curve_subscriber_gets_through_the_publisher_limit() -> None:
    """libzmq applies MAXMSGSIZE to the CURVE handshake too: a publisher's
    limit must still admit an encrypted subscriber (every run has keys)."""
    ctx = zmq.Context()
    try:
        server_public, server_secret = zmq.curve_keypair()
        client_public, client_secret = zmq.curve_keypair()
        pub = make_socket(ctx, zmq.PUB)
        pub.curve_server, pub.curve_secretkey, pub.curve_publickey = True, server_secret, server_public
        bind(pub, "tcp://127.0.0.1:*", "state")
        sub = make_socket(ctx, zmq.SUB, identity="policy.a-long-identity-" + "x" * 200)
        sub.curve_serverkey, sub.curve_publickey, sub.curve_secretkey = server_public, client_public, client_secret
        sub.setsockopt(zmq.SUBSCRIBE, b"state")
        sub.connect(pub.getsockopt(zmq.LAST_ENDPOINT).decode())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            pub.send_multipart([b"state", b"x"])
            if sub.poll(100):
                assert sub.recv_multipart() == [b"state", b"x"]
                return
        raise AssertionError("an encrypted subscriber never got through the publisher's size limit")
    finally:
        ctx.destroy(linger=0)


def test_a_50mb_subscription_neither_stalls_nor_inflates_a_publisher() -> None:
    """Without the limit this frame costs the publisher seconds of stall and
    gigabytes of memory; with it the peer is cut and nothing changes."""
    ctx = zmq.Context()
    drops = DropCounter()
    try:
        pub = make_socket(ctx, zmq.PUB)
        bind(pub, "tcp://127.0.0.1:*", "state", drops)
        endpoint = pub.getsockopt(zmq.LAST_ENDPOINT).decode()
        good = make_socket(ctx, zmq.SUB)
        good.setsockopt(zmq.SUBSCRIBE, b"state")
        good.connect(endpoint)
        rss0 = _rss_mb(os.getpid())
        sender = subprocess.Popen([sys.executable, "-c", _SENDER, endpoint, str(BIG)])
        start = last = time.monotonic()
        gap, received = 0.0, 0
        while sender.poll() is None and time.monotonic() - start < 20:
            pub.send_multipart([b"state", b"x"])
            now = time.monotonic()
            gap, last = max(gap, now - last), now
            time.sleep(0.01)
            while good.poll(0):
                good.recv_multipart()
                received += 1
        sender.wait(timeout=10)
        assert gap < 1.0, f"publisher stalled {gap:.2f} s"
        assert _rss_mb(os.getpid()) - rss0 < 30, "publisher memory grew"
        assert received > 50
        deadline = time.monotonic() + 5
        while (endpoint_counts(pub) or {}).get("disconnected", 0) < 1:  # the hostile peer was cut
            assert time.monotonic() < deadline, endpoint_counts(pub)
            time.sleep(0.05)
    finally:
        ctx.destroy(linger=0)


def test_refused_handshakes_at_a_bound_endpoint_are_counted_as_drops() -> None:
    ctx = zmq.Context()
    drops = DropCounter()
    try:
        pub = make_socket(ctx, zmq.PUB)
        bind(pub, "tcp://127.0.0.1:*", "obs", drops)
        host, port = pub.getsockopt(zmq.LAST_ENDPOINT).decode()[len("tcp://"):].split(":")
        for _ in range(3):
            with socket.create_connection((host, int(port)), timeout=2) as raw:
                raw.sendall(b"\xff" * 600)  # no ZMTP greeting
                time.sleep(0.05)
        deadline = time.monotonic() + 5
        while drops.by_reason.get("handshake_failed", 0) < 3:
            assert time.monotonic() < deadline, (drops.by_reason, endpoint_counts(pub))
            time.sleep(0.05)
        assert endpoint_counts(pub)["accepted"] >= 3
    finally:
        ctx.destroy(linger=0)


def test_drop_counts_per_period() -> None:
    drops = DropCounter()
    err = type("E", (Exception,), {"reason": "field"})
    drops.record(err("x"))
    first, mark = drops.since({})
    assert first == {"total": 1, "by_reason": {"field": 1}}
    second, mark = drops.since(mark)
    assert second == {"total": 0, "by_reason": {}}
    drops.record(err("y"))
    drops.count("handshake_failed", "junk")
    third, _ = drops.since(mark)
    assert third == {"total": 2, "by_reason": {"field": 1, "handshake_failed": 1}}
    assert drops.as_dict()["total"] == 3  # the run total is unchanged


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _state(tick: int) -> list[bytes]:
    return encode("state", "state", seq=tick + 1, tick=tick, t_sim=tick * 0.05, fields={
        "robots": ["left"], "holder": "left", "episode": 0, "seed": 1,
        "arms": {"left": {"holding": -1, "in_zone": False, "gripper": 0.0}}, "task": {"left": {}},
        "events": [], "done": False,
    }, arrays={"left/q": np.zeros(7), "left/dq": np.zeros(7), "left/ee_pose": np.r_[0, 0, 0, 0, 0, 0, 1.0],
               "left/keypoints": np.zeros((5, 3)), "blocks": np.zeros((2, 7))})


def test_supervisor_progress_receives_multipart_states(tmp_path: Path) -> None:
    """CONFLATE kept only single frames, so the live line never saw a state."""
    from robot_mirror.bus.keys import Security
    from robot_mirror.config.scenario import load_scenario
    from robot_mirror.launch.progress import ProgressLine
    from robot_mirror.launch.supervisor import Supervisor

    scenario = load_scenario(ROOT / "launch/tower.yaml")
    sup = Supervisor(scenario, "launch/tower.yaml", tmp_path, [])
    terminal = _Terminal()
    sup.progress = ProgressLine(stream=terminal)
    sup.security = Security(None)  # the progress receiver alone, in the clear
    pub = make_socket(sup.ctx, zmq.PUB)
    try:
        bind(pub, "tcp://127.0.0.1:*", "state")
        state = pub.getsockopt(zmq.LAST_ENDPOINT).decode()
        sup.endpoints = Endpoints(state, state, state, state, state, state)
        sup.state_sub = sup._state_subscriber()
        time.sleep(0.3)  # the subscription reaches the publisher
        for tick in range(50):
            pub.send_multipart(_state(tick))
        deadline = time.monotonic() + 5
        while "t=   2.5s" not in terminal.getvalue():  # the newest state (tick 49) was shown
            assert time.monotonic() < deadline, repr(terminal.getvalue())
            sup.progress._last = 0.0
            sup._show_progress()
            time.sleep(0.01)
        assert "episode 1/" in terminal.getvalue() and sup.drops.total == 0
    finally:
        sup.security.close()
        sup.ctx.destroy(linger=0)
