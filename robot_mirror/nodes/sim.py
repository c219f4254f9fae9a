"""The sim process: owns PyBullet, applies the latest accepted command per
robot, steps, and publishes the world state every control tick.

Lock-step: the state of tick k is published (and re-sent every
``RESEND_S`` until answered, which doubles as the readiness handshake: the
first tick completes only once every subscriber is connected); the sim
steps only after every live policy answered tick k and the arbiter decided
the turn for it. A policy that misses ``command_timeout`` is marked absent
(its arm holds still) and stops being waited for until it speaks again.

Real-time: paced to the wall clock times ``realtime_factor``; the latest
command per robot is applied; a late one reuses the previous; an arm
without commands for ``watchdog`` s is held still. Misses are counted.

The shared-zone rule is enforced here, not trusted to policies: a command
that would bring a non-holding arm into the zone is refused (the arm holds
still) and answered with ``refused_zone``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import zmq

from robot_mirror.bus.codec import MalformedMessage
from robot_mirror.bus.transport import endpoint_counts, recv, send, send_frames
from robot_mirror.bus.wire import TurnQuery, decode_cmd, decode_turn, encode_state, encode_turn_query
from robot_mirror.common.commands import ArmCommand
from robot_mirror.common.turns import TurnArbiter
from robot_mirror.env import TurnTakingEnv
from robot_mirror.nodes.base import Node
from robot_mirror.nodes.zone_guard import ZoneGuard

RESEND_S = 0.25      # lock-step: re-send an unanswered state this often
TURN_RETRY_S = 0.5   # re-ask a silent arbiter this often
CLAIM_TIMEOUT = 2.0  # wall s of silence after which another controller may take an arm over


@dataclass
class RobotLink:
    """What the sim knows about the controller of one robot."""

    name: str
    owner: bytes | None = None
    last_wall: float = 0.0
    last_sim: float = 0.0
    command: ArmCommand | None = None
    command_tick: int = -1
    absent: bool = False
    pending_turn: str = ""
    counters: dict = field(default_factory=lambda: {
        "commands": 0, "refused_zone": 0, "busy": 0, "deadline_misses": 0,
        "watchdog_trips": 0})


class SimNode(Node):
    kind = "sim"

    def __init__(self, *args, record: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.record_dir = record
        self.recorder = None

    def setup(self) -> None:
        sc = self.scenario
        self.pub = self.bound(zmq.PUB, self.endpoints.state, "state")
        self.cmd = self.bound(zmq.ROUTER, self.endpoints.cmd, "cmd")
        self.turn_rpc = self.connected(zmq.DEALER, self.endpoints.turn_rpc, identity="sim")
        self.poller.register(self.cmd, zmq.POLLIN)
        self.poller.register(self.turn_rpc, zmq.POLLIN)
        self.lockstep = sc.bus.mode == "lockstep"
        self.env = TurnTakingEnv(sc, observe=False)
        # The turn process decides; these rules only tell when it provably
        # would not change anything, so most ticks skip the round trip.
        self.turn_rules = TurnArbiter(self.env.robot_names, first=self.env.task.first,
                                      silence_timeout=sc.bus.silence_timeout)
        self.links = {name: RobotLink(name) for name in self.env.robot_names}
        self.guard = ZoneGuard(self.env)
        self.episode_index = 0
        self.finished = False
        self.state_msg: list | None = None
        self.pending_reset = True
        self._turn_reply = None
        self._last_publish = 0.0
        self._next_wall: float | None = None
        self._first_publish = time.monotonic()
        self.latencies: list[float] = []  # lock-step: state published -> every command of that tick in

    # ------------------------------------------------------------ arbiter
    def decide_turn(self) -> bool:
        """Settle this tick's turn with the arbiter process; False if the node
        is stopping before it answered (lock-step waits for the answer)."""
        env = self.env
        has_work, releases, requests = env.turn_inputs()
        heard = {n: float(l.last_sim) for n, l in self.links.items()}
        rules = self.turn_rules
        rules.restore(env.arbiter.holder, env.arbiter.next_robot)
        if not rules.may_change(env.t, has_work, heard, releases, requests):
            env.settle_turn([])
            return True
        query = TurnQuery(env.episode, has_work, sorted(releases), sorted(requests), heard,
                          env.arbiter.holder or "", env.arbiter.next_robot or "")
        reply = self._ask_arbiter(query)
        if reply is None:  # real-time and no decision yet: keep the last one
            env.settle_turn([])
            return not self.stopping
        decision = decode_turn(reply)
        env.settle_turn(decision.events, decision.holder, decision.next_robot or env.arbiter.next_robot)
        return True

    def _ask_arbiter(self, query: TurnQuery):
        tick, t = self.env.tick, self.env.t

        def ask() -> None:
            send_frames(self.turn_rpc, encode_turn_query(query, seq=self.next_seq(), tick=tick, t_sim=t))

        ask()
        if not self.lockstep:
            reply = None
            while True:  # newest decision wins
                _, msg = recv(self.turn_rpc, self.drops, "turn_rpc")
                if msg is None:
                    return reply
                if msg.kind == "turn" and msg.fields["episode"] == query.episode:
                    reply = msg
        asked = time.monotonic()
        while not self.stopping:
            if self.turn_rpc in self.poll(50):
                _, msg = recv(self.turn_rpc, self.drops, "turn_rpc")
                if msg is not None and msg.kind == "turn" and msg.tick == tick \
                        and msg.fields["episode"] == query.episode:
                    return msg
            self._service_control()
            if time.monotonic() - asked > TURN_RETRY_S:  # arbiter restarting: ask again
                ask()
                asked = time.monotonic()
        return None

    # --------------------------------------------------------------- loop
    def tick(self) -> None:
        if self.finished:
            self.poll(50)
            self._drain_commands()
            return
        if self.pending_reset:
            self._start_episode()
            return
        if self.lockstep:
            self._lockstep_tick()
        else:
            self._realtime_tick()

    def _start_episode(self) -> None:
        sc = self.scenario
        for link in self.links.values():
            link.command, link.command_tick, link.pending_turn = None, -1, ""
            link.last_sim = 0.0
        self.env.begin_episode(seed=sc.seed + self.episode_index)
        if not self.decide_turn():
            return
        if self.record_dir:
            from pathlib import Path

            from robot_mirror.sim.recorder import Recorder

            self.recorder = Recorder(self.env.world, Path(self.record_dir) / f"episode_{self.episode_index:03d}")
        self.pending_reset = False
        self._next_wall = None
        self.publish_state([])

    def publish_state(self, events: list[dict]) -> None:
        state = self.env.world_state(events)
        self.state_msg = encode_state(state, self.next_seq())
        self._publish()
        self._first_publish = self._last_publish

    def _publish(self) -> None:
        try:
            self.pub.send_multipart(self.state_msg, flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            pass
        self._last_publish = time.monotonic()

    # ----------------------------------------------------------- commands
    def _drain_commands(self) -> None:
        while True:
            identity, msg = recv(self.cmd, self.drops, "cmd", routed=True)
            if identity is None and msg is None:
                return
            if msg is not None and identity is not None:
                self._accept(identity, msg)
            elif identity is not None:
                send(self.cmd, "reply", "reply", identity=identity, robot=self.env.robot_names[0],
                     fields={"ok": False, "code": "bad_message", "message": "malformed message dropped",
                             "clamped": 0, "ack": -1})

    def _reply(self, identity: bytes, robot: str, ok: bool, code: str, message: str, clamped: int, ack: int) -> None:
        send(self.cmd, "reply", "reply", identity=identity, robot=robot, seq=self.next_seq(), tick=self.env.tick,
             fields={"ok": ok, "code": code, "message": message, "clamped": clamped, "ack": ack}, validate=False)

    def _accept(self, identity: bytes, msg) -> None:
        if msg.kind == "hello":  # a controller announcing itself
            return
        if msg.kind != "cmd":
            self.drops.record(_unexpected(msg.kind), "cmd")
            return
        robot = msg.robot
        link = self.links.get(robot)
        if link is None:
            self._reply(identity, robot, False, "unknown_robot",
                        f"no robot '{robot}'; robots: {', '.join(self.links)}", 0, msg.seq)
            return
        now = time.monotonic()
        if link.owner is not None and link.owner != identity and now - link.last_wall < CLAIM_TIMEOUT:
            link.counters["busy"] += 1
            self._reply(identity, robot, False, "busy",
                        f"robot '{robot}' already has a controller; one controller per arm", 0, msg.seq)
            return
        link.owner = identity
        link.last_wall = now
        link.absent = False
        late = self.lockstep and 0 <= msg.tick < self.env.tick  # a tick already stepped (a re-sent state)
        if msg.tick > self.env.tick or late:  # ahead: a late command from the previous episode
            self._reply(identity, robot, False, "stale",
                        f"tick {msg.tick} is not the current tick {self.env.tick}; command ignored", 0, msg.seq)
            return
        cmd = self._to_command(robot, msg)
        n_clamped = 0
        if cmd.q_target is not None:
            arm = self.env.arms[robot]
            clamped, _ = arm.clamp(cmd.q_target)
            n_clamped = int(np.sum(clamped != cmd.q_target))  # for the reply; the arm counts clamped commands
        code, ok, text = ("clamped", True, f"{n_clamped} joint target(s) clamped") if n_clamped else ("ok", True, "")
        if self.guard.refuses(robot, cmd):
            link.counters["refused_zone"] += 1
            cmd = ArmCommand(q_target=self.env.arm_q(robot).copy(), gripper=cmd.gripper, turn=cmd.turn)
            code, ok, text = "refused_zone", False, f"'{robot}' does not hold the turn; the shared zone is closed to it"
        if cmd.turn:
            link.pending_turn = cmd.turn
        link.command = cmd
        link.command_tick = msg.tick if msg.tick >= 0 else self.env.tick
        link.last_sim = self.env.t
        link.counters["commands"] += 1
        self._reply(identity, robot, ok, code, text, n_clamped, msg.seq)

    def _to_command(self, robot: str, msg) -> ArmCommand:
        """The wire command as joint targets: a tool pose goes through the
        arm's IK here, in the only process that knows the arm's joints."""
        cmd = decode_cmd(msg)
        if cmd.ee_pose is not None:
            q_now = self.env.arm_q(robot)
            q, _, _ = self.env.twin(robot).ik(cmd.ee_pose, q_now, iterations=2)
            return ArmCommand(q_target=q, gripper=cmd.gripper, turn=cmd.turn)
        dof = self.env.arms[robot].dof
        if cmd.q_target.shape != (dof,):
            cmd.q_target = np.resize(cmd.q_target, dof)  # wrong length: treated as clamped to the arm's joints
        return cmd

    # --------------------------------------------------------- lock-step
    def _lockstep_tick(self) -> None:
        tick = self.env.tick
        sc = self.scenario
        waiting_since = self._first_publish
        # The very first tick also waits for external controllers to connect.
        timeout = (sc.bus.controller_timeout if tick == 0 and self.episode_index == 0
                   else sc.bus.command_timeout)
        while not self.stopping:
            waiting = [l for l in self.links.values() if not l.absent and l.command_tick < tick]
            if not waiting:
                break
            self.poll(20)
            self._drain_commands()
            self._service_control()
            now = time.monotonic()
            if now - self._last_publish > RESEND_S:
                self._publish()
            if now - waiting_since > timeout:
                for link in waiting:
                    link.absent = True
                    link.counters["deadline_misses"] += 1
                break
        if self.stopping:
            return
        if not any(l.absent for l in self.links.values()):
            self.latencies.append(time.monotonic() - self._first_publish)
        self._step()

    # ---------------------------------------------------------- real time
    def _realtime_tick(self) -> None:
        dt_wall = self.env.control_dt / self.scenario.bus.realtime_factor
        now = time.monotonic()
        if self._next_wall is None:
            self._next_wall = now
        while now < self._next_wall and not self.stopping:
            self.poll(max(1, int((self._next_wall - now) * 1000)))
            self._drain_commands()
            now = time.monotonic()
        if now - self._next_wall > dt_wall:  # the sim itself fell behind
            self._next_wall = now
        self._next_wall += dt_wall
        self._drain_commands()
        for link in self.links.values():
            if link.command is not None and link.command_tick < self.env.tick - 1:
                link.counters["deadline_misses"] += 1
            if link.command is not None and now - link.last_wall > self.scenario.bus.watchdog:
                if not link.absent:
                    link.counters["watchdog_trips"] += 1
                link.absent = True
                link.command = ArmCommand(q_target=self.env.arm_q(link.name).copy(),
                                          gripper=link.command.gripper)
        self._step()

    # -------------------------------------------------------------- step
    def _step(self) -> None:
        actions = {}
        for name, link in self.links.items():
            cmd = link.command
            if cmd is None:
                continue
            actions[name] = ArmCommand(q_target=cmd.q_target, gripper=cmd.gripper, turn=link.pending_turn)
            link.pending_turn = ""
        self.env.advance(actions)
        if not self.decide_turn():
            return
        _, _, terminated, truncated, info = self.env.step_result()
        self.publish_state(info["events"])
        if self.recorder is not None:
            self.recorder.maybe_capture(self.env.t)
        if terminated or truncated:
            self._end_episode()

    def _end_episode(self) -> None:
        sc = self.scenario
        summary = {"index": self.episode_index, "seed": sc.seed + self.episode_index,
                   **self.env.episode_summary(), "bus": self.bus_counters()}
        if self.recorder is not None:
            summary["video"] = str(self.recorder.close())
            self.recorder = None
        last = self.episode_index + 1 >= sc.episodes
        self.say("episode", fields={"index": self.episode_index, "summary": summary, "last": last})
        self.episode_index += 1
        for link in self.links.values():
            link.counters = RobotLink(link.name).counters
        if last:
            self.finished = True
        else:
            self.pending_reset = True

    def bus_counters(self) -> dict:
        """This episode's bus figures: every count covers this episode only
        (drops since the last episode ended; connections at the sim's two
        endpoints, see transport.EndpointWatch)."""
        lat = np.asarray(self.latencies[1:]) * 1000.0  # tick 0 includes start-up
        self.latencies = []
        dropped, self._drops_mark = self.drops.since(getattr(self, "_drops_mark", {}))
        ends = {what: endpoint_counts(sock) for what, sock in (("state", self.pub), ("cmd", self.cmd))}
        ends_mark, self._ends_mark = getattr(self, "_ends_mark", {}), ends
        return {
            "robots": {n: dict(l.counters) for n, l in self.links.items()},
            "dropped_messages": dropped,
            "endpoints": {what: {k: v - ends_mark.get(what, {}).get(k, 0) for k, v in counts.items()}
                          for what, counts in ends.items() if counts is not None},
            "tick_latency_ms": {"p50": round(float(np.percentile(lat, 50)), 3),
                                "p99": round(float(np.percentile(lat, 99)), 3), "ticks": int(lat.size)}
            if lat.size else None,
        }

    def teardown(self) -> None:
        env = getattr(self, "env", None)
        if env is not None:
            env.close()


def _unexpected(kind: str) -> MalformedMessage:
    return MalformedMessage("kind", f"'{kind}' is not accepted on the cmd socket")
