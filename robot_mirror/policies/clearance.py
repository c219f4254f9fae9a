"""Whole-arm clearance on the expert's kinematic twin.

The expert plans tool paths; the links behind the tool go wherever IK puts
them. An arm with shoulder or elbow offsets can sweep its wrist through the
tower on a joint-space return home, and a bulky arm can poke an elbow into
the shared zone while its tool waits outside it. :class:`Clearance` answers,
for joint angles on the twin (never the simulated robot), how close every
link comes to the shared-zone cylinder and to the observed blocks, and
samples joint and straight-line tool paths for both.

Ghost bodies (a cylinder for the zone, one box per block) live in the twin's
own PyBullet client, which is never stepped, so they touch nothing.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from robot_mirror.geometry import top_down_quat

if TYPE_CHECKING:
    from robot_mirror.sim.kinematics import Kinematics

ZONE_MARGIN = 0.05    # m: an arm without the turn keeps every link this far outside the zone
TOWER_MARGIN = 0.025  # m: links keep this far from any block on approach and retreat
JOINT_STEP = 0.04     # rad between samples of a joint-space path
TOOL_STEP = 0.02      # m between samples of a straight tool path
FAR = 1.0             # m: distances are capped here
ZONE_MEMO = 4         # zone distances remembered (see Clearance.zone_distance)
MAX_TICK_JUMP = 0.10  # rad: no joint of a followed tool path moves more than this between samples
POSTURE_STEP = 0.025  # rad per sample (1.5 rad/s at 60 Hz) while a followed path changes posture
FOLLOW_TOL = 0.02     # m: a warm answer this close to the pose keeps the posture

GEOM_BOX, GEOM_CYLINDER = 3, 4  # pybullet.GEOM_*; importing pybullet here would load it for every policy


def follow_ik(kin: Kinematics, pose: np.ndarray, q: np.ndarray, iterations: int = 1) -> np.ndarray:
    """Joint angles for the next sample ``pose`` of a tool path, from ``q``
    (the previous sample). The twin's IK restarts from other seeds when the
    warm start misses by millimetres and may then answer with another
    posture (1-2 rad away on a Panda, an iiwa, a UR-like arm); commanded as
    is, the arm swings through the tower or the partner in one tick. So a
    jump is re-solved from ``q`` without restarts and kept when it reaches
    the pose (within FOLLOW_TOL) on the same posture. When only the other
    posture reaches it (the same posture ran into a joint limit: a zoo arm
    stood 10 cm short of its block for 20 s), the arm changes posture at
    POSTURE_STEP a tick on the straight joint line, not in one tick."""
    new, err, ang = kin.ik(pose, q, iterations=iterations)
    if float(np.max(np.abs(new - q))) <= MAX_TICK_JUMP:
        return new
    warm, warm_err, warm_ang = kin.ik(pose, q, iterations=max(iterations, 4), restarts=False)
    warm_step = float(np.max(np.abs(warm - q)))
    if warm_step <= MAX_TICK_JUMP and (warm_err < FOLLOW_TOL or warm_err + 0.1 * warm_ang <= err + 0.1 * ang):
        return warm
    goal, limit = (new, POSTURE_STEP) if err + 0.1 * ang < warm_err + 0.1 * warm_ang else (warm, MAX_TICK_JUMP)
    step = float(np.max(np.abs(goal - q)))
    return goal if step <= limit else q + (goal - q) * (limit / step)


class Clearance:
    """Distances from every link of the twin's arm to the zone and the blocks."""

    def __init__(self, kin: Kinematics, zone_center, zone_radius: float, block_size: float) -> None:
        self.kin = kin
        self.client = kin.client
        self.body = kin.arm.body
        self.zone_center = np.asarray(zone_center, float)
        self.zone_radius = float(zone_radius)
        self.block_size = float(block_size)
        self._zone = None
        self._beyond: int | None = None
        self._blocks: list[int] = []
        self._zone_memo: dict[tuple[bytes, float], float] = {}

    # ------------------------------------------------------------ ghosts
    def _zone_ghost(self) -> int:
        if self._zone is None:
            c = self.client
            shape = c.createCollisionShape(GEOM_CYLINDER, radius=self.zone_radius, height=2.0)
            self._zone = c.createMultiBody(0, shape, -1, [*self.zone_center, 0.0])
            c.setCollisionFilterGroupMask(self._zone, -1, 0, 0)
        return self._zone

    def beyond_ghost(self, direction_xy: np.ndarray, offset: float) -> int:
        """A ghost filling the half-space more than ``offset`` past the zone's
        centre along ``direction_xy`` (a unit vector): the partner's side."""
        if self._beyond is None:
            c = self.client
            shape = c.createCollisionShape(GEOM_BOX, halfExtents=[1.0, 3.0, 1.5])
            self._beyond = c.createMultiBody(0, shape, -1, [0.0, 0.0, -10.0])
            c.setCollisionFilterGroupMask(self._beyond, -1, 0, 0)
        d = np.asarray(direction_xy, float)
        center = self.zone_center + d * (offset + 1.0)
        yaw = math.atan2(d[1], d[0])
        self.client.resetBasePositionAndOrientation(self._beyond, [*center, 1.0],
                                                    [0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)])
        return self._beyond

    def _place_blocks(self, blocks: np.ndarray) -> list[int]:
        """One ghost box per pose in ``blocks`` (n, 7), moved there."""
        c = self.client
        while len(self._blocks) < len(blocks):
            half = [self.block_size / 2] * 3
            shape = c.createCollisionShape(GEOM_BOX, halfExtents=half)
            ghost = c.createMultiBody(0, shape, -1, [0.0, 0.0, -10.0])
            c.setCollisionFilterGroupMask(ghost, -1, 0, 0)
            self._blocks.append(ghost)
        for ghost, pose in zip(self._blocks, blocks):
            c.resetBasePositionAndOrientation(ghost, pose[:3].tolist(), pose[3:].tolist())
        for ghost in self._blocks[len(blocks):]:
            c.resetBasePositionAndOrientation(ghost, [0.0, 0.0, -10.0], [0.0, 0.0, 0.0, 1.0])
        return self._blocks[:len(blocks)]

    def _distance(self, ghost: int, cap: float) -> float:
        points = self.client.getClosestPoints(self.body, ghost, cap)
        return min((pt[8] for pt in points), default=cap)

    # ---------------------------------------------------------- queries
    def zone_distance(self, q: np.ndarray, cap: float = FAR) -> float:
        """Closest approach (m, negative inside) of any link to the zone cylinder at ``q``.

        The zone never moves, so the answer depends on ``q`` alone: the last
        few are remembered (an arm off turn checks its new command against
        the one before, which was the new one a tick earlier)."""
        key = (np.asarray(q, dtype=float).tobytes(), float(cap))
        hit = self._zone_memo.get(key)
        if hit is not None:
            return hit
        self.kin.set_q(q)
        distance = self._distance(self._zone_ghost(), cap)
        if len(self._zone_memo) >= ZONE_MEMO:
            self._zone_memo.pop(next(iter(self._zone_memo)))
        self._zone_memo[key] = distance
        return distance

    def block_distance(self, q: np.ndarray, ghosts: list[int], cap: float = FAR) -> float:
        """Closest approach of any link to the ghost blocks at ``q``."""
        self.kin.set_q(q)
        return min((self._distance(g, cap) for g in ghosts), default=cap)

    def obstacles(self, obs, skip: int | None = None) -> list[int]:
        """Ghosts at every observed block but ``skip`` (the one in hand)."""
        blocks = np.asarray(obs["blocks"], float)
        keep = [i for i in range(len(blocks)) if i != skip and blocks[i][2] > -0.1]
        ghosts = self._place_blocks(blocks[keep])
        return ghosts

    # ------------------------------------------------------------ paths
    def joint_path(self, q0: np.ndarray, q1: np.ndarray) -> list[np.ndarray]:
        """Samples of the straight joint-space path ``q0 -> q1`` (the expert's return home)."""
        n = max(1, int(math.ceil(float(np.max(np.abs(q1 - q0))) / JOINT_STEP)))
        return [q0 + (q1 - q0) * (k / n) for k in range(1, n + 1)]

    def tool_path(self, q0: np.ndarray, start: np.ndarray, goal: np.ndarray,
                  yaw: float) -> list[np.ndarray]:
        """Joint samples along a straight tool line ``start -> goal`` (x, y, z),
        each solved from the previous one as the expert's per-tick IK is."""
        n = max(1, int(math.ceil(float(np.linalg.norm(goal - start)) / TOOL_STEP)))
        quat = top_down_quat(yaw)
        q, out = q0, []
        for k in range(1, n + 1):
            point = start + (goal - start) * (k / n)
            q = follow_ik(self.kin, np.array([*point, *quat]), q, iterations=2)
            out.append(q)
        return out

    def path_clear(self, qs: list[np.ndarray], ghosts: list[int], margin: float = TOWER_MARGIN) -> bool:
        """Does every sample keep every link ``margin`` from every ghost block?"""
        return all(self.block_distance(q, ghosts, cap=margin) >= margin for q in qs)


