"""Can an arm reach what the task needs? Used before a run starts (so a bad
base pose fails in one line, not as a silently failing episode) and by
``robot-mirror check-urdf``."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from robot_mirror.errors import RobotMirrorError, UnreachableError
from robot_mirror.geometry import quat_from_euler, quat_mul
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


def require_reachable(kin: Kinematics, poses: list[tuple[str, np.ndarray]], task=None) -> None:
    """One line if a pose is out of reach; with the ``task``, the line also
    proposes a base pose that reaches every pose (see :func:`propose_base`)."""
    for r in reach_results(kin, poses):
        if not r.ok:
            hint = ""
            if task is not None:
                found = propose_base(kin, task)
                hint = f"; {found.as_set(kin.spec.name)}" if found is not None and found.ok else ""
            raise UnreachableError(unreachable_message(kin, r) + hint)


# ------------------------------------------------------------ base proposal
# The table is 1.6 m x 1.0 m around the origin; a base stands on its top.
TABLE_HALF = (0.78, 0.48)
SEARCH_DISTANCES = tuple(round(0.40 + 0.05 * k, 2) for k in range(9))  # m from the zone centre
SEARCH_LATERALS = (0.0, -0.1, 0.1, -0.2, 0.2, -0.3, 0.3)               # m along the table edge


@dataclass
class BaseProposal:
    base: tuple[float, float, float]
    yaw_deg: float
    reached: int
    total: int
    worst_error: float

    @property
    def ok(self) -> bool:
        return self.reached == self.total

    def as_set(self, name: str) -> str:
        """Ready to paste after ``robot-mirror launch SCENARIO``."""
        b = ",".join(f"{v:g}" for v in self.base)
        return (f"try --set robots.{name}.base=[{b}] --set robots.{name}.yaw_deg={self.yaw_deg:g}"
                f" ({self.reached}/{self.total} poses reached from there)")

    def as_yaml(self) -> list[str]:
        return [f"base: [{', '.join(f'{v:g}' for v in self.base)}]", f"yaw_deg: {self.yaw_deg:g}"]


def _moved(pose: np.ndarray, spec, base, yaw: float) -> np.ndarray:
    """``pose`` as seen from a base at (``base``, ``yaw``), expressed in the
    frame of the twin's own base: the twin then answers for the other base
    without loading the arm again."""
    turn = spec.base_yaw - yaw
    c, s = math.cos(turn), math.sin(turn)
    d = np.asarray(pose[:3]) - np.asarray(base)
    pos = np.asarray(spec.base_position) + np.array([c * d[0] - s * d[1], s * d[0] + c * d[1], d[2]])
    return np.array([*pos, *quat_mul(quat_from_euler(0.0, 0.0, turn), np.asarray(pose[3:]))])


def _candidates(spec, task) -> list[tuple[tuple[float, float, float], float]]:
    """Bases on the arm's side of the zone, facing its centre, nearest to the
    given base first."""
    centre = np.asarray(task.zone.center_xy, float)
    u, v = task.toward_base(spec)
    out = []
    for d in SEARCH_DISTANCES:
        for lat in SEARCH_LATERALS:
            xy = centre + d * u + lat * v
            if abs(xy[0]) > TABLE_HALF[0] or abs(xy[1]) > TABLE_HALF[1]:
                continue
            yaw = math.degrees(math.atan2(*(centre - xy)[::-1]))
            out.append(((round(float(xy[0]), 3), round(float(xy[1]), 3), float(spec.base_position[2])),
                        round(yaw, 1)))
    here = np.asarray(spec.base_position[:2])
    return sorted(out, key=lambda c: float(np.linalg.norm(np.asarray(c[0][:2]) - here)))


def propose_base(kin: Kinematics, task) -> BaseProposal | None:
    """The base pose nearest the given one from which every pose the task
    needs is reached; else the one reaching most. None: nothing to search."""
    from robot_mirror.sim.tasks import make_task

    spec = kin.spec
    best: BaseProposal | None = None
    hardest = 0  # the pose that failed last is tried first: most candidates fail on it
    for base, yaw_deg in _candidates(spec, task):
        moved = replace(spec, base_position=base, base_yaw=math.radians(yaw_deg))
        robots = [moved if r.name == spec.name else r for r in task.robots]
        poses = [pose for _, pose in make_task(task.config, robots).reach_poses()[spec.name]]
        order = [hardest, *(i for i in range(len(poses)) if i != hardest)] if hardest < len(poses) else None
        reached, worst = 0, 0.0
        for i in order or range(len(poses)):
            _, err, ang = kin.ik(_moved(poses[i], spec, base, math.radians(yaw_deg)), kin.home_q, iterations=4)
            worst = max(worst, err)
            if err > POSITION_TOLERANCE or ang > ANGLE_TOLERANCE:
                hardest = i
                break
            reached += 1
        found = BaseProposal(base, yaw_deg, reached, len(poses), worst)
        if found.ok:
            return found
        if best is None or (found.reached, -found.worst_error) > (best.reached, -best.worst_error):
            best = found
    return best


def check_base_args(base, yaw_deg: float) -> None:
    """A base that is not on the table is a typo, not a pose to search from
    (and a non-finite one would hang the solver)."""
    values = [*base, yaw_deg]
    if not all(math.isfinite(float(v)) for v in values):
        raise RobotMirrorError(f"check-urdf --base {' '.join(map(str, base))} --yaw {yaw_deg}: "
                               "must be finite numbers")
    if max(abs(float(v)) for v in base) > 5.0 or abs(float(yaw_deg)) > 360.0:
        raise RobotMirrorError(f"check-urdf --base {' '.join(map(str, base))} --yaw {yaw_deg}: "
                               "base coordinates must lie within 5 m, yaw within 360 deg")


@dataclass
class CheckReport:
    text: str
    reachable: bool
    error: str = ""


def check_urdf_report(urdf: str, *, base=(-0.6, 0.0, 0.0), yaw_deg: float = 0.0, gripper: str = "auto",
                      ee_link: str | None = None, scenario: str | None = None, robot: str = "arm") -> CheckReport:
    """Describe a URDF and test the tower task's poses from the given base;
    when they fail, search the table edge for a base that reaches them all."""
    check_base_args(base, yaw_deg)
    from robot_mirror.config.scenario import TowerConfig, load_scenario
    from robot_mirror.sim.quiet import c_output_suppressed
    from robot_mirror.sim.spec import RobotSpec
    from robot_mirror.sim.tasks import make_task

    spec = RobotSpec(name=robot, urdf=urdf, base_position=tuple(base), base_yaw=math.radians(yaw_deg),
                     gripper=gripper, ee_link=ee_link)
    task_cfg = load_scenario(scenario).task if scenario else TowerConfig()
    partner = RobotSpec(name=f"{robot}_partner", urdf=urdf, base_position=(-base[0], -base[1], base[2]),
                        base_yaw=math.radians(yaw_deg) + math.pi)
    task = make_task(task_cfg, [spec, partner])
    with c_output_suppressed():
        kin = Kinematics(spec, home_reach=task.home_reach(spec), zone=task.zone)
    try:
        results = reach_results(kin, task.reach_poses()[robot])
        lines = _describe(kin, base, yaw_deg, ee_link, task_cfg.kind, results)
        bad = [r for r in results if not r.ok]
        lines.append(f"reachable   {'yes' if not bad else 'NO'} ({len(results) - len(bad)}/{len(results)} poses)")
        if not bad:
            return CheckReport("\n".join(lines), True)
        error = unreachable_message(kin, bad[0])
        found = propose_base(kin, task)
        if found is not None:
            lines += proposal_lines(found, robot)
            error += f"; {found.as_set(robot)}" if found.ok else ""
        return CheckReport("\n".join(lines), False, error)
    finally:
        kin.close()


def proposal_lines(found: BaseProposal, robot: str) -> list[str]:
    """check-urdf's suggestion, as command-line overrides and as YAML."""
    head = "proposed base" if found.ok else "best base found (still NOT reaching every pose)"
    b = ",".join(f"{v:g}" for v in found.base)
    return [f"{head}: ({', '.join(f'{v:.3f}' for v in found.base)}) m, yaw {found.yaw_deg:g} deg,"
            f" {found.reached}/{found.total} poses",
            f"  --set robots.{robot}.base=[{b}] --set robots.{robot}.yaw_deg={found.yaw_deg:g}",
            "  or in the scenario, under the robot:",
            *(f"    {line}" for line in found.as_yaml())]


def _describe(kin: Kinematics, base, yaw_deg: float, ee_link: str | None, kind: str,
              results: list[ReachResult]) -> list[str]:
    """check-urdf's report: the arm's structure, then one line per pose."""
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
        f"reach ({kind} task, tool pointing down):",
    ]
    for r in results:
        lines.append(f"  {'ok  ' if r.ok else 'FAIL'} {r.label:<14} ({r.pose[0]:+.2f}, {r.pose[1]:+.2f},"
                     f" {r.pose[2]:.2f})  error {r.position_error * 1000:.1f} mm"
                     f" / {math.degrees(r.angle_error):.1f} deg")
    return lines
