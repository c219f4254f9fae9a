"""How the sim node settles each tick's turn with the arbiter process.

A mixin of :class:`robot_mirror.nodes.sim.SimNode`, kept apart so the sim's
loop and its turn bookkeeping each stay readable. Two rules live here:

* an arm without a controller (absent) is never granted the turn: its
  ``has_work`` is sent as false, so the turn passes to the next arm (counted
  as ``turns_passed``), and a turn it holds because its controller never
  came is given back at once;
* in real time the arbiter's answers arrive ticks after their questions, and
  several questions may be in flight. An answer is applied only if the turn
  state it was asked about is still the current one; an answer to a question
  about a state that an earlier answer already replaced is discarded, so a
  grant is never applied twice (the duplicated ``turn_start`` events of
  issue 8, item 14);
* an arm whose controller has not spoken yet is not "silent" (real time
  starts before the policy processes connect).
"""

from __future__ import annotations

import time

from robot_mirror.bus.codec import MalformedMessage, Message
from robot_mirror.bus.transport import recv, send_frames
from robot_mirror.bus.wire import TurnDecision, TurnQuery, decode_turn, encode_turn_query
from robot_mirror.common.turns import TurnEvent

TURN_RETRY_S = 0.5   # re-ask a silent arbiter this often
MAX_IN_FLIGHT = 256  # real time: questions remembered while their answers are due


def fold_decisions(replies: list[tuple[tuple[str, str] | None, TurnDecision]], holder: str, next_robot: str
                   ) -> tuple[list[TurnEvent], str, str]:
    """Apply real-time answers in arrival order. Each comes with the
    ``(holder, next)`` its question was asked about (None: not asked by us,
    or already answered); it counts only while that is still the state."""
    events: list[TurnEvent] = []
    for asked, decision in replies:
        if asked != (holder, next_robot):
            continue  # answers a question about a state already replaced
        events.extend(decision.events)
        holder, next_robot = decision.holder, decision.next_robot or next_robot
    return events, holder, next_robot


class TurnClient:
    """The sim node's side of the arbiter conversation (a mixin)."""

    def _turn_inputs(self) -> tuple[dict[str, bool], set[str], set[str]]:
        """The env's turn inputs, with absent arms taken out of the running."""
        env = self.env
        has_work, releases, requests = env.turn_inputs()
        holder, next_robot = env.arbiter.holder, env.arbiter.next_robot
        for name, link in self.links.items():
            if holder is not None:
                link.passed = False  # someone holds the turn: the next pass is a new one
            if not link.absent:
                continue
            if has_work.get(name) and holder is None and next_robot == name and not link.passed:
                link.counters["turns_passed"] += 1
                link.passed = True
            has_work[name] = False
            if holder == name and link.owner is None:
                releases.add(name)  # granted before we knew its controller never came
        return has_work, releases, requests

    def decide_turn(self) -> bool:
        """Settle this tick's turn with the arbiter process; False if the node
        is stopping before it answered (lock-step waits for the answer)."""
        env = self.env
        has_work, releases, requests = self._turn_inputs()
        # An arm whose controller has not spoken yet is waited for, not
        # "silent": real time has no start handshake, and reclaiming from two
        # arms whose policies are still starting churned the turn every tick.
        # bus.controller_timeout makes it absent if nobody ever comes.
        heard = {n: float(l.last_sim) if l.owner is not None else env.t for n, l in self.links.items()}
        rules = self.turn_rules
        rules.restore(env.arbiter.holder, env.arbiter.next_robot)
        if not rules.may_change(env.t, has_work, heard, releases, requests):
            env.settle_turn([])
            return True
        query = TurnQuery(env.episode, has_work, sorted(releases), sorted(requests), heard,
                          env.arbiter.holder or "", env.arbiter.next_robot or "")
        if not self.lockstep:
            events, holder, next_robot = self._realtime_answers(query)
            env.settle_turn(events, holder, next_robot or env.arbiter.next_robot)
            return not self.stopping
        decision = self._ask_arbiter(query)
        if decision is None:
            env.settle_turn([])
            return False
        env.settle_turn(decision.events, decision.holder, decision.next_robot or env.arbiter.next_robot)
        return True

    def _send_query(self, query: TurnQuery) -> None:
        send_frames(self.turn_rpc, encode_turn_query(query, seq=self.next_seq(), tick=self.env.tick,
                                                     t_sim=self.env.t))

    def _turn_replies(self, episode: int, tick: int | None = None) -> list[Message]:
        """Every ``turn`` waiting on the arbiter socket for this episode (and tick)."""
        out = []
        while True:
            _, msg = recv(self.turn_rpc, self.drops, "turn_rpc")
            if msg is None:
                return out
            if msg.kind == "turn" and msg.fields["episode"] == episode and tick in (None, msg.tick):
                out.append(msg)

    def _realtime_answers(self, query: TurnQuery) -> tuple[list[TurnEvent], str, str]:
        """Ask, then apply whatever answers have arrived (never wait)."""
        asked = self._asked
        key = (query.episode, self.env.tick)
        asked[key] = (query.holder, query.next_robot)
        while len(asked) > MAX_IN_FLIGHT:
            del asked[next(iter(asked))]
        self._send_query(query)
        replies = []
        for msg in self._turn_replies(query.episode):
            try:
                replies.append((asked.pop((query.episode, msg.tick), None), decode_turn(msg)))
            except MalformedMessage as err:
                self.drops.record(err, "turn_rpc")
        return fold_decisions(replies, query.holder, query.next_robot)

    def _ask_arbiter(self, query: TurnQuery) -> TurnDecision | None:
        """Lock-step: ask and wait for the answer to exactly this tick."""
        tick = self.env.tick
        self._send_query(query)
        asked = time.monotonic()
        while not self.stopping:
            if self.turn_rpc in self.poll(50):
                for msg in self._turn_replies(query.episode, tick):
                    try:
                        return decode_turn(msg)
                    except MalformedMessage as err:
                        self.drops.record(err, "turn_rpc")
            self._service_control()
            if time.monotonic() - asked > TURN_RETRY_S:  # arbiter restarting: ask again
                self._send_query(query)
                asked = time.monotonic()
        return None
