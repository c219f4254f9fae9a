"""``TurnTakingEnv``: the whole shared task in one process.

Gymnasium conventions for two agents: ``reset(seed=...)`` returns
``(obs, info)``; ``step(actions)`` takes a mapping robot name -> command and
returns ``(obs, reward, terminated, truncated, info)``, where ``obs`` maps
each robot name to its own observation (plain numpy data) and ``reward`` is
the shared team reward (blocks newly stacked). It is the in-process baseline
that the multi-process system is compared against.
"""

from __future__ import annotations

import time
import weakref
from functools import partial
from typing import Any, Mapping

import numpy as np

from robot_mirror.common.commands import ArmCommand
from robot_mirror.config.scenario import Scenario
from robot_mirror.common.observation import ArmState, LazyObservation, WorldState, build_observation
from robot_mirror.common.perception import Sight, make_observers
from robot_mirror.sim.kinematics import Kinematics
from robot_mirror.sim.reach import require_reachable
from robot_mirror.sim.spec import RobotSpec
from robot_mirror.sim.tasks import make_task
from robot_mirror.sim.world import World
from robot_mirror.sim.zone_probe import ZoneProbe
from robot_mirror.common.turns import TurnArbiter, TurnEvent

MIN_DISTANCE_HZ = 10  # how often the arm-to-arm distance is sampled