def retreat_waypoints(clr: Clearance, q: np.ndarray, home_q: np.ndarray, yaw: float,
                      ghosts: list[int], lifts=(0.05, 0.10, 0.15, 0.20, 0.30)) -> list[np.ndarray]:
    """Tool waypoints (x, y, z) to pass through before the joint-space return
    home from ``q`` so that no link comes within the margin of a block: none
    when the direct return is clear; else straight up by the smallest lift
    that clears it, or up and then over the home tool position; the highest
    lift when nothing tried is clear (best effort)."""
    if clr.path_clear(clr.joint_path(q, home_q), ghosts):
        return []
    tool = clr.kin.fk(q)[:3]
    over_home = clr.kin.fk(home_q)[:3]
    up = tool
    for lift in lifts:
        up = tool + np.array([0.0, 0.0, lift])
        rise = clr.tool_path(q, tool, up, yaw)
        if clr.path_clear(clr.joint_path(rise[-1], home_q), ghosts):
            return [up]
        over = np.array([over_home[0], over_home[1], up[2]])
        across = clr.tool_path(rise[-1], up, over, yaw)
        if clr.path_clear(across, ghosts) and clr.path_clear(clr.joint_path(across[-1], home_q), ghosts):
            return [up, over]
    return [up]


def approach_height(clr: Clearance, q: np.ndarray, start: np.ndarray, goal: np.ndarray, yaw: float,
                    ghosts: list[int], lifts=(0.0, 0.05, 0.10, 0.15, 0.20)) -> float:
    """The smallest extra height over ``goal`` for which the straight tool
    line ``start -> goal + lift`` keeps every link clear of the blocks (the
    largest tried when none is)."""
    for lift in lifts:
        top = goal + np.array([0.0, 0.0, lift])
        if clr.path_clear(clr.tool_path(q, start, top, yaw), ghosts):
            return lift
    return lifts[-1]
