"""Build a tower together, one block per turn.

Each arm owns half the blocks, laid out on its side of the shared zone. On
its turn an arm picks one of its blocks, places it on the single tower at the
zone's centre and retreats. Success: all blocks stacked within tolerance and
standing for ``settle_time`` seconds.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from robot_mirror.geometry import top_down_quat
from robot_mirror.sim.tasks.base import Task
from robot_mirror.sim.world import SIDE_COLOURS

# Candidate block spots, as (distance from the tower, lateral offset) in m.
SPOT_DISTANCES = (0.30, 0.38)
SPOT_LATERALS = (-0.24, -0.12, 0.12, 0.24)
# A block on the tower that moves farther than this (m) from where it came to
# rest, while no arm holds it, has been disturbed (knocked, pushed, squashed).
DISTURB_TOL = 0.005
AT_REST = 0.0003  # m per tick: a released block is at rest (referenced) once it moves less


class TowerTask(Task):
    kind = "tower"

    def __init__(self, config, robots) -> None:
        super().__init__(config, robots)
        n = config.blocks
        first = self.names.index(self.first)
        order = [self.names[(first + i) % 2] for i in range(n)]
        self.owner: list[str] = order  # block i belongs to owner[i]; turn order follows it
        self.tower_xy = np.asarray(config.tower_xy, dtype=float)
        self.reset_state()

    def reset_state(self) -> None:
        self.levels: list[int | None] = [None] * self.config.blocks  # block index at each level
        self.stacked = 0
        self._settled_since: float | None = None
        self._success = False
        self._failed = False
        self._peak = 0
        self._previous: np.ndarray | None = None
        self._rest: dict[int, np.ndarray] = {}  # stacked block -> where it came to rest
        self.disturbed: set[int] = set()

    def spots(self, robot_index: int) -> list[np.ndarray]:
        u, v = self.toward_base(self.robots[robot_index])
        return [self.tower_xy + d * u + l * v for d in SPOT_DISTANCES for l in SPOT_LATERALS]

    def build(self, world, rng: np.random.Generator) -> None:
        self.reset_state()
        world.add_marker("zone_marker.urdf", tuple(self.tower_xy))
        cfg = self.config
        half = cfg.block_size / 2
        self.start_xy = np.zeros((cfg.blocks, 2))
        self.start_yaw = np.zeros(cfg.blocks)
        for ri, name in enumerate(self.names):
            mine = [i for i, o in enumerate(self.owner) if o == name]
            spots = self.spots(ri)
            picks = rng.permutation(len(spots))[: len(mine)]
            for block_index, spot_index in zip(mine, picks):
                xy = spots[spot_index] + rng.uniform(-cfg.spot_jitter, cfg.spot_jitter, 2)
                yaw = self.robots[ri].base_yaw + math.radians(
                    rng.uniform(-cfg.spot_yaw_jitter_deg, cfg.spot_yaw_jitter_deg))
                self.start_xy[block_index] = xy
                self.start_yaw[block_index] = yaw
        for i in range(cfg.blocks):
            colour = SIDE_COLOURS[self.names.index(self.owner[i])]
            world.add_block((*self.start_xy[i], half), self.start_yaw[i], colour, cfg.block_size)

    # ----------------------------------------------------------- progress
    def _levels_from_poses(self, poses: np.ndarray, held: dict[str, int | None]) -> list[int | None]:
        size = self.block_size
        tol = self.config.place_tolerance
        held_set = {b for b in held.values() if b is not None}
        levels: list[int | None] = [None] * len(poses)
        # Distances of all blocks in one numpy call, then plain floats: this
        # runs every control tick, and per-row numpy slicing cost ~10 us.
        far = (np.hypot(poses[:, 0] - self.tower_xy[0], poses[:, 1] - self.tower_xy[1]) > tol).tolist()
        for i, (z, is_far) in enumerate(zip(poses[:, 2].tolist(), far)):
            if i in held_set or is_far:
                continue
            level = round(z / size - 0.5)
            if 0 <= level < len(levels) and abs(z - (level + 0.5) * size) < 0.25 * size:
                levels[level] = i
        return levels

    def update(self, t, block_poses, held, events) -> float:
        levels = self._levels_from_poses(block_poses, held)
        stacked = 0
        while stacked < len(levels) and levels[stacked] is not None:
            stacked += 1
        reward = float(stacked - self.stacked)
        if stacked > self.stacked:
            events.append({"t": t, "type": "stacked", "robot": self.owner[levels[stacked - 1]],
                           "level": stacked - 1, "block": levels[stacked - 1]})
        if stacked < self.stacked and not any(b is not None for b in held.values()):
            events.append({"t": t, "type": "tower_fell", "robot": "", "level": stacked})
        self.levels, self.stacked = levels, stacked
        self._track_disturbance(block_poses, held)
        self._peak = max(self._peak, stacked)
        if (block_poses[:, 2] < -0.2).any():
            self._failed = True
        complete = stacked == len(levels) and not any(b is not None for b in held.values())
        if complete:
            if self._settled_since is None:
                self._settled_since = t
            if t - self._settled_since >= self.config.settle_time - 1e-9:
                self._success = True
        else:
            self._settled_since = None
        return reward

    def _track_disturbance(self, poses: np.ndarray, held: dict[str, int | None]) -> None:
        """Count each tower block that leaves its resting place while no arm
        holds it (once per block per episode): an arm's links brushing the
        tower, or an arm pressing a new block down hard enough to squash the
        ones below, show up here even when the tower survives. A block is
        referenced once it is counted on the tower and at rest (a block let
        go a centimetre high is still falling when first counted), and
        forgotten whenever an arm holds it (picked up again after a fall)."""
        held_set = {b for b in held.values() if b is not None}
        previous, self._previous = self._previous, poses[:, :3].copy()
        for b in held_set:
            self._rest.pop(b, None)
        for b in self.levels:
            if b is None or b in held_set or b in self._rest or previous is None:
                continue
            if float(np.linalg.norm(poses[b, :3] - previous[b])) < AT_REST:
                self._rest[b] = poses[b, :3].copy()
        for b, rest in list(self._rest.items()):
            if float(np.linalg.norm(poses[b, :3] - rest)) > DISTURB_TOL:
                self.disturbed.add(b)
                del self._rest[b]

    def has_work(self, robot: str) -> bool:
        placed = {b for b in self.levels if b is not None}
        return any(o == robot and i not in placed for i, o in enumerate(self.owner))

    def observation(self, robot: str) -> dict[str, Any]:
        placed = np.zeros(len(self.owner), dtype=bool)
        for b in self.levels:
            if b is not None:
                placed[b] = True
        return {
            "my_blocks": np.array([o == robot for o in self.owner]),
            "placed": placed,
            "tower_count": self.stacked,
            "tower_xy": self.tower_xy.copy(),
        }

    @property
    def success(self) -> bool:
        return self._success

    @property
    def failed(self) -> bool:
        return self._failed

    def summary(self) -> dict[str, Any]:
        return {"blocks": len(self.owner), "blocks_stacked": self.stacked,
                "tower_disturbances": len(self.disturbed)}

    def reach_poses(self) -> dict[str, list[tuple[str, np.ndarray]]]:
        """Every spot a block may start at, and the top of the finished tower."""
        size = self.block_size
        out: dict[str, list[tuple[str, np.ndarray]]] = {}
        for ri, robot in enumerate(self.robots):
            yaw = robot.base_yaw
            poses = [(f"pick spot {k}", np.array([*xy, size / 2, *top_down_quat(yaw)]))
                     for k, xy in enumerate(self.spots(ri))]
            top = (len(self.owner) - 0.5) * size
            poses.append(("tower top", np.array([*self.tower_xy, top, *top_down_quat(yaw)])))
            out[robot.name] = poses
        return out

