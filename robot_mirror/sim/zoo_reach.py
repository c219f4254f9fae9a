"""An independent judge of reachability, for the arm zoo.

It reads the URDF itself (xml.etree), computes forward kinematics itself
(numpy, vectorised over many joint vectors), samples the joint space densely
and polishes the best samples with its own finite-difference least squares.
It shares no code with :mod:`robot_mirror.sim.kinematics` (no PyBullet, no
IK call), so when it and ``check-urdf`` agree, neither is grading itself.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_FINGER = re.compile(r"finger|gripper|knuckle", re.IGNORECASE)


@dataclass
class _Joint:
    parent: str
    child: str
    kind: str
    xyz: np.ndarray
    rot: np.ndarray
    axis: np.ndarray
    lower: float
    upper: float


def _rpy(r: float, p: float, y: float) -> np.ndarray:
    cr, sr, cp, sp, cy, sy = math.cos(r), math.sin(r), math.cos(p), math.sin(p), math.cos(y), math.sin(y)
    return np.array([[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                     [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                     [-sp, cp * sr, cp * cr]])


def _floats(text: str | None, default: str) -> list[float]:
    return [float(v) for v in (text or default).split()]


def _parse(path: Path) -> dict[str, _Joint]:
    """Joints by child link name."""
    joints = {}
    for j in ET.parse(path).getroot().findall("joint"):
        origin, axis, limit = j.find("origin"), j.find("axis"), j.find("limit")
        xyz = _floats(origin.get("xyz") if origin is not None else None, "0 0 0")
        rpy = _floats(origin.get("rpy") if origin is not None else None, "0 0 0")
        ax = np.array(_floats(axis.get("xyz") if axis is not None else None, "1 0 0"))
        lo = float(limit.get("lower", 0)) if limit is not None else 0.0
        hi = float(limit.get("upper", 0)) if limit is not None else 0.0
        kind = j.get("type")
        if kind == "continuous" or (kind == "revolute" and lo >= hi):
            lo, hi = -2 * math.pi, 2 * math.pi
        joints[j.find("child").get("link")] = _Joint(
            j.find("parent").get("link"), j.find("child").get("link"), kind, np.array(xyz), _rpy(*rpy),
            ax / (np.linalg.norm(ax) or 1.0), lo, hi)
    return joints


class ReachOracle:
    """Forward kinematics of one arm's chain from the base to ``ee_link``."""

    def __init__(self, urdf: str | Path, ee_link: str, base=(-0.6, 0.0, 0.0), yaw: float = 0.0,
                 tool_offset: float = 0.0) -> None:
        joints = _parse(Path(urdf))
        chain, link = [], ee_link
        while link in joints:
            chain.append(joints[link])
            link = joints[link].parent
        self.chain = chain[::-1]
        self.movable = [j for j in self.chain if j.kind in ("revolute", "continuous", "prismatic")
                        and not _FINGER.search(j.child)]
        self._movable_ids = {id(j) for j in self.movable}
        self.lower = np.array([j.lower for j in self.movable])
        self.upper = np.array([j.upper for j in self.movable])
        self.base_rot = _rpy(0.0, 0.0, yaw)
        self.base_pos = np.asarray(base, float)
        self.tool_offset = tool_offset

    def fk(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tool positions (N, 3) and orientations (N, 3, 3) for joint vectors q (N, dof)."""
        q = np.atleast_2d(q)
        n = len(q)
        rot = np.broadcast_to(self.base_rot, (n, 3, 3)).copy()
        pos = np.broadcast_to(self.base_pos, (n, 3)).copy()
        k = 0
        for j in self.chain:
            pos = pos + rot @ j.xyz
            rot = rot @ j.rot
            if id(j) in self._movable_ids:
                angle = q[:, k]
                k += 1
                if j.kind == "prismatic":
                    pos = pos + (rot @ j.axis) * angle[:, None]
                else:
                    rot = rot @ _axis_angle(j.axis, angle)
        return pos + self.tool_offset * rot[:, :, 2], rot

    def errors(self, q: np.ndarray, target_pos: np.ndarray, target_rot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pos, rot = self.fk(q)
        d = np.linalg.norm(pos - target_pos, axis=1)
        cos = (np.einsum("ij,nij->n", target_rot, rot) - 1.0) / 2.0
        return d, np.arccos(np.clip(cos, -1.0, 1.0))

    def best(self, target_pos, target_rot, samples: int = 40000, polish: int = 12,
             seed: int = 0) -> tuple[float, float]:
        """Smallest (position error m, angle error rad) found: dense random
        samples within the limits, the best ones polished by damped least
        squares on this class's own forward kinematics."""
        rng = np.random.default_rng(seed)
        lo, hi = np.maximum(self.lower, -math.pi), np.minimum(self.upper, math.pi)
        q = rng.uniform(lo, hi, (samples, len(lo)))
        d, a = self.errors(q, target_pos, target_rot)
        order = np.argsort(d + 0.1 * a)[:polish]
        found = [self._polish(q[i], target_pos, target_rot) for i in order]
        return min(found, key=lambda e: e[0] + 0.1 * e[1])

    def _residual(self, q: np.ndarray, target_pos, target_rot) -> np.ndarray:
        pos, rot = self.fk(q)
        r = rot @ target_rot.T  # (N, 3, 3) error rotation
        w = np.stack([r[:, 2, 1] - r[:, 1, 2], r[:, 0, 2] - r[:, 2, 0], r[:, 1, 0] - r[:, 0, 1]], axis=1) / 2
        return np.concatenate([pos - target_pos, 0.3 * w], axis=1)

    def _polish(self, q0: np.ndarray, target_pos, target_rot, steps: int = 150) -> tuple[float, float]:
        q, eps, dof = q0.copy(), 1e-6, len(q0)
        for _ in range(steps):
            probe = np.vstack([q, q + eps * np.eye(dof)])
            res = self._residual(probe, target_pos, target_rot)
            jac = (res[1:] - res[0]).T / eps
            step = np.linalg.solve(jac.T @ jac + 1e-4 * np.eye(dof), -jac.T @ res[0])
            q = np.clip(q + step, self.lower, self.upper)
            if np.linalg.norm(step) < 1e-9:
                break
        d, a = self.errors(q[None], target_pos, target_rot)
        return float(d[0]), float(a[0])


def _axis_angle(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotation matrices (N, 3, 3) about a fixed unit axis by N angles."""
    x, y, z = axis
    k = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    s, c = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def quat_matrix(q) -> np.ndarray:
    """Rotation matrix of an (x, y, z, w) quaternion (here, not geometry.py:
    the oracle keeps its own arithmetic)."""
    x, y, z, w = np.asarray(q, float) / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def reachable(oracle: ReachOracle, poses, pos_tol: float = 0.01, ang_tol: float = 0.1) -> bool:
    """Every pose (7,) within the tolerances check-urdf uses."""
    for pose in poses:
        target = (np.asarray(pose[:3], float), quat_matrix(pose[3:]))
        # Denser each round: poses at the edge of the workspace have few
        # solutions, and a judge that misses them would call a good IK wrong.
        for samples, polish in ((40000, 12), (150000, 40), (400000, 80)):
            d, a = oracle.best(*target, samples=samples, polish=polish)
            if d <= pos_tol and a <= ang_tol:
                break
        else:
            return False
    return True