class TurnTakingEnv:
    """Two arms, one table, one task, turn taking enforced and measured."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, scenario: Scenario, *, gui: bool = False, check_reach: bool = True,
                 observe: bool = True) -> None:
        self.scenario = scenario
        self.specs = [RobotSpec.from_config(r, scenario.base_dir) for r in scenario.robots]
        self.robot_names = [s.name for s in self.specs]
        self.world = World(scenario.physics_hz, gui=gui)
        self.substeps = scenario.substeps
        self.control_dt = 1.0 / scenario.control_hz
        self.task = make_task(scenario.task, self.specs)
        self._twins: dict[str, Kinematics] = {}
        self._np_random: np.random.Generator | None = None
        self._needs_reset = True
        self._pending: list[weakref.ref] = []   # this tick's observations not built yet
        self._tick_state: WorldState | None = None
        self.episode = -1
        # The sim process publishes world_state() and lets perception build
        # observations; it runs with observe=False and gets None for obs.
        self.observe = observe
        self.world.reset()
        for spec in self.specs:  # load once to fail early on a bad URDF
            self.world.add_arm(spec)
        if check_reach:
            self.check_reachability()

    # ------------------------------------------------------------ helpers
    def twin(self, name: str) -> Kinematics:
        """Kinematic twin of an arm (for ee-pose commands and reach checks)."""
        if name not in self._twins:
            spec = self.specs[self.robot_names.index(name)]
            self._twins[name] = Kinematics(spec, home_reach=self.task.home_reach(spec), zone=self.task.zone)
        return self._twins[name]

    def check_reachability(self) -> None:
        """Every pose the task needs must be reachable from each arm's base."""
        for name, poses in self.task.reach_poses().items():
            require_reachable(self.twin(name), poses, task=self.task)

    @property
    def np_random(self) -> np.random.Generator:
        if self._np_random is None:
            self._np_random = np.random.default_rng(self.scenario.seed)
        return self._np_random

    # ---------------------------------------------------------------- API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start an episode; the turn is decided by this env's own arbiter."""
        self.begin_episode(seed)
        self.settle_turn(self.decide_turn_locally())
        obs = self._observations() if self.observe else None
        return obs, {"events": self._tick_events, "holder": self.arbiter.holder}

    def step(self, actions: Mapping[str, Any]):
        """One control tick: apply ``actions``, step physics, decide the turn here."""
        self.advance(actions)
        self.settle_turn(self.decide_turn_locally())
        return self.step_result()

    # A process that asks a remote arbiter (the sim node) splits each call in
    # two: begin_episode/advance, then settle_turn with the arbiter's decision.
    def begin_episode(self, seed: int | None = None) -> None:
        """Reset the world and the task for a new episode (turn not yet decided)."""
        self._settle_pending()
        if seed is not None:
            self._np_random = np.random.default_rng(seed)
        rng = self.np_random
        w = self.world
        w.reset()
        self.episode += 1
        self.arms = {s.name: w.add_arm(s) for s in self.specs}
        self.task.build(w, rng)
        self.zone_probe = ZoneProbe(w.client, self.task.zone, stepped=True)
        for name, arm in self.arms.items():
            home = self.twin(name).home_q
            arm.reset_joints(home)
            arm.command_joints(home)
            arm.command_gripper(0.0, w.blocks)
        self.episode_seed = int(seed) if seed is not None else self.scenario.seed
        self.observers = make_observers(self.scenario, self.episode_seed)
        self.arbiter = TurnArbiter(self.robot_names, first=self.task.first)
        self.t = 0.0
        self.tick = 0
        self.wall_start = time.perf_counter()
        self.episode_events: list[dict] = []  # every event of the episode, reset included
        self.stats = EpisodeStats(self.robot_names)
        self._in_zone = {n: False for n in self.robot_names}
        self._held: dict[str, int | None] = {n: None for n in self.robot_names}
        self._releases: set[str] = set()
        self._requests: set[str] = set()
        self._observe_world()
        self._tick_events: list[dict] = []
        self.task.update(self.t, self._blocks, self._held, self._tick_events)
        self._needs_reset = False

    def advance(self, actions: Mapping[str, Any]) -> None:
        """Apply ``actions`` and step physics by one control tick; the turn
        requests and releases they carry wait for :meth:`settle_turn`."""
        if self._needs_reset:
            raise RuntimeError("call reset() before step(), and again after an episode ends")
        unknown = set(actions) - set(self.robot_names)
        if unknown:
            raise KeyError(f"unknown robots in actions: {sorted(unknown)}; robots: {self.robot_names}")
        self._settle_pending()
        self._releases, self._requests = set(), set()
        for name, raw in actions.items():
            cmd = ArmCommand.coerce(raw)
            if cmd is None:
                continue
            self._apply(name, cmd)
            if cmd.turn == "release":
                self._releases.add(name)
            elif cmd.turn == "request":
                self._requests.add(name)
        self.world.step(self.substeps)
        self.tick += 1
        self.t = self.tick * self.control_dt
        self._tick_events = []
        self._observe_world()
        self._zone_update(self._tick_events)
        self._track_grasps(dict(self._held), self._tick_events)
        self._reward = self.task.update(self.t, self._blocks, self._held, self._tick_events)
        self._sample_min_distance()

    def turn_inputs(self) -> tuple[dict[str, bool], set[str], set[str]]:
        """What the turn rules need now: who has work, who released, who requested."""
        has_work = {n: self.task.has_work(n) for n in self.robot_names}
        return has_work, set(self._releases), set(self._requests)

    def decide_turn_locally(self) -> list[TurnEvent]:
        has_work, releases, requests = self.turn_inputs()
        return self.arbiter.update(self.t, has_work, release_requests=releases, requests=requests)

    def settle_turn(self, turn_events: list[TurnEvent], holder: str | None = None,
                    next_robot: str | None = None) -> None:
        """Record the turn decision for this tick. A remote arbiter's token
        state (``holder``, ``next_robot``) replaces the local one."""
        if holder is not None:
            self.arbiter.restore(holder or None, next_robot)
        for ev in turn_events:
            kind = {"grant": "turn_start", "release": "turn_end", "reclaim": "turn_end"}[ev.kind]
            self._tick_events.append({"t": ev.t, "type": kind, "robot": ev.robot, "reason": ev.reason or ev.kind})
            self.stats.turn_event(kind, ev.robot, ev.t)
            self.task.on_turn(kind, ev.robot, ev.t)
        self.episode_events.extend(self._tick_events)

    def step_result(self):
        """The Gymnasium 5-tuple of the tick just advanced and settled."""
        terminated = self.task.success or self.task.failed
        truncated = not terminated and self.t >= self.scenario.task.time_limit - 1e-9
        if terminated or truncated:
            self._needs_reset = True
        info = {"events": self._tick_events, "holder": self.arbiter.holder, "t": self.t}
        return (self._observations() if self.observe else None), self._reward, terminated, truncated, info

    def _sample_min_distance(self) -> None:
        if self.tick % max(1, self.scenario.control_hz // MIN_DISTANCE_HZ) == 0:
            a, b = self.robot_names
            # Only the running minimum is kept, so ask only for points closer
            # than it: same figure, but PyBullet skips every link pair that is
            # farther (a 1 m query on two arms costs ~6x more).
            best = self.stats.min_distance
            self.stats.min_distance = min(best, self.world.min_distance(a, b, cap=best))

    def close(self) -> None:
        self._settle_pending()
        for twin in self._twins.values():
            twin.close()
        self._twins.clear()
        self.world.close()

    def render(self) -> np.ndarray:
        return self.world.render()

    # ----------------------------------------------------------- internals
    def _apply(self, name: str, cmd: ArmCommand) -> None:
        arm = self.arms[name]
        if cmd.q_target is not None:
            arm.command_joints(cmd.q_target)
        elif cmd.ee_pose is not None:
            q, _ = arm.joint_state()
            solution, _, _ = self.twin(name).ik(np.asarray(cmd.ee_pose, float), q, iterations=2)
            arm.command_joints(solution)
        arm.command_gripper(cmd.gripper, self.world.blocks)

    def _observe_world(self) -> None:
        """What every tick needs (the task reads the blocks). The arms' state
        is read on first use in the tick (:meth:`_arms_now`): a trainer that
        drops the observation never pays for it."""
        self._blocks = self.world.block_poses()
        self._arm_state: dict[str, tuple] | None = None

    def _arms_now(self) -> dict[str, tuple]:
        """Each arm's ``(q, dq, tool pose, gripper, keypoints)`` at this tick."""
        if self._arm_state is None:
            self._arm_state = {name: arm.read_state() for name, arm in self.arms.items()}
        return self._arm_state

    def _zone_update(self, events: list[dict]) -> None:
        holder = self.arbiter.holder
        for name, arm in self.arms.items():
            inside = self.zone_probe.arm_inside(arm)
            was = self._in_zone[name]
            if inside and not was:
                events.append({"t": self.t, "type": "zone_enter", "robot": name})
                self.stats.zone_enter(name, self.t)
                if holder != name:
                    events.append({"t": self.t, "type": "violation", "robot": name})
                    self.stats.violations += 1
            elif was and not inside:
                events.append({"t": self.t, "type": "zone_exit", "robot": name})
                self.stats.zone_exit(name, self.t)
            self._in_zone[name] = inside

    def _track_grasps(self, prev: dict[str, int | None], events: list[dict]) -> None:
        blocks = self.world.blocks
        for name, arm in self.arms.items():
            body = arm.grasped_block(blocks)
            index = blocks.index(body) if body is not None else None
            if index != prev[name]:
                if prev[name] is not None:
                    events.append({"t": self.t, "type": "release", "robot": name, "block": prev[name]})
                if index is not None:
                    events.append({"t": self.t, "type": "grasp", "robot": name, "block": index})
            self._held[name] = index

    def arm_q(self, name: str) -> np.ndarray:
        """Joint angles of ``name`` as observed at the last tick."""
        return self._arms_now()[name][0]

    def arm_in_zone(self, name: str) -> bool:
        return self._in_zone[name]

    def world_state(self, events: list[dict] | None = None) -> WorldState:
        """This tick's state as plain data (what the sim process publishes)."""
        arms = {}
        arm_state = self._arms_now()
        for name in self.robot_names:
            q, dq, tool, grip, keys = arm_state[name]
            held = self._held[name]
            arms[name] = ArmState(q, dq, tool, grip, keys, -1 if held is None else held, self._in_zone[name])
        return WorldState(
            t=self.t, tick=self.tick, episode=self.episode, seed=self.episode_seed,
            holder=self.arbiter.holder or "", arms=arms, blocks=self._blocks,
            task_obs={n: self.task.observation(n) for n in self.robot_names},
            events=events or [], done=self._needs_reset,
        )

    def _observations(self) -> dict[str, Mapping[str, Any]]:
        """Each robot's observation of this tick, built on first read; one
        still unread when the world moves on is built then (see
        :meth:`_settle_pending`), so what a reader sees never depends on when
        it reads. A perception model with memory (delay, drops, noise) is
        fed every tick, as the perception process does; only its frame
        change waits for a reader."""
        sights: dict[str, Sight | None] = dict.fromkeys(self.robot_names)
        if not all(o.stateless for o in self.observers.values()):
            arms = self._arms_now()  # (q, dq, tool pose, gripper, keypoints)
            for name, partner in zip(self.robot_names, self.robot_names[::-1]):
                _, _, tool, grip, keys = arms[partner]
                sights[name] = self.observers[name].feed(tool, keys, grip)
        obs = {n: LazyObservation(partial(self._build_observation, n, sights[n])) for n in self.robot_names}
        self._pending = [weakref.ref(o) for o in obs.values()]
        return obs

    def _build_observation(self, name: str, sight: Sight | None) -> dict[str, Any]:
        if self._tick_state is None:
            self._tick_state = self.world_state()
        seen = sight.view() if sight is not None else None
        return build_observation(self._tick_state, name, self.observers[name], seen)

    def _settle_pending(self) -> None:
        """Build the observations someone still holds before the world changes;
        those nobody holds any more are gone and cost nothing."""
        for ref in self._pending:
            obs = ref()
            if obs is not None:
                obs.build()
        self._pending = []
        self._tick_state = None

    # ------------------------------------------------------------ summary
    def episode_summary(self) -> dict[str, Any]:
        """Figures of the episode so far (see docs/summary.md for the schema)."""
        wall = time.perf_counter() - self.wall_start
        s = self.stats
        return {
            "success": bool(self.task.success),
            "turns": s.turns,
            "turn_durations": [round(d, 4) for d in s.turn_durations],
            "handoff_gaps": [round(g, 4) for g in s.handoff_gaps],
            "zone_violations": s.violations,
            "min_arm_distance": round(s.min_distance, 4),
            "sim_seconds": round(self.t, 4),
            "wall_seconds": round(wall, 4),
            "real_time_factor": round(self.t / wall, 3) if wall > 0 else None,
            "clamped_commands": sum(a.clamped_commands for a in self.arms.values()),
            **self.task.summary(),
        }


class EpisodeStats:
    """Turn, zone and hand-off bookkeeping for one episode."""

    def __init__(self, names: list[str]) -> None:
        self.turns = 0
        self.turn_durations: list[float] = []
        self.handoff_gaps: list[float] = []
        self.violations = 0
        self.min_distance = 1.0  # m; sampled distances are capped there
        self._turn_start: dict[str, float] = {}
        self._last_exit: tuple[str, float] | None = None

    def turn_event(self, kind: str, robot: str, t: float) -> None:
        if kind == "turn_start":
            self.turns += 1
            self._turn_start[robot] = t
        elif robot in self._turn_start:
            self.turn_durations.append(t - self._turn_start.pop(robot))

    def zone_exit(self, robot: str, t: float) -> None:
        self._last_exit = (robot, t)

    def zone_enter(self, robot: str, t: float) -> None:
        if self._last_exit is not None and self._last_exit[0] != robot:
            self.handoff_gaps.append(t - self._last_exit[1])
        self._last_exit = None
