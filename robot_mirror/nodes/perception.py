"""The perception process: world state in, one observation per robot out.

It is the only path by which a policy learns about its partner, and it
delivers the partner *as observed* (robot_mirror/common/perception.py): observer
frame, noise, delay, drops. A re-sent state (lock-step) is answered with the
same observations, so the delay line never advances twice for one tick.
"""

from __future__ import annotations

import zmq

from robot_mirror.bus.transport import recv_latest
from robot_mirror.bus.wire import decode_state, encode_obs
from robot_mirror.common.observation import build_observation
from robot_mirror.common.perception import make_observers
from robot_mirror.nodes.base import Node


class PerceptionNode(Node):
    kind = "perception"
    exits_when_idle = True  # fed every tick: unsupervised, it exits when the run has ended

    def setup(self) -> None:
        self.sub = self.connected(zmq.SUB, self.endpoints.state, subscribe=b"state")
        self.pub = self.bound(zmq.PUB, self.endpoints.obs, "obs")
        self.poller.register(self.sub, zmq.POLLIN)
        self._key: tuple[int, int] | None = None
        self._episode: int | None = None
        self._sent: list[list] = []

    def tick(self) -> None:
        if self.sub not in self.poll():
            return
        latest = recv_latest(self.sub, self.drops, "state", "state", trusted=True)  # the sim's own PUB
        if latest is None:
            return
        key = (latest.fields["episode"], latest.tick)
        if key != self._key:
            self._key = key
            self._sent = self._observe(latest)
        for frames in self._sent:
            try:
                self.pub.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                pass

    def _observe(self, msg) -> list[list]:
        state = decode_state(msg)
        if state.episode != self._episode:
            self._episode = state.episode
            self.observers = make_observers(self.scenario, state.seed)
        return [
            encode_obs(name, build_observation(state, name, self.observers[name]),
                       tick=state.tick, episode=state.episode, seq=self.next_seq())
            for name in state.arms
        ]
