"""The mirror game: one arm shows, the other imitates, in step.

Each side of the shared zone has ``slots`` target slots, laid out
mirror-symmetrically: slot ``s`` on one side is the reflection of slot ``s``
on the other through the plane halfway between the arms (for two arms facing
each other across the zone, the same world y). Each arm has one block, which
starts every round at a supply spot on its own side, further back. Slots and
supply spots lie outside the shared zone, so each arm works on its own side
and the two never need the same space.

An episode is ``rounds`` rounds; roles alternate, the first leader being
``first`` (default: the first robot). In a round:

1. *lead*: the task draws a slot (seeded) and tells only the leader
   (``target_slot``; the follower sees -1). The leader places its block in
   that slot on its side and gives the turn back **the moment it lets go**
   (it retreats during the follower's turn). Meanwhile the follower may
   pre-position: pick up its own block and hold it over the slot it believes
   the leader is going for (the scripted follower does; see
   :mod:`robot_mirror.policies.imitation_expert`).
2. *follow*: the follower must put its block down in the corresponding slot
   on its own side **within** ``follow_budget`` **seconds of its turn
   starting** (the time from the grant to the release of its block: the
   *follow latency*). No label tells it which slot: it has to have watched
   the leader. A block released in the right slot after the budget scores as
   ``late``, not as a success. So only a belief that was right *before* the
   grant pays: a follower already holding its block over the right slot only
   has to lower it and let go; one whose belief switches late pays the
   travel in time; one that is wrong at the grant lands in the wrong slot or
   is late.
3. *score*: ``SCORE_DELAY`` s after the follower lets go of its block, the
   round is scored (``success``: the block within ``slot_tolerance`` of the
   right slot, in xy, **and** on time), both blocks are put back on their
   supply spots (teleported, zero velocity), and the next round starts one
   control tick later (so the observations already show the blocks back in
   place).

Choosing ``follow_budget`` (default 1.75 s) from the scripted expert's own
timing, never from a network's result. Measured grant-to-release latencies
of the scripted follower (launch/imitation.yaml, Pandas): already holding
its block over the right slot (the oracle) 1.17-1.18 s (confirm the hover,
lower 0.12 m at 0.105 m/s, open the fingers); switching to the adjacent slot
(0.18 m) at the grant 1.57-1.58 s; to a slot two away (0.36 m) 1.92-1.93 s.
The budget is the oracle's 1.18 s plus a 0.57 s margin: a one-slot
correction made at the grant still lands in time, a move to a non-adjacent
slot does not. ``tests/test_imitation_sync.py`` holds the oracle and the
non-adjacent switch to either side of it.

Per round the task records (``round_results``; see docs/summary.md):
``success``, ``placed`` (right slot, whatever the time), ``late``,
``chosen_slot``, ``follow_latency`` (s, grant to release),
``lead_release_t`` (s) and ``last_aim_change`` (s relative to the leader's
release, negative before it: the last time the slot the follower's held
block is nearest to changed; the follower's belief as its arm shows it,
lagging an internal change by about half the travel between two slots).

The episode ends (``success``) once every round has been played;
``summary()`` reports the on-time success rate and per-round results.
The true slot is offered to oracle (ceiling) policies through
:meth:`ImitationTask.true_slot`, never through an observation.

Turn order falls out of ``has_work``: only the arm whose part of the round is
pending has work, so the arbiter's "next in order that has work" rule yields
leader, follower, leader, follower... by role (the follower of a round is the
next round's leader, so it is granted the turn again once the round is
scored).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from robot_mirror.geometry import quat_from_euler, top_down_quat
from robot_mirror.sim.tasks.base import Task
from robot_mirror.sim.world import SIDE_COLOURS

SLOT_DISTANCE = 0.30      # m from the zone centre toward the arm's side
# m, where each arm's block waits (2 cm behind the slot line, toward its base). Not closer to the
# base: at 0.35 (0.25 m in front of a Panda set 0.6 m from the centre) the straight-down grasp
# needs the elbow past its limit halfway down, the IK switches to another posture mid-descent and
# chatters there; the follower then took 2-11 s to grasp, or knocked its block away, and the
# scripted oracle made 19 of 32 rounds on time (seeds 0-7). At 0.32 it made 32 of 32.
SUPPLY_DISTANCE = 0.32
SLOT_PITCH = 0.18         # m between neighbouring slots (K=4: +-0.09, +-0.27) ...
SLOT_SPAN = 0.54          # ... unless K slots would then span more than this
SUPPLY_JITTER = 0.01      # m, random offset of the supply spot each round
SUPPLY_YAW_JITTER_DEG = 10.0
SCORE_DELAY = 0.5         # s after the follower lets go before the round is scored


class ImitationTask(Task):
    kind = "imitation"

    def __init__(self, config, robots) -> None:
        super().__init__(config, robots)
        self.n_slots = int(config.slots)
        self.n_rounds = int(config.rounds)
        self.center = np.asarray(self.zone.center_xy, dtype=float)
        first = self.names.index(self.first)
        self.leaders = [self.names[(first + r) % 2] for r in range(self.n_rounds)]
        # Axis from robot 0's side to robot 1's side (normal of the mirror
        # plane) and the lateral axis shared by both sides.
        u0, _ = self.toward_base(robots[0])
        u1, _ = self.toward_base(robots[1])
        n = u1 - u0
        norm = float(np.linalg.norm(n))
        self.axis = n / norm if norm > 1e-6 else u1
        self.lateral = np.array([-self.axis[1], self.axis[0]])
        pitch = min(SLOT_PITCH, SLOT_SPAN / max(1, self.n_slots - 1))
        self.laterals = (np.arange(self.n_slots) - (self.n_slots - 1) / 2) * pitch
        self.world = None
        self.rng: np.random.Generator | None = None
        self.reset_state()

    # ------------------------------------------------------------ layout
    def _side(self, robot_index: int) -> float:
        return -1.0 if robot_index == 0 else 1.0

    def slot_xy(self, robot_index: int) -> np.ndarray:
        """(K, 2) slot centres on ``robot_index``'s side, world frame."""
        side = self._side(robot_index)
        return np.array([self.center + side * SLOT_DISTANCE * self.axis + l * self.lateral
                         for l in self.laterals])

    def supply_xy(self, robot_index: int) -> np.ndarray:
        return self.center + self._side(robot_index) * SUPPLY_DISTANCE * self.axis

    # ------------------------------------------------------------- state
    def reset_state(self) -> None:
        self.round = 0
        self.phase = "reset"
        self._slot = -1
        self._released_at: float | None = None
        self._was_held = False
        self._leader_slot = -1
        self._leader_error = math.nan
        self._pending_start = False
        self._round_start_t = 0.0
        self._clear_follow_timing()
        self.results: list[dict[str, Any]] = []
        self._failed = False

    def _clear_follow_timing(self) -> None:
        self._lead_release_t: float | None = None
        self._follow_start_t: float | None = None
        self._aim = -1          # slot the follower's held block is nearest to
        self._aim_t: float | None = None

    def leader(self, r: int | None = None) -> str:
        return self.leaders[self.round if r is None else r]

    def follower(self, r: int | None = None) -> str:
        lead = self.leader(r)
        return next(n for n in self.names if n != lead)

    def true_slot(self) -> int:
        """The slot of the round in progress (-1 between rounds / at the end).
        Ground truth for oracle policies and evaluation only: no observation
        carries it to the follower."""
        return self._slot if self.phase in ("lead", "follow", "score") else -1

    def build(self, world, rng: np.random.Generator) -> None:
        self.reset_state()
        self.world = world
        # A private stream drawn once from the episode's generator: the
        # per-round draws then do not depend on anything else using ``rng``.
        self.rng = np.random.default_rng(rng.integers(2**63))
        world.add_marker("zone_marker.urdf", tuple(self.center))
        for ri in range(2):
            for xy in self.slot_xy(ri):
                world.add_marker("slot_marker.urdf", tuple(xy))
        self.block_ids = []
        half = self.block_size / 2
        for ri in range(2):
            xy, yaw = self._supply_pose(ri)
            self.block_ids.append(world.add_block((*xy, half), yaw, SIDE_COLOURS[ri], self.block_size))
        self._start_round(0.0)

    def _supply_pose(self, ri: int) -> tuple[np.ndarray, float]:
        assert self.rng is not None
        xy = self.supply_xy(ri) + self.rng.uniform(-SUPPLY_JITTER, SUPPLY_JITTER, 2)
        yaw = self.robots[ri].base_yaw + math.radians(
            self.rng.uniform(-SUPPLY_YAW_JITTER_DEG, SUPPLY_YAW_JITTER_DEG))
        return xy, yaw

    def _start_round(self, t: float) -> None:
        assert self.rng is not None
        self.phase = "lead"
        self._slot = int(self.rng.integers(self.n_slots))
        self._released_at = None
        self._was_held = False
        self._leader_slot = -1
        self._leader_error = math.nan
        self._pending_start = True  # round_start is emitted by update(), which has the event list
        self._round_start_t = t
        self._clear_follow_timing()

    def _reset_blocks(self) -> None:
        c = self.world.client
        half = self.block_size / 2
        for ri, body in enumerate(self.block_ids):
            xy, yaw = self._supply_pose(ri)
            c.resetBasePositionAndOrientation(body, [float(xy[0]), float(xy[1]), half],
                                              [float(v) for v in quat_from_euler(0.0, 0.0, yaw)])
            c.resetBaseVelocity(body, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0])

    def _nearest_slot(self, robot: str, xy: np.ndarray) -> tuple[int, float]:
        slots = self.slot_xy(self.names.index(robot))
        d = np.hypot(slots[:, 0] - xy[0], slots[:, 1] - xy[1])
        k = int(np.argmin(d))
        return k, float(d[k])

    # ----------------------------------------------------------- progress
    def update(self, t, block_poses, held, events) -> float:
        if np.any(block_poses[:, 2] < -0.2):
            self._failed = True
        if self.phase == "done":
            return 0.0
        if self.phase == "reset":
            self._start_round(t)
        if self._pending_start:
            self._pending_start = False
            events.append({"t": t, "type": "round_start", "robot": self.leader(), "round": self.round,
                           "leader": self.leader(), "follower": self.follower()})
        reward = 0.0
        if self.phase in ("lead", "follow"):
            self._track_aim(t, block_poses, held)
            actor = self.leader() if self.phase == "lead" else self.follower()
            block = self.names.index(actor)
            if held.get(actor) == block:
                self._was_held = True
            elif self._was_held:  # let go of its block: its part is done
                self._was_held = False
                if self.phase == "lead":
                    xy = block_poses[block, :2]
                    k, _ = self._nearest_slot(actor, xy)
                    self._leader_slot = k
                    slots = self.slot_xy(self.names.index(actor))
                    self._leader_error = float(np.hypot(*(xy - slots[self._slot])))
                    self._lead_release_t = t
                    self.phase = "follow"
                else:
                    self.phase = "score"
                    self._released_at = t
        if self.phase == "score" and self._released_at is not None \
                and t - self._released_at >= SCORE_DELAY - 1e-9:
            reward = self._score(t, block_poses, events)
        return reward

    def _track_aim(self, t: float, block_poses: np.ndarray, held: dict[str, int | None]) -> None:
        """While the follower holds its block: the slot it is nearest to, and when that last changed."""
        follow = self.follower()
        fi = self.names.index(follow)
        if held.get(follow) != fi:
            return
        k, _ = self._nearest_slot(follow, block_poses[fi, :2])
        if k != self._aim:
            self._aim, self._aim_t = k, t

    def on_turn(self, kind: str, robot: str, t: float) -> None:
        """The follower's clock starts when its turn does."""
        if kind == "turn_start" and self.phase == "follow" and robot == self.follower() \
                and self._follow_start_t is None:
            self._follow_start_t = t

    def _follow_timing(self) -> dict[str, Any]:
        """Follow latency, lateness and when the follower's aim last changed."""
        start, release, lead = self._follow_start_t, self._released_at, self._lead_release_t
        latency = None if start is None or release is None else release - start
        late = latency is None or latency > self.config.follow_budget + 1e-9
        aim = None if self._aim_t is None or lead is None else round(self._aim_t - lead, 4)
        return {"follow_latency": None if latency is None else round(latency, 4), "late": bool(late),
                "lead_release_t": None if lead is None else round(lead, 4), "last_aim_change": aim}

    def _score(self, t: float, block_poses: np.ndarray, events: list[dict]) -> float:
        lead, follow = self.leader(), self.follower()
        fi = self.names.index(follow)
        xy = block_poses[fi, :2]
        chosen, _ = self._nearest_slot(follow, xy)
        error = float(np.hypot(*(xy - self.slot_xy(fi)[self._slot])))
        placed = error <= self.config.slot_tolerance
        timing = self._follow_timing()
        ok = placed and not timing["late"]
        result = {"round": self.round, "leader": lead, "follower": follow, "slot": self._slot,
                  "leader_slot": self._leader_slot, "leader_error": round(self._leader_error, 4),
                  "chosen_slot": chosen, "error": round(error, 4), "placed": bool(placed), **timing,
                  "success": bool(ok), "duration": round(t - self._round_start_t, 4)}
        self.results.append(result)
        events.append({"t": t, "type": "round_end", "robot": follow, **result})
        self._reset_blocks()
        self.round += 1
        self._slot = -1
        self.phase = "done" if self.round >= self.n_rounds else "reset"
        return 1.0 if ok else 0.0

    def has_work(self, robot: str) -> bool:
        if self.phase == "lead":
            return robot == self.leader()
        if self.phase == "follow":
            return robot == self.follower()
        return False

    def observation(self, robot: str) -> dict[str, Any]:
        ri = self.names.index(robot)
        playing = self.phase != "done"
        if playing:
            role = "leader" if robot == self.leader() else "follower"
        else:
            role = "none"
        slots = np.zeros((self.n_slots, 3))
        slots[:, :2] = self.slot_xy(ri)
        return {
            "role": role,
            "round": self.round,
            "phase": self.phase,
            "target_slot": self._slot if role == "leader" and self.phase in ("lead", "follow", "score") else -1,
            "slots": slots,
            "my_block": ri,
            "partner_block": 1 - ri,
            "tower_xy": self.center.copy(),
        }

    @property
    def success(self) -> bool:
        """Every round was played (how well the follower did: ``summary()``)."""
        return len(self.results) >= self.n_rounds

    @property
    def failed(self) -> bool:
        return self._failed

    def summary(self) -> dict[str, Any]:
        hits = sum(r["success"] for r in self.results)
        latencies = [r["follow_latency"] for r in self.results if r["follow_latency"] is not None]
        return {
            "rounds": self.n_rounds,
            "rounds_played": len(self.results),
            "imitation_successes": hits,
            "imitation_success": round(hits / self.n_rounds, 4),
            "imitation_placed": sum(r["placed"] for r in self.results),
            "late_rounds": sum(r["late"] for r in self.results),
            "mean_follow_latency": round(float(np.mean(latencies)), 4) if latencies else None,
            "round_results": [dict(r) for r in self.results],
        }

    def reach_poses(self) -> dict[str, list[tuple[str, np.ndarray]]]:
        """Every slot and the supply spot, per arm, pointing down at block height."""
        half = self.block_size / 2
        out: dict[str, list[tuple[str, np.ndarray]]] = {}
        for ri, robot in enumerate(self.robots):
            quat = top_down_quat(robot.base_yaw)
            poses = [(f"slot {k}", np.array([*xy, half, *quat])) for k, xy in enumerate(self.slot_xy(ri))]
            poses.append(("supply spot", np.array([*self.supply_xy(ri), half, *quat])))
            # the jittered supply spot nearest the base is the hardest to reach
            near = self.supply_xy(ri) + self._side(ri) * SUPPLY_JITTER * self.axis
            poses.append(("supply spot (jittered toward the base)", np.array([*near, half, *quat])))
            out[robot.name] = poses
        return out
