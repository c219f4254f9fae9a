"""What every node process shares: the control channel to the supervisor,
heartbeats in both directions, and a clean, bounded shutdown.

Liveness follows the Paranoid Pirate pattern (zguide): heartbeats every
``HEARTBEAT_INTERVAL`` s; a peer silent for ``LIVENESS`` intervals is dead.
A node whose supervisor is dead stops by itself, and on Linux the kernel
also sends it SIGTERM when its parent exits, so no orphan survives a crashed
or killed supervisor.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import time

import zmq

from robot_mirror.bus.codec import DropCounter
from robot_mirror.bus.transport import Endpoints, bind, make_socket, recv, send
from robot_mirror.config.scenario import Scenario

HEARTBEAT_INTERVAL = 0.5  # s
LIVENESS = 6              # intervals without news before a peer counts as dead
POLL_MS = 20

log = logging.getLogger("robot_mirror.node")


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except OSError:
            pass


class Node:
    """Base class: subclasses set ``kind`` and implement :meth:`setup` and :meth:`tick`."""

    kind = "node"

    def __init__(self, scenario: Scenario, endpoints: Endpoints, *, name: str | None = None,
                 supervised: bool = True) -> None:
        self.scenario = scenario
        self.endpoints = endpoints
        self.name = name or self.kind
        self.supervised = supervised
        self.ctx = zmq.Context()
        self.drops = DropCounter()
        self.stopping = False
        self.stop_reason = ""
        self._seq = 0
        self._last_beat_sent = 0.0
        self._last_supervisor = time.monotonic()
        self.control: zmq.Socket | None = None
        self.poller = zmq.Poller()
        from robot_mirror.bus.keys import Security

        self.security = Security.for_scenario(scenario)

    def bound(self, kind: int, endpoint: str, what: str) -> zmq.Socket:
        """A socket this node binds (secured when the bus is)."""
        sock = make_socket(self.ctx, kind)
        self.security.server(sock)
        bind(sock, endpoint, what, self.drops)
        return sock

    def connected(self, kind: int, endpoint: str, identity: str | None = None,
                  subscribe: bytes | None = None) -> zmq.Socket:
        """A socket this node connects (secured when the bus is)."""
        sock = make_socket(self.ctx, kind, identity=identity)
        if subscribe is not None:
            sock.setsockopt(zmq.SUBSCRIBE, subscribe)
        self.security.client(sock)
        sock.connect(endpoint)
        return sock

    # --------------------------------------------------------- life cycle
    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def run(self) -> int:
        """Set up, say hello, loop until stopped; always closes its sockets."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        if self.supervised:
            die_with_parent()
        try:
            if self.supervised:
                self.control = self.connected(zmq.DEALER, self.endpoints.control, identity=self.name)
                self.poller.register(self.control, zmq.POLLIN)
            self.setup()
            self.say("hello", fields={"node": self.name, "pid": os.getpid()})
            # The supervisor beats only nodes that said hello: its silence
            # counts from now, not from before a slow setup (e.g. torch).
            self._last_supervisor = time.monotonic()
            while not self.stopping:
                self.tick()
                self._service_control()
            # A last heartbeat, so the supervisor's final counts include
            # everything this node saw.
            self.say("heartbeat", fields={"node": self.name, "state": "stopped", "drops": self.drops.total})
            return 0
        finally:
            self.teardown()
            if self.control is not None:
                self.control.close(linger=500)  # let the last heartbeat out
            self.security.close()
            self.ctx.destroy(linger=0)

    def _on_signal(self, signum, frame) -> None:
        self.stopping = True
        self.stop_reason = signal.Signals(signum).name

    def setup(self) -> None:
        """Create and bind/connect the node's bus sockets."""

    def teardown(self) -> None:
        """Release anything beyond the sockets (closed with the context)."""

    def tick(self) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------ control
    def say(self, kind: str, **kwargs) -> None:
        """Send a message to the supervisor (no-op when unsupervised)."""
        if self.control is not None:
            send(self.control, kind, kind, seq=self.next_seq(), **kwargs)

    def poll(self, timeout_ms: int = POLL_MS) -> dict:
        return dict(self.poller.poll(timeout_ms))

    def _service_control(self) -> None:
        now = time.monotonic()
        if self.control is None:
            return
        if now - self._last_beat_sent >= HEARTBEAT_INTERVAL:
            self._last_beat_sent = now
            self.say("heartbeat", fields={"node": self.name, "state": "running", "drops": self.drops.total})
        while True:
            _, msg = recv(self.control, self.drops, "control")
            if msg is None:
                break
            self._last_supervisor = now
            if msg.kind == "stop":
                self.stopping = True
                self.stop_reason = msg.fields.get("reason", "stop")
        if now - self._last_supervisor > LIVENESS * HEARTBEAT_INTERVAL * 2:
            log.warning("%s: supervisor silent for %.1f s; stopping", self.name, now - self._last_supervisor)
            self.stopping = True
            self.stop_reason = "supervisor lost"
