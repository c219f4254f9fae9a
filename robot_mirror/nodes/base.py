"""What every node process shares: the control channel to the supervisor,
heartbeats in both directions, and a clean, bounded shutdown.

Liveness follows the Paranoid Pirate pattern (zguide): heartbeats every
``HEARTBEAT_INTERVAL`` s; a peer silent for ``LIVENESS`` intervals is dead.
A node whose supervisor is dead stops by itself, and on Linux the kernel
also sends it SIGTERM when its parent exits, so no orphan survives a crashed
or killed supervisor.

An unsupervised node (e.g. a policy on another machine) has no supervisor
to tell it anything, so it watches the bus instead: nothing received for
``NO_INPUT_WARN_S`` after start is said in one line (the run is not started,
or this node lacks the run's keys: a refused CURVE handshake is otherwise
silent), and a node fed every tick (``exits_when_idle``) exits once its
input has stopped for ``IDLE_EXIT_S``: the run has ended.
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
from robot_mirror.bus.keys import Security, may_command
from robot_mirror.bus.transport import Endpoints, bind, make_socket, recv, send
from robot_mirror.config.scenario import Scenario
from robot_mirror.errors import RobotMirrorError

HEARTBEAT_INTERVAL = 0.5  # s
LIVENESS = 6              # intervals without news before a peer counts as dead
POLL_MS = 20
NO_INPUT_WARN_S = 10.0  # unsupervised: say so when nothing has arrived this long after start
IDLE_EXIT_S = 15.0      # unsupervised, fed every tick: input stopped this long = the run ended

log = logging.getLogger("robot_mirror.node")


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except OSError:
            pass


class IdentityMismatch(RobotMirrorError):
    """A message whose claimed identity or robot is not the one its key was issued for."""

    reason = "identity"


class Node:
    """Base class: subclasses set ``kind`` and implement :meth:`setup` and :meth:`tick`.

    ``keys_dir``: the run's CURVE keys (``RUN/keys``); None only on loopback."""

    kind = "node"
    exits_when_idle = False  # unsupervised: input every tick, so its silence means the run ended

    def __init__(self, scenario: Scenario, endpoints: Endpoints, *, name: str | None = None,
                 supervised: bool = True, keys_dir=None) -> None:
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
        self._started = time.monotonic()
        self._heard: float | None = None
        self._warned = False
        self.security = Security(keys_dir, names=self.key_names())

    def key_names(self) -> list[str]:
        """This process's own key, in order of preference: its node name; a
        remote policy node for a robot driven from outside may hold that
        robot's controller key instead."""
        robot = self.name.split(".", 1)[1] if self.name.startswith("policy.") else None
        return [self.name] + ([f"controller.{robot}"] if robot else [])

    def bound(self, kind: int, endpoint: str, what: str) -> zmq.Socket:
        """A socket this node binds (secured when the bus is; ``what`` is its ZAP domain)."""
        sock = make_socket(self.ctx, kind)
        self.security.server(sock, what)
        bind(sock, endpoint, what, self.drops)
        return sock

    def key_may_command(self, user: str | None, msg) -> bool:
        """Is ``msg`` allowed by the CURVE key it came with (``user``, its
        name: ``bus.keys.user_id`` of the message's first frame)? A ``cmd``
        whose robot is not the one its key was issued for is dropped and
        counted (reason ``identity``): a process holding one arm's key cannot
        move the other."""
        if msg.kind != "cmd" or may_command(user, msg.robot, self.security.enabled):
            return True
        self.drops.record(IdentityMismatch(f"key '{user}' may not command robot '{msg.robot}'"), "cmd")
        return False

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
        self._started = time.monotonic()
        try:
            if self.supervised:
                # No claimed identity: the supervisor knows this node by its key
                # and answers the connection its messages came on.
                self.control = self.connected(zmq.DEALER, self.endpoints.control)
                self.poller.register(self.control, zmq.POLLIN)
            self.setup()
            self.say("hello", fields={"node": self.name, "pid": os.getpid()})
            # The supervisor beats only nodes that said hello: its silence
            # counts from now, not from before a slow setup (e.g. torch).
            self._last_supervisor = time.monotonic()
            while not self.stopping:
                self.tick()
                self._service_control()
                self._watch_input()
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
        events = dict(self.poller.poll(timeout_ms))
        if any(sock is not self.control for sock in events):
            self._heard = time.monotonic()
        return events

    def _watch_input(self) -> None:
        """Unsupervised: a word when nothing arrives; exit when the run is over."""
        if self.supervised:
            return
        now = time.monotonic()
        if self._heard is None:
            if not self._warned and now - self._started > NO_INPUT_WARN_S:
                self._warned = True
                log.warning("%s: nothing received for %.0f s: is the run started, and does this node hold the "
                            "run's keys (--keys RUN/keys)? A refused CURVE handshake is silent here",
                            self.name, now - self._started)
        elif self.exits_when_idle and now - self._heard > IDLE_EXIT_S:
            log.info("%s: no input for %.0f s: the run has ended; exiting", self.name, now - self._heard)
            self.stopping = True
            self.stop_reason = "run ended"

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
