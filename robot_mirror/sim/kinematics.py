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

from robot_mirror.errors import ConfigError, RobotMirrorError
from robot_mirror.geometry import quat_angle, quat_conj, quat_mul, quat_to_matrix, top_down_quat, wrap_angle, yaw_of
from robot_mirror.sim.arm import Arm
from robot_mirror.sim.home import clear_home
from robot_mirror.sim.quiet import c_output_suppressed
from robot_mirror.sim.spec import RobotSpec
from robot_mirror.sim.zone import SharedZone

HOME_REACH = 0.28   # m in front of the base
HOME_HEIGHT = 0.30  # m above the table
GOOD_POSITION = 2e-3  # m: a start this close is as good as any other
GOOD_ANGLE = 0.02     # rad
MISS_POSITION = 5e-3  # m: a warm start farther off than this restarts (closer: the next
MISS_ANGLE = 0.05     # rad  tick's pass, or the caller's refinement, closes the gap)
CACHE_SIZE = 512      # answers remembered (reach checks and held poses repeat)
HALTON_SEEDS = 24
MAX_TARGET_DISTANCE = 10.0  # m from the world origin: farther is a unit mistake, not a pose


class IKTargetError(RobotMirrorError):
    """A pose that no arm can be sent to (non-finite, zero quaternion, absurdly far)."""


