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
still) and answered with ``refused_zone``. Every command is checked and
answered by the command desk (``nodes/sim_commands.py``); the turn is
settled with the arbiter by ``nodes/sim_turns.py``.

An arm whose controller never connects within ``bus.controller_timeout``
wall seconds is announced in one log line, holds still, never gets the turn
(its turns pass, counted) and is listed in the episode summary under
``absent_controllers``.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import zmq

from robot_mirror.bus.transport import endpoint_counts, send_frames
from robot_mirror.bus.wire import encode_episode, encode_state
from robot_mirror.common.commands import ArmCommand
from robot_mirror.common.turns import TurnArbiter
from robot_mirror.env import TurnTakingEnv
from robot_mirror.nodes.base import Node
from robot_mirror.nodes.sim_commands import CommandDesk, RobotLink
from robot_mirror.nodes.sim_turns import TurnClient
from robot_mirror.nodes.zone_guard import ZoneGuard

RESEND_S = 0.25      # lock-step: re-send an unanswered state this often

log = logging.getLogger("robot_mirror.node")


class SimNode(CommandDesk, TurnClient, Node):
    kind = "sim"

    def __init__(self, *args, record: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.record_dir = record
        self.recorder = None

    def setup(self) -> None:
        sc = self.scenario
        self.pub = self.bound(zmq.PUB, self.endpoints.state, "state")
        self.cmd = self.bound(zmq.ROUTER, self.endpoints.cmd, "cmd")
        self.turn_rpc = self.connected(zmq.DEALER, self.endpoints.turn_rpc)  # the arbiter admits the sim's key only
        self.poller.register(self.cmd, zmq.POLLIN)
        self.poller.register(self.turn_rpc, zmq.POLLIN)
        self.lockstep = sc.bus.mode == "lockstep"
        self.env = TurnTakingEnv(sc, observe=False)
        # The turn process decides; these rules only tell when it provably
        # would not change anything, so most ticks skip the round trip.
        self.turn_rules = TurnArbiter(self.env.robot_names, first=self.env.task.first,
                                      silence_timeout=sc.bus.silence_timeout)
        self.links = {name: RobotLink(name) for name in self.env.robot_names}
        self.command_events: dict[tuple[str, str], dict] = {}  # requests and refusals for the next state
        self.guard = ZoneGuard(self.env)
        self.episode_index = 0
        self.finished = False
        self.state_msg: list | None = None
        self.pending_reset = True
        self._asked: dict[tuple[int, int], tuple[str, str]] = {}  # real time: questions in flight
        self._last_publish = 0.0
        self._next_wall: float | None = None
        self._first_publish = time.monotonic()
        self._run_start: float | None = None  # wall time the first state went out
        self.controllers_expired = False      # bus.controller_timeout has passed
        self.latencies: list[float] = []  # lock-step: state published -> every command of that tick in

    def _expire_controllers(self) -> None:
        """``bus.controller_timeout`` passed: every arm nobody has commanded
        yet is absent, announced once, until a controller speaks for it."""
        self.controllers_expired = True
        missing = [l for l in self.links.values() if l.owner is None]
        for link in missing:
            link.absent = True
        if missing:
            log.warning("sim: no controller for %s within bus.controller_timeout = %.1f s: "
                        "the arm holds still and its turns pass until one connects",
                        ", ".join(repr(l.name) for l in missing), self.scenario.bus.controller_timeout)

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
        if self._run_start is None:
            self._run_start = self._last_publish

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
                if tick == 0 and self.episode_index == 0:
                    self._expire_controllers()
                break
        if self.stopping:
            return
        if tick == 0 and self.episode_index == 0:  # the wait for external controllers is not episode time
            self.env.wall_start = time.perf_counter()
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
        if not self.controllers_expired and now - self._run_start > self.scenario.bus.controller_timeout:
            self._expire_controllers()
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
        self.publish_state(info["events"] + self.take_command_events())
        if self.recorder is not None:
            self.recorder.maybe_capture(self.env.t)
        if terminated or truncated:
            self._end_episode()

    def _end_episode(self) -> None:
        sc = self.scenario
        absent = sorted(n for n, l in self.links.items() if l.owner is None and self.controllers_expired)
        summary = {"index": self.episode_index, "seed": sc.seed + self.episode_index,
                   **self.env.episode_summary(), "absent_controllers": absent, "bus": self.bus_counters()}
        if self.recorder is not None:
            summary["video"] = str(self.recorder.close())
            self.recorder = None
        last = self.episode_index + 1 >= sc.episodes
        if self.control is not None:
            send_frames(self.control, encode_episode(self.episode_index, summary, last, seq=self.next_seq()))
        self.episode_index += 1
        for link in self.links.values():
            link.counters = RobotLink(link.name).counters
            link.final_tick = self.env.tick  # its answer to this tick is not stale (obs done)
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
