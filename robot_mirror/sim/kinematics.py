"""A private kinematic twin of an arm: IK and FK without touching the world.

Policies never move the simulated robot to do IK. Each keeps a twin (the same
URDF in its own DIRECT PyBullet client, never stepped), sets it to the
*observed* joint angles and solves there. IK then depends only on what the
policy observed, so the in-process environment and the multi-process system
compute the same commands for the same observations.
"""

from __future__ import annotations

import math

import numpy as np
import pybullet as p
from pybullet_utils.bullet_client import BulletClient

from robot_mirror.geometry import quat_angle, quat_to_matrix, top_down_quat, yaw_of
from robot_mirror.sim.arm import Arm
from robot_mirror.sim.quiet import c_output_suppressed
from robot_mirror.sim.spec import RobotSpec

HOME_REACH = 0.28   # m in front of the base
HOME_HEIGHT = 0.30  # m above the table


class Kinematics:
    def __init__(self, spec: RobotSpec, home_reach: float = HOME_REACH) -> None:
        self.spec = spec
        self.home_reach = home_reach
        with c_output_suppressed():
            self.client = BulletClient(connection_mode=p.DIRECT)
            self.arm = Arm(self.client, spec)
        a = self.arm
        self.dof = a.dof
        self.lower, self.upper = a.lower, a.upper
        n = len(a._movable_order)
        lows, highs, rest = [], [], []
        for j in a._movable_order:
            info = next(x for x in a.arm_joints + a.finger_joints if x.index == j)
            lows.append(info.lower)
            highs.append(info.upper)
            rest.append(info.upper if info in a.finger_joints else 0.0)
        for slot, value in zip(a._arm_slots, a.rest_q):
            rest[slot] = float(value)
        self._ik_lower, self._ik_upper = lows, highs
        self._ik_range = [h - l for l, h in zip(lows, highs)]
        self._ik_rest = rest
        self._ik_damping = [0.01] * n
        self.home_q = (
            np.asarray(spec.home_q, dtype=float) if spec.home_q is not None else self._solve_home()
        )

    def close(self) -> None:
        try:
            self.client.disconnect()
        except p.error:
            pass

    # ------------------------------------------------------------------ FK
    def set_q(self, q: np.ndarray) -> None:
        self.arm.reset_joints(q)

    def fk(self, q: np.ndarray) -> np.ndarray:
        """Tool pose (7,) at joint angles ``q``."""
        self.set_q(q)
        return self.arm.tool_pose()

    def link_aabbs(self, q: np.ndarray) -> list[tuple[tuple, tuple]]:
        self.set_q(q)
        return self.arm.link_aabbs()

    # ------------------------------------------------------------------ IK
    def _link_target(self, pose: np.ndarray) -> np.ndarray:
        """The ee *link frame* position that puts the tool point at ``pose``."""
        pos = np.asarray(pose[:3], dtype=float)
        if self.arm.tool_offset:
            pos = pos - self.arm.tool_offset * quat_to_matrix(pose[3:])[:, 2]
        return pos

    def ik(self, pose: np.ndarray, q_seed: np.ndarray, iterations: int = 4) -> tuple[np.ndarray, float, float]:
        """Joint angles placing the tool at ``pose`` (7,), from ``q_seed``.

        Returns ``(q, position_error_m, orientation_error_rad)`` of the best
        solution. PyBullet's null-space IK respects the joint limits and is
        pulled toward the arm's rest posture on the first pass; later passes
        refine from the previous answer, bringing the error to sub-millimetre.
        """
        pose = np.asarray(pose, dtype=float)
        target = self._link_target(pose).tolist()
        orn = pose[3:].tolist()
        q = np.clip(np.asarray(q_seed, dtype=float), self.lower, self.upper)
        best = (q, math.inf, math.inf)
        rest = self._ik_rest
        for _ in range(iterations):
            self.set_q(q)
            full = self.client.calculateInverseKinematics(
                self.arm.body, self.arm.ee_index, target, orn,
                lowerLimits=self._ik_lower, upperLimits=self._ik_upper,
                jointRanges=self._ik_range, restPoses=rest,
                jointDamping=self._ik_damping,
                maxNumIterations=100, residualThreshold=1e-5,
            )
            q = np.clip(np.array([full[s] for s in self.arm._arm_slots]), self.lower, self.upper)
            reached = self.fk(q)
            err_pos = float(np.linalg.norm(reached[:3] - pose[:3]))
            err_ang = quat_angle(reached[3:], pose[3:])
            if err_pos + 0.1 * err_ang < best[1] + 0.1 * best[2]:
                best = (q, err_pos, err_ang)
            if err_pos < 5e-4 and err_ang < 5e-3:
                break
            # The null-space pull toward the rest posture biases the answer by
            # millimetres; re-solving with the answer itself as the rest
            # posture removes that bias.
            rest = list(full)
        return best

    def _solve_home(self) -> np.ndarray:
        """Tool pointing down ``home_reach`` in front of the base, turned to
        the yaw the wrist has in the rest posture (so no joint winds up)."""
        c, s = math.cos(self.spec.base_yaw), math.sin(self.spec.base_yaw)
        bx, by, _ = self.spec.base_position
        rest_tool = self.fk(self.arm.rest_q)
        pointing_down = quat_to_matrix(rest_tool[3:])[2, 2] < -0.9
        yaw = yaw_of(rest_tool[3:]) if pointing_down else self.spec.base_yaw
        pose = np.array([bx + self.home_reach * c, by + self.home_reach * s, HOME_HEIGHT,
                         *top_down_quat(yaw)])
        q, _, _ = self.ik(pose, self.arm.rest_q, iterations=8)
        return q