class Kinematics:
    def __init__(self, spec: RobotSpec, home_reach: float = HOME_REACH, zone: SharedZone | None = None) -> None:
        """``zone``: the task's shared zone; the solved home posture then
        keeps every link out of it (see :mod:`robot_mirror.sim.home`)."""
        self.spec = spec
        self.home_reach = home_reach
        self.zone = zone
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
        self._cache: dict = {}
        self._q_set: np.ndarray | None = None  # the joints the twin was last set to (see set_q)
        self._last_good: np.ndarray | None = None
        self._last_miss: np.ndarray | None = None
        self._halton = self._make_halton(HALTON_SEEDS)
        # calculateJacobian takes the point in the link's inertial frame; the
        # link frame's origin expressed there.
        inertial = self.client.getLinkState(a.body, a.ee_index)
        inv_pos, _ = self.client.invertTransform(inertial[2], inertial[3])
        self._ee_local = list(inv_pos)
        self.home_q = self._given_home() if spec.home_q is not None else self._solve_home()

    def _given_home(self) -> np.ndarray:
        q = np.asarray(self.spec.home_q, dtype=float)
        if q.shape != (self.dof,):
            self.close()
            raise ConfigError(f"robots.{self.spec.name}.home_q {list(self.spec.home_q)}: {q.size} value(s), "
                              f"but {self.spec.urdf} has {self.dof} arm joints")
        return q

    def close(self) -> None:
        try:
            self.client.disconnect()
        except p.error:
            pass

    # ------------------------------------------------------------------ FK
    def set_q(self, q: np.ndarray) -> None:
        """Teleport the twin to ``q``. Only this class moves the twin, so when
        it already stands at exactly ``q`` (the expert's IK seed is the
        answer it just checked; the zone check repeats the last command) the
        PyBullet calls are skipped. The solver calls forget it (see
        :meth:`_forget_q`)."""
        q = np.asarray(q, dtype=float)
        if self._q_set is not None and np.array_equal(q, self._q_set):
            return
        self.arm.reset_joints(q)
        self._q_set = q.copy()

    def forget_history(self) -> None:
        """Start afresh (each episode): drop the cached answers and the last
        good and missed targets, which seed the multi-start. Kept across
        episodes they made an episode's motion depend on the episodes the
        twin had solved before, so a seed replayed alone moved otherwise than
        the same seed played after others (in a benchmark worker)."""
        self._cache.clear()
        self._last_good = None
        self._last_miss = None

    def _forget_q(self) -> None:
        """After a PyBullet solver call (IK, Jacobian) the twin is set again
        before it is read: those calls leave the joints alone, but nothing
        here relies on what they do to the cached link transforms."""
        self._q_set = None

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

    def ik(self, pose: np.ndarray, q_seed: np.ndarray, iterations: int = 4,
           restarts: bool = True) -> tuple[np.ndarray, float, float]:
        """Joint angles placing the tool at ``pose`` (7,), from ``q_seed``.

        Returns ``(q, position_error_m, orientation_error_rad)`` of the best
        solution. The seed is tried first (a warm start: every tick's answer
        seeds the next, and one pass is enough). Only when that misses does a
        deterministic multi-start run (last good answer, rest and home poses,
        then quasi-random seeds): one seed finds one basin of PyBullet's
        solver, and a target can lie in another. Among converged answers the
        one nearest the seed wins, so a reachable target never makes the arm
        jump to another posture for nothing. A target that is not a pose
        (non-finite, zero quaternion, absurdly far) is refused before the
        solver sees it: a zero quaternion makes PyBullet's IK never return.
        """
        pose = checked_target(pose)
        seed = self._checked_seed(q_seed)
        key = (pose.round(6).tobytes(), seed.round(5).tobytes(), iterations, restarts)
        hit = self._cache.get(key)
        if hit is not None:
            return hit[0].copy(), hit[1], hit[2]
        best = self._descend(pose, seed, iterations, rest=None)
        if restarts and _missed(best) and not self._missed_near(pose):
            best = self._multi_start(pose, seed, best, iterations)
            self._last_miss = pose[:3].copy() if _missed(best) else None
        if _good(best):
            self._last_good = best[0]
        if len(self._cache) >= CACHE_SIZE:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = best
        return best[0].copy(), best[1], best[2]

    def _missed_near(self, pose: np.ndarray) -> bool:
        """The last restart, for a target within 5 mm of this one, found no
        solution either: a caller creeping along an unreachable path (one
        call a tick) pays for the restarts once, not every tick."""
        last = self._last_miss
        return last is not None and float(np.linalg.norm(pose[:3] - last)) < 5e-3

    def _checked_seed(self, q_seed) -> np.ndarray:
        q = np.asarray(q_seed, dtype=float).reshape(-1)
        if q.shape != (self.dof,) or not np.all(np.isfinite(q)):
            q = self.arm.rest_q  # a broken seed is not the caller's target; start from rest
        return np.minimum(np.maximum(q, self.lower), self.upper)

    def _multi_start(self, pose: np.ndarray, seed: np.ndarray, first, iterations: int):
        """Best answer over the fixed seeds, then quasi-random ones until one
        converges. Each start gets two passes (enough to tell its basin);
        the winner alone is refined with the caller's ``iterations``."""
        candidates = [first]
        fixed = [q for q in (self._last_good, self.arm.rest_q, getattr(self, "home_q", None)) if q is not None]
        fixed += [self._aimed(q, pose) for q in fixed]
        for start in fixed:
            candidates.append(self._descend(pose, start, 2, rest=start))
        if not any(_good(c) for c in candidates):
            for start in self._halton:
                candidates.append(self._descend(pose, start, 2, rest=start))
                if _good(candidates[-1]):
                    break
        good = [c for c in candidates if _good(c)]
        if good:
            return min(good, key=lambda c: float(np.sum((c[0] - seed) ** 2)))
        ranked = sorted(candidates, key=lambda c: (c[1] + 0.1 * c[2], float(np.sum((c[0] - seed) ** 2))))
        if iterations <= 2:
            return ranked[0]
        # None converged in two passes: the three closest get the full refinement.
        polished = [self._polish(pose, c[0]) for c in ranked[:3]]
        return min([ranked[0], *polished], key=lambda c: c[1] + 0.1 * c[2])

    def _polish(self, pose: np.ndarray, q: np.ndarray, steps: int = 60):
        """Damped least squares on the full pose error. PyBullet's solver
        stalls where two joint axes line up (a wrist roll over the base
        axis, pointing straight down); damping carries on through it."""
        arm, c = self.arm, self.client
        target = self._link_target(pose)
        local = self._ee_local
        zeros = [0.0] * len(arm._movable_order)
        best = (q, math.inf, math.inf)
        for _ in range(steps):
            self.set_q(q)
            state = c.getLinkState(arm.body, arm.ee_index, computeForwardKinematics=True)
            err = np.concatenate([target - np.asarray(state[4]),
                                  0.3 * _rotation_vector(pose[3:], np.asarray(state[5]))])
            tool = arm._tool_pose_from(state[4], state[5])
            result = (q, float(np.linalg.norm(tool[:3] - pose[:3])), quat_angle(tool[3:], pose[3:]))
            if result[1] + 0.1 * result[2] < best[1] + 0.1 * best[2]:
                best = result
            if result[1] < 1e-4 and result[2] < 1e-3:
                break
            full = self._full(q)
            lin, ang = c.calculateJacobian(arm.body, arm.ee_index, local, full, zeros, zeros)
            self._forget_q()
            jac = np.vstack([np.asarray(lin)[:, arm._arm_slots], 0.3 * np.asarray(ang)[:, arm._arm_slots]])
            step = jac.T @ np.linalg.solve(jac @ jac.T + 1e-4 * np.eye(6), err)
            q = np.clip(q + step, self.lower, self.upper)
        return best

    def _aimed(self, q: np.ndarray, pose: np.ndarray) -> np.ndarray:
        """``q`` with the first joint turned so the tool's azimuth about it
        points at the target: for an arm on a vertical base axis that is the
        basin most targets lie in (the start alone may face the other way)."""
        c = self.client
        info = c.getJointInfo(self.arm.body, self.arm.joint_indices[0])
        self.set_q(q)
        state = c.getLinkState(self.arm.body, self.arm.joint_indices[0], computeForwardKinematics=True)
        axis = quat_to_matrix(np.asarray(state[5])) @ np.asarray(info[13])
        if abs(axis[2]) < 0.99:
            return q
        origin = np.asarray(state[4])
        tool = self.arm.tool_pose()[:3] - origin
        goal = pose[:3] - origin
        turn = math.atan2(goal[1], goal[0]) - math.atan2(tool[1], tool[0])
        aimed = q.copy()
        aimed[0] = float(np.clip(q[0] + math.copysign(1.0, axis[2]) * wrap_angle(turn), self.lower[0], self.upper[0]))
        return aimed

    def _descend(self, pose: np.ndarray, q: np.ndarray, iterations: int, rest):
        """PyBullet's null-space IK from ``q``, refined ``iterations`` times.
        The null-space pull toward the rest posture biases the answer by
        millimetres; each refinement re-solves with the previous answer as
        the rest posture, which removes that bias."""
        target = self._link_target(pose).tolist()
        orn = pose[3:].tolist()
        best = (q, math.inf, math.inf)
        rest = self._ik_rest if rest is None else self._full(rest)
        for _ in range(iterations):
            self.set_q(q)
            full = self.client.calculateInverseKinematics(
                self.arm.body, self.arm.ee_index, target, orn,
                lowerLimits=self._ik_lower, upperLimits=self._ik_upper,
                jointRanges=self._ik_range, restPoses=rest,
                jointDamping=self._ik_damping,
                maxNumIterations=100, residualThreshold=1e-5,
            )
            self._forget_q()
            q = np.clip(np.array([full[s] for s in self.arm._arm_slots]), self.lower, self.upper)
            reached = self.fk(q)
            err_pos = float(np.linalg.norm(reached[:3] - pose[:3]))
            err_ang = quat_angle(reached[3:], pose[3:])
            if err_pos + 0.1 * err_ang < best[1] + 0.1 * best[2]:
                best = (q, err_pos, err_ang)
            if err_pos < 5e-4 and err_ang < 5e-3:
                break
            rest = list(full)
        return best

    def _full(self, q: np.ndarray) -> list[float]:
        """A rest/seed vector over every movable joint (fingers at their rest)."""
        full = list(self._ik_rest)
        for slot, value in zip(self.arm._arm_slots, q):
            full[slot] = float(value)
        return full

    def _make_halton(self, count: int) -> list[np.ndarray]:
        """Quasi-random seeds spread evenly over the joint limits (a Halton
        sequence: deterministic, no two runs differ)."""
        lo, hi = np.maximum(self.lower, -math.pi), np.minimum(self.upper, math.pi)
        primes = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37][: self.dof]
        if len(primes) < self.dof:
            primes += [41 + 2 * k for k in range(self.dof - len(primes))]
        return [lo + (hi - lo) * np.array([_radical_inverse(i, b) for b in primes]) for i in range(1, count + 1)]

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
        return q if self.zone is None else clear_home(self, pose, q, self.zone)

    def halton_seeds(self) -> list[np.ndarray]:
        """The quasi-random starts of the multi-start (copies)."""
        return [q.copy() for q in self._halton]


