"""A home (waiting) pose that keeps every link of the arm out of the shared zone.

The home pose is solved for the tool alone: pointing down a fixed distance in
front of the base. Which posture IK returns for it is an accident of the
seed, and on some arms (a UR-like shoulder offset, a plain arm whose elbow
folds forward) the forearm of that posture pokes centimetres into the shared
zone while the tool rests well outside it. An arm at home is by definition
not taking its turn, so there it is a zone violation before it has moved.

:func:`clear_home` keeps the solved pose when every link is ``margin`` away
from the zone cylinder; else it tries the other postures for the same tool
pose (every start of the twin's multi-start), then tool poses backed off
toward the base and raised, and returns the first posture that is clear
(nearest the rest posture among those for one tool pose); failing all, the
one with the most clearance.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pybullet as p

from robot_mirror.sim.zone import SharedZone

# The twin (a robot_mirror.sim.kinematics.Kinematics) is typed Any here:
# kinematics imports this module, and naming it back would close a cycle.
Kinematics = Any

HOME_ZONE_MARGIN = 0.05  # m: every link of an arm at home keeps this far out of the zone (the expert's ZONE_MARGIN)
# (back toward the base, up) in m: the tool poses tried, in order.
BACK_OFFS = ((0.0, 0.0), (0.0, 0.05), (0.05, 0.0), (0.05, 0.05), (0.10, 0.05), (0.10, 0.10), (0.15, 0.10))


def zone_clearance(kin: Kinematics, q: np.ndarray, zone: SharedZone, cap: float = 1.0) -> float:
    """Closest approach (m; negative inside) of any link of the twin at ``q`` to the zone cylinder."""
    ghost = _zone_ghost(kin, zone)
    kin.set_q(q)
    points = kin.client.getClosestPoints(kin.arm.body, ghost, cap)
    return min((pt[8] for pt in points), default=cap)


def _zone_ghost(kin: Kinematics, zone: SharedZone) -> int:
    """A collision-free cylinder for ``zone`` in the twin's own client (made once)."""
    ghost = getattr(kin, "_home_zone_ghost", None)
    if ghost is None:
        c = kin.client
        shape = c.createCollisionShape(p.GEOM_CYLINDER, radius=zone.radius, height=zone.height)
        ghost = c.createMultiBody(0, shape, -1, [*zone.center_xy, zone.height / 2])
        c.setCollisionFilterGroupMask(ghost, -1, 0, 0)
        kin._home_zone_ghost = ghost
    return ghost


def clear_home(kin: Kinematics, pose: np.ndarray, q: np.ndarray, zone: SharedZone,
               margin: float = HOME_ZONE_MARGIN) -> np.ndarray:
    """``q`` (the solved home posture for tool ``pose``) if it keeps every
    link ``margin`` from ``zone``; else the first clear posture found (see
    the module docstring); else the one with the most clearance."""
    if zone_clearance(kin, q, zone, cap=margin) >= margin:
        return q
    base = np.asarray(kin.spec.base_position[:2], float)
    back = base - np.asarray(pose[:2], float)
    back /= max(float(np.linalg.norm(back)), 1e-9)
    best, best_clear = q, zone_clearance(kin, q, zone)
    starts = [kin.arm.rest_q, q, *kin.halton_seeds()]
    for off, up in BACK_OFFS:
        target = np.array([*(pose[:2] + back * off), pose[2] + up, *pose[3:]])
        clear = []
        for start in starts:
            cand, err, ang = kin.ik(target, start, iterations=4, restarts=False)
            if err > 2e-3 or ang > 0.02:
                continue
            distance = zone_clearance(kin, cand, zone)
            if distance >= margin:
                clear.append(cand)
            if distance > best_clear:
                best, best_clear = cand, distance
        if clear:
            return min(clear, key=lambda c: float(np.sum((c - kin.arm.rest_q) ** 2)))
    return best if math.isfinite(best_clear) else q
