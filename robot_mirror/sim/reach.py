"""Can an arm reach what the task needs? Used before a run starts (so a bad
base pose fails in one line, not as a silently failing episode) and by
``robot-mirror check-urdf``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from robot_mirror.errors import UnreachableError
from robot_mirror.sim.kinematics import Kinematics

POSITION_TOLERANCE = 0.01  # m
ANGLE_TOLERANCE = 0.1      # rad


@dataclass
class ReachResult:
    label: str
    pose: np.ndarray
    position_error: float
    angle_error: float

    @property
    def ok(self) -> bool:
        return self.position_error <= POSITION_TOLERANCE and self.angle_error <= ANGLE_TOLERANCE


def reach_results(kin: Kinematics, poses: list[tuple[str, np.ndarray]]) -> list[ReachResult]:
    out = []
    for label, pose in poses:
        _, err, ang = kin.ik(pose, kin.home_q, iterations=8)
        out.append(ReachResult(label, pose, err, ang))
    return out


def unreachable_message(kin: Kinematics, r: ReachResult) -> str:
    spec = kin.spec
    base = tuple(round(float(v), 3) for v in spec.base_position)
    return (f"robot '{spec.name}' ({spec.urdf}, base {base}, yaw {math.degrees(spec.base_yaw):.0f} deg)"
            f" cannot reach the {r.label} at ({r.pose[0]:.2f}, {r.pose[1]:.2f}, {r.pose[2]:.2f})"
            f" pointing down: off by {r.position_error * 100:.1f} cm / {math.degrees(r.angle_error):.0f} deg;"
            " try another base pose or arm")


def require_reachable(kin: Kinematics, poses: list[tuple[str, np.ndarray]]) -> None:
    for r in reach_results(kin, poses):
        if not r.ok:
            raise UnreachableError(unreachable_message(kin, r))


@dataclass
class CheckReport:
    text: str
    reachable: bool
    error: str = ""


def check_urdf_report(urdf: str, *, base=(-0.6, 0.0, 0.0), yaw_deg: float = 0.0, gripper: str = "auto",
                      ee_link: str | None = None, scenario: str | None = None) -> CheckReport:
    """Describe a URDF and test the tower task's poses from the given base."""
    from robot_mirror.config.scenario import TowerConfig, load_scenario
    from robot_mirror.sim.quiet import c_output_suppressed
    from robot_mirror.sim.spec import RobotSpec
    from robot_mirror.sim.tasks import make_task

    spec = RobotSpec(name="candidate", urdf=urdf, base_position=tuple(base), base_yaw=math.radians(yaw_deg),
                     gripper=gripper, ee_link=ee_link)
    task_cfg = load_scenario(scenario).task if scenario else TowerConfig()
    partner = RobotSpec(name="partner", urdf=urdf, base_position=(-base[0], -base[1], base[2]),
                        base_yaw=math.radians(yaw_deg) + math.pi)
    task = make_task(task_cfg, [spec, partner])
    with c_output_suppressed():
        kin = Kinematics(spec, home_reach=task.home_reach(spec))
    try:
        results = reach_results(kin, task.reach_poses()[spec.name])
        d = kin.arm.describe()
        lines = [
            f"URDF        {d['urdf']}",
            f"base        ({base[0]:.3f}, {base[1]:.3f}, {base[2]:.3f}) m, yaw {yaw_deg:.1f} deg",
            f"arm joints  {d['dof']}",
        ]
        for j in d["joints"]:
            lines.append(f"  {j['name']:<28} [{j['lower']:+.3f}, {j['upper']:+.3f}]  "
                         f"max force {j['max_force']:g}  max velocity {j['max_velocity']:g}")
        lines += [
            f"ee link     {d['ee_link']}" + ("" if ee_link else " (auto-detected)"),
            f"gripper     {d['gripper']}" + (f" (fingers: {', '.join(d['finger_joints'])})"
                                            if d["finger_joints"] else "")
            + (f", tool offset {d['tool_offset'] * 1000:.0f} mm" if d["gripper"] == "suction" else ""),
            f"home pose   {np.round(kin.home_q, 3).tolist()}",
            f"reach ({task_cfg.kind} task, tool pointing down):",
        ]
        for r in results:
            lines.append(f"  {'ok  ' if r.ok else 'FAIL'} {r.label:<14} ({r.pose[0]:+.2f}, {r.pose[1]:+.2f},"
                         f" {r.pose[2]:.2f})  error {r.position_error * 1000:.1f} mm"
                         f" / {math.degrees(r.angle_error):.1f} deg")
        bad = [r for r in results if not r.ok]
        lines.append(f"reachable   {'yes' if not bad else 'NO'} ({len(results) - len(bad)}/{len(results)} poses)")
        return CheckReport("\n".join(lines), not bad, unreachable_message(kin, bad[0]) if bad else "")
    finally:
        kin.close()