def _missed(result) -> bool:
    """Far enough off that the seed's basin may be the wrong one."""
    return result[1] > MISS_POSITION or result[2] > MISS_ANGLE


def _good(result) -> bool:
    """Close enough that another start cannot be worth its time."""
    return result[1] < GOOD_POSITION and result[2] < GOOD_ANGLE


def _rotation_vector(target_q, current_q) -> np.ndarray:
    """Axis times angle of the rotation from ``current_q`` to ``target_q`` (world frame)."""
    x, y, z, w = quat_mul(np.asarray(target_q), quat_conj(np.asarray(current_q)))
    if w < 0:
        x, y, z, w = -x, -y, -z, -w
    n = math.sqrt(x * x + y * y + z * z)
    return np.zeros(3) if n < 1e-12 else np.array([x, y, z]) * (2 * math.atan2(n, w) / n)


def _radical_inverse(i: int, base: int) -> float:
    out, f = 0.0, 1.0 / base
    while i:
        out += f * (i % base)
        i //= base
        f /= base
    return out


def checked_target(pose) -> np.ndarray:
    """``pose`` as a float (7,) array with a unit quaternion, or one line
    saying why it is not a pose an arm can be sent to."""
    try:
        arr = np.asarray(pose, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise IKTargetError(f"IK target {pose!r}: not 7 numbers (x, y, z, qx, qy, qz, qw)") from None
    if arr.shape != (7,):
        raise IKTargetError(f"IK target has {arr.size} values: expected 7 (x, y, z, qx, qy, qz, qw)")
    if not np.all(np.isfinite(arr)):
        raise IKTargetError(f"IK target {np.round(arr, 4).tolist()}: values must be finite")
    if float(np.max(np.abs(arr[:3]))) > MAX_TARGET_DISTANCE:
        raise IKTargetError(f"IK target position {np.round(arr[:3], 3).tolist()}: more than "
                            f"{MAX_TARGET_DISTANCE:g} m from the world origin")
    norm = float(np.linalg.norm(arr[3:]))
    if norm < 1e-6:
        raise IKTargetError(f"IK target quaternion {arr[3:].tolist()}: zero length, not an orientation")
    arr[3:] /= norm
    return arr
