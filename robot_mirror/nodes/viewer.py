"""The viewer process: subscribes to ``state`` like any external program and
logs it to rerun (``launch --viewer`` / ``--rrd``; docs/viewer.md).

It is a subscriber only, so the simulation never waits for it: the sim's
PUB socket drops what a slow subscriber does not take (its high-water
mark), and in lock-step the sim waits for commands, never for readers. It
takes every ``state`` waiting (the turn events of each tick are in its
own message), decodes them all for the timeline, and draws the scene only
for the newest, so a viewer that falls behind skips frames, not events.
It authenticates with its own CURVE key (``viewer``), as an external
program would; the network readouts of the policy processes are not on
the bus, so this node shows the scene and the turn timeline. Started with
the other nodes and never waited for, it misses whatever the bus carried
before it subscribed (its log says when it did).
"""

from __future__ import annotations

import logging

import zmq

from robot_mirror.bus.codec import decode_or_drop
from robot_mirror.bus.wire import decode_state
from robot_mirror.errors import RobotMirrorError
from robot_mirror.nodes.base import Node
from robot_mirror.viewer.config import ViewerConfig
from robot_mirror.viewer.logger import Viewer, mode_of

log = logging.getLogger("robot_mirror.node")

MAX_BATCH = 2000  # states taken per pass: the rest waits for the next pass


class ViewerNode(Node):
    kind = "viewer"
    exits_when_idle = True  # fed every tick: unsupervised, it exits when the run has ended

    def __init__(self, *args, viewer: str | None = None, rrd: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.config = ViewerConfig(connect=viewer, rrd=rrd)
        if not self.config.enabled:
            raise RobotMirrorError("node viewer: give --viewer WHERE ('spawn' or a rerun URL) or --rrd FILE")
        self.live: Viewer | None = None

    def setup(self) -> None:
        self.sub = self.connected(zmq.SUB, self.endpoints.state, subscribe=b"state")
        self.poller.register(self.sub, zmq.POLLIN)
        # One recording per run: a restarted viewer node continues it.
        self.live = Viewer(self.scenario, self.config, recording_id=self.endpoints.state)
        self._key: tuple[int, int] | None = None
        sinks = [s for s in (self.config.connect, self.config.rrd) if s]
        log.info("viewer: reading state at %s, logging to %s", self.endpoints.state, " and ".join(sinks))

    def tick(self) -> None:
        if self.sub not in self.poll():
            return
        states = []
        for _ in range(MAX_BATCH):
            try:
                frames = self.sub.recv_multipart(flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            msg = decode_or_drop(frames, self.drops, "state", trusted=True)  # the sim's own PUB
            if msg is None or msg.kind != "state":
                continue
            key = (msg.fields["episode"], msg.tick)
            if key != self._key:  # lock-step re-sends a tick until answered: the same tick
                self._key = key
                states.append(decode_state(msg))
        for i, state in enumerate(states):
            self._log(state, draw=i == len(states) - 1)

    def _log(self, state, *, draw: bool) -> None:
        live = self.live
        live.begin(state)
        for robot in live.robots:
            live.log_readouts(robot, mode_of(robot, state.holder), state.t, None, None)
        live.log_state(state, draw=draw)

    def teardown(self) -> None:
        if self.live is not None:
            self.live.close()
