"""Rigid-body helpers in plain numpy (no pybullet), shared by the simulator,
perception and policies so every process computes frames the same way.

Quaternions are (x, y, z, w), the PyBullet order; poses are 7-vectors
``(x, y, z, qx, qy, qz, qw)``.
"""

from __future__ import annotations

import math

import numpy as np

TOP_DOWN_ROLL = math.pi  # tool +z pointing to world -z


def quat_from_euler(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """ZYX (yaw-pitch-roll) Euler angles to an (x, y, z, w) quaternion, as PyBullet."""
    cr, sr = math.cos(roll / 2), math.sin(roll / 2)
    cp, sp = math.cos(pitch / 2), math.sin(pitch / 2)
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    return np.array(
        [
            sr * cp * cy - cr * sp * sy,
            cr * sp * cy + sr * cp * sy,
            cr * cp * sy - sr * sp * cy,
            cr * cp * cy + sr * sp * sy,
        ]
    )


def top_down_quat(yaw: float) -> np.ndarray:
    """Orientation of a tool pointing straight down, turned by ``yaw`` about world z."""
    return quat_from_euler(TOP_DOWN_ROLL, 0.0, yaw)


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ]
    )


def quat_conj(q: np.ndarray) -> np.ndarray:
    return np.array([-q[0], -q[1], -q[2], q[3]])


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    x, y, z, w = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def yaw_of(q: np.ndarray) -> float:
    """Heading of the quaternion's x axis projected on the ground plane."""
    m = quat_to_matrix(q)
    return math.atan2(m[1, 0], m[0, 0])


def quat_angle(a: np.ndarray, b: np.ndarray) -> float:
    """Smallest rotation angle between two orientations, radians."""
    d = abs(float(np.dot(a, b)) / (np.linalg.norm(a) * np.linalg.norm(b)))
    return 2.0 * math.acos(min(1.0, d))


def wrap_angle(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


class Frame:
    """A planar-yawed frame (position + yaw about z), e.g. a robot's base.

    Perception expresses what a robot sees of its partner in the observer's own
    base frame, so the same motion looks the same to either arm whichever side
    of the table it stands on.
    """

    def __init__(self, position: np.ndarray, yaw: float) -> None:
        self.position = np.asarray(position, dtype=float)
        self.yaw = float(yaw)
        c, s = math.cos(yaw), math.sin(yaw)
        self._rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        self._quat = quat_from_euler(0.0, 0.0, yaw)

    def points_to_local(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) to this frame."""
        return (np.asarray(points) - self.position) @ self._rot

    def points_to_world(self, points: np.ndarray) -> np.ndarray:
        """Points (..., 3) in this frame to the world (the inverse of :meth:`points_to_local`)."""
        return np.asarray(points, dtype=float) @ self._rot.T + self.position

    def vectors_to_local(self, vectors: np.ndarray) -> np.ndarray:
        """World directions (..., 3) to this frame (rotation only)."""
        return np.asarray(vectors, dtype=float) @ self._rot

    def vectors_to_world(self, vectors: np.ndarray) -> np.ndarray:
        """Directions (..., 3) in this frame to the world (rotation only)."""
        return np.asarray(vectors, dtype=float) @ self._rot.T

    def pose_to_local(self, pose: np.ndarray) -> np.ndarray:
        """World poses (..., 7) to this frame."""
        pose = np.asarray(pose, dtype=float)
        out = np.empty_like(pose)
        out[..., :3] = self.points_to_local(pose[..., :3])
        qi = quat_conj(self._quat)
        flat_in = pose.reshape(-1, 7)
        flat_out = out.reshape(-1, 7)
        for i in range(flat_in.shape[0]):
            flat_out[i, 3:] = quat_mul(qi, flat_in[i, 3:])
        return out
