"""The turn arbiter process: holds the turn token.

For every ``turn_query`` from the sim it applies the rules of
robot_mirror/common/turns.py (grant in order to robots with work, release on
request, reclaim from a holder silent longer than ``silence_timeout``) and
answers with a ``turn`` message, which it also publishes for everyone. The
query carries the last decided holder and turn order, so a restarted
arbiter resumes exactly where the last one stopped. A query whose fields
do not decode (``wire.decode_turn_query`` checks every one used here) is
dropped and counted like any malformed message: no peer can crash the
arbiter.
"""

from __future__ import annotations

import zmq

from robot_mirror.bus.codec import MalformedMessage
from robot_mirror.bus.transport import recv, send_frames
from robot_mirror.bus.wire import TurnDecision, decode_turn_query, encode_turn
from robot_mirror.common.turns import TurnArbiter
from robot_mirror.nodes.base import Node


class TurnNode(Node):
    kind = "turn"

    def setup(self) -> None:
        self.rpc = self.bound(zmq.ROUTER, self.endpoints.turn_rpc, "turn_rpc")
        self.pub = self.bound(zmq.PUB, self.endpoints.turn, "turn")
        self.poller.register(self.rpc, zmq.POLLIN)
        sc = self.scenario
        self.robots = sc.robot_names
        self.first = sc.task.first or self.robots[0]
        self.silence_timeout = sc.bus.silence_timeout

    def tick(self) -> None:
        if self.rpc not in self.poll():
            return
        while True:
            identity, msg = recv(self.rpc, self.drops, "turn_rpc", routed=True)
            if identity is None and msg is None:
                return
            if msg is None or msg.kind != "turn_query":
                continue
            self._answer(identity, msg)

    def _answer(self, identity: bytes, msg) -> None:
        try:
            query = decode_turn_query(msg)
        except MalformedMessage as err:
            self.drops.record(err, "turn_rpc")
            return
        arbiter = TurnArbiter(self.robots, first=self.first, silence_timeout=self.silence_timeout)
        arbiter.restore(query.holder or None, query.next_robot or None)
        has_work = {r: bool(query.has_work.get(r, False)) for r in self.robots}
        last_heard = {r: v for r, v in query.last_heard.items() if r in self.robots}
        events = arbiter.update(msg.t_sim, has_work, last_heard,
                                release_requests=set(query.releases), requests=set(query.requests))
        decision = TurnDecision(query.episode, arbiter.holder or "", arbiter.next_robot or "", events)
        frames = encode_turn(decision, seq=self.next_seq(), tick=msg.tick, t_sim=msg.t_sim)
        send_frames(self.rpc, frames, identity=identity)
        if events:
            send_frames(self.pub, frames)
