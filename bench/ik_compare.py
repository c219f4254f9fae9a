"""PyBullet's IK (one start, as before; multi-start, as now) against a
pinocchio damped-least-squares IK (one start; the same multi-start seeds),
on the arm zoo: success (within check-urdf's 1 cm / 0.1 rad) and ms per solve.

Targets per arm: the tower task's poses from the arm's base, and 20 poses
from random joint vectors within the limits (reachable by construction).
Needs ``pip install pin`` (pinocchio); the project does not depend on it.

    python bench/ik_compare.py [--arms 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/_common.py; see its docstring
from _common import percentiles, write_json  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from arm_zoo import _arm_facts  # noqa: E402


class PinIK:
    """Damped least squares on pinocchio's frame Jacobian, joint limits clipped."""

    def __init__(self, kin, urdf: Path) -> None:
        import pinocchio as pin

        self.pin = pin
        self.model = pin.buildModelFromUrdf(str(urdf))
        self.data = self.model.createData()
        self.frame = self.model.getFrameId(kin.arm.ee_link_name)
        names = [j.name for j in kin.arm.arm_joints]
        self.idx = [self.model.idx_qs[self.model.getJointId(n)] for n in names]
        self.q0 = pin.neutral(self.model)
        for j in kin.arm.finger_joints:
            self.q0[self.model.idx_qs[self.model.getJointId(j.name)]] = j.upper
        c, s = math.cos(kin.spec.base_yaw), math.sin(kin.spec.base_yaw)
        self.base = pin.SE3(np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]]), np.asarray(kin.spec.base_position, float))
        self.offset = kin.arm.tool_offset
        self.lower, self.upper = kin.lower, kin.upper

    def solve(self, pose: np.ndarray, seed: np.ndarray, steps: int = 200) -> tuple[np.ndarray, float, float]:
        pin = self.pin
        rot = _quat_matrix(pose[3:])
        goal = self.base.inverse() * pin.SE3(rot, np.asarray(pose[:3]) - self.offset * rot[:, 2])
        q = seed.copy()
        full = self.q0.copy()
        for _ in range(steps):
            full[self.idx] = q
            pin.framesForwardKinematics(self.model, self.data, full)
            err_se3 = self.data.oMf[self.frame].actInv(goal)
            err = pin.log6(err_se3).vector
            if np.linalg.norm(err[:3]) < 1e-5 and np.linalg.norm(err[3:]) < 1e-4:
                break
            jac = pin.computeFrameJacobian(self.model, self.data, full, self.frame, pin.LOCAL)[:, self.idx]
            step = jac.T @ np.linalg.solve(jac @ jac.T + 1e-6 * np.eye(6), err)
            q = np.clip(q + step, self.lower, self.upper)
        full[self.idx] = q
        pin.framesForwardKinematics(self.model, self.data, full)
        reached = self.base * self.data.oMf[self.frame]
        tool = reached.translation + self.offset * reached.rotation[:, 2]
        ang = float(np.arccos(np.clip((np.trace(rot.T @ reached.rotation) - 1) / 2, -1, 1)))
        return q, float(np.linalg.norm(tool - pose[:3])), ang


def _quat_matrix(q) -> np.ndarray:
    x, y, z, w = np.asarray(q, float) / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def _ok(r) -> bool:
    return r[1] <= 0.01 and r[2] <= 0.1


def _targets(kin, poses, rng) -> list[np.ndarray]:
    out = list(poses)
    for _ in range(20):
        out.append(kin.fk(rng.uniform(np.maximum(kin.lower, -math.pi), np.minimum(kin.upper, math.pi))))
    return out


def compare(arm, rng) -> dict:
    from robot_mirror.sim.assets import resolve_urdf
    from robot_mirror.sim.kinematics import Kinematics
    from robot_mirror.sim.spec import RobotSpec

    _, _, poses = _arm_facts(arm)
    kin = Kinematics(RobotSpec(name="c", urdf=arm.urdf, base_position=arm.base,
                               base_yaw=math.radians(arm.yaw_deg), gripper=arm.gripper))
    pin_ik = PinIK(kin, resolve_urdf(arm.urdf, None))
    seeds = [kin.home_q, kin.arm.rest_q, *kin._halton]
    methods = {
        "pybullet_one_start": lambda p: kin._descend(p, kin.home_q, 8, rest=None),
        "pybullet_multi_start": lambda p: kin.ik(p, kin.home_q, iterations=8),
        "pinocchio_one_start": lambda p: pin_ik.solve(p, kin.home_q),
        "pinocchio_multi_start": lambda p: next((r for r in (pin_ik.solve(p, s) for s in seeds) if _ok(r)),
                                                (None, math.inf, math.inf)),
    }
    out = {name: {"ok": 0, "ms": []} for name in methods}
    for target in _targets(kin, poses, rng):
        for name, solve in methods.items():
            kin._cache.clear()
            start = time.perf_counter()
            result = solve(np.asarray(target, float))
            out[name]["ms"].append(1000 * (time.perf_counter() - start))
            out[name]["ok"] += int(_ok(result))
    kin.close()
    out["targets"] = len(poses) + 20
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arms", type=int, default=10)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    from robot_mirror.sim.zoo import zoo

    rng = np.random.default_rng(0)
    rows = [compare(arm, rng) for arm in zoo(args.arms, tempfile.mkdtemp(prefix="ik_compare_"))]
    total = sum(r["targets"] for r in rows)
    result = {"arms": len(rows), "targets": total}
    for name in ("pybullet_one_start", "pybullet_multi_start", "pinocchio_one_start", "pinocchio_multi_start"):
        ms = [m for r in rows for m in r[name]["ms"]]
        p50, p99 = percentiles(ms, 50, 99)
        result[name] = {"success": round(sum(r[name]["ok"] for r in rows) / total, 4),
                        "ms_p50": round(p50, 3), "ms_p99": round(p99, 3)}
        print(f"  {name:<24} success {result[name]['success']:.4f}  ms p50 {p50:.2f}  p99 {p99:.2f}")
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
