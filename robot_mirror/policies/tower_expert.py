"""The scripted expert: IK waypoints that wait for the turn.

On its turn the expert plans approach, grasp, lift, carry, place, release and
retreat for its next block, follows them with straight-line tool motions
(IK on its private kinematic twin, seeded from its previous command so the
joint targets are smooth and repeatable), gives the turn back as soon as its
arm has left the shared zone, and returns home. Off turn it holds its home
pose. It reads only its own observation, so the same code runs in process and
in a policy process.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from robot_mirror.common.commands import ArmCommand
from robot_mirror.geometry import top_down_quat, wrap_angle, yaw_of
from robot_mirror.policies.clearance import (ZONE_MARGIN, Clearance, approach_height, follow_ik,
                                             retreat_waypoints)
from robot_mirror.policies.placing import held_height, held_offset, landing_surface
from robot_mirror.policies.plan import FREE_SPEED, Step
from robot_mirror.sim.spec import RobotSpec

if TYPE_CHECKING:  # the twin is handed in; importing it here would load pybullet
    from robot_mirror.sim.kinematics import Kinematics

NEAR_SPEED = 0.15    # m/s, moves near contact
JOINT_SPEED = 1.5    # rad/s, joint-space return home
REACH_TOL = 0.006    # m, waypoint reached
GRIP_WAIT = 0.35     # s for fingers to close / open
MAX_RETRIES = 2
STAGING_MARGIN = 0.10  # m outside the zone edge where an anticipating arm waits
SETTLE = 0.15        # s per waypoint beyond distance / speed, for time estimates
RELEASE_MARGIN = 0.02  # m: the way home keeps every link this far out of the zone before the turn is given back


class ScriptedExpert:
    """Scripted turn-taking pick-and-place for one arm."""

    # Tool paths keep one posture (clearance.follow_ik) and the return home
    # runs on the straight joint line its clearance check sampled.
    keep_posture = True
    straight_home = True

    def __init__(self, spec: RobotSpec, task_config, control_hz: int,
                 kinematics: Kinematics | None = None,
                 turn_end_predictor: Callable[[dict[str, Any]], float | None] | None = None) -> None:
        """``turn_end_predictor(obs)``: seconds until the partner's turn ends
        (None: unknown). With one, the expert anticipates: it fetches its
        block during the partner's turn, waits at a staging pose just outside
        the shared zone, and goes in the moment the turn is granted. Without
        one it is the reactive expert: nothing happens before the grant."""
        self.spec = spec
        self.turn_end_predictor = turn_end_predictor
        self.zone_radius = float(getattr(task_config, "zone_radius", 0.0))
        if kinematics is None:
            from robot_mirror.sim.kinematics import Kinematics

            kinematics = Kinematics(spec)
        self.kin = kinematics
        self.dt = 1.0 / control_hz
        self.size = task_config.block_size
        self.tower_xy = np.asarray(getattr(task_config, "tower_xy", (0.0, 0.0)), float)
        self.home_q = self.kin.home_q
        self.clearance = Clearance(self.kin, self.tower_xy, self.zone_radius, self.size)
        home_pose = self.kin.fk(self.home_q)
        self.home_yaw = yaw_of(home_pose[3:])
        fingers = self.kin.arm.gripper_kind == "fingers"
        self.grasp_height = self.size / 2 + 0.005 if fingers else self.size - 0.003
        self.drift: Any = None  # a policies.drift.SetpointDrift when recording perturbed demonstrations (DART)
        self.reset()

    # ------------------------------------------------------------------
    def reset(self) -> None:
        self.kin.forget_history()  # an episode's motion depends on its seed alone
        self.plan: list[Step] = []
        self.q_cmd: np.ndarray | None = None
        self.setpoint: np.ndarray | None = None  # (x, y, z, yaw)
        self.gripper = 0.0
        self.block: int | None = None
        self.retries = 0
        self.segment = "wait"
        self.target: int | None = None  # tower level (or slot) the current plan places at

    def labels(self) -> tuple[str, int, int]:
        """(segment, target, block) of what the arm is doing now; -1 when idle.
        These become the mirror network's training labels."""
        if self.segment == "wait":
            return "wait", -1, -1
        return (self.segment, -1 if self.target is None else int(self.target),
                -1 if self.block is None else int(self.block))

    def act(self, obs: dict[str, Any]) -> ArmCommand:
        if self.q_cmd is None:
            self.q_cmd = np.asarray(obs["q"], float).copy()
        if not self.plan:
            self.segment = "wait"
            self.target = None
            block = self._next_block(obs) if obs["my_turn"] or self._prefetch_due(obs) else None
            if block is not None:
                self._plan_pick_and_place(obs, block, ahead=not obs["my_turn"])
        turn = ""
        if self.plan:
            step = self.plan[0]
            self.segment = step.label
            done = self._execute(step, obs)
            if step.kind == "home" and not obs["in_zone"] and obs["my_turn"] and self.block is not None \
                    and self.plan[0].data.get("after_place") and self._way_home_clear(self.plan[0]):
                turn = "release"
            if done:
                self.plan.pop(0)
                if step.data.get("check_grasp") and obs["holding"] != self.block:
                    self._retry(obs)
        else:
            self._hold_home()
        return ArmCommand(q_target=self.q_cmd.copy(), gripper=self.gripper, turn=turn)

    # ------------------------------------------------------------------ plan
    def _next_block(self, obs) -> int | None:
        """Our first block not on the tower. Fetching ahead (not our turn), a
        block inside the zone is never a candidate: it is on the tower (a
        partner pressing a block down can un-count the ones below for a
        tick) or the turn holder's business."""
        mine = np.flatnonzero(obs["my_blocks"] & ~obs["placed"])
        if not obs["my_turn"]:
            far = self.zone_radius + ZONE_MARGIN + self.size
            mine = [b for b in mine if np.hypot(*(obs["blocks"][b][:2] - self.tower_xy)) > far]
        return int(mine[0]) if len(mine) else None

    def _place_spot(self, obs) -> tuple[float, float, float, int]:
        """Where the block goes: (x, y) world, the height of the surface it
        lands on, and the target label (here the tower level)."""
        level = int(obs["tower_count"])
        return float(self.tower_xy[0]), float(self.tower_xy[1]), level * self.size, level

    def landing_point(self, obs) -> np.ndarray:
        """Where the current job's block lands if put down now (world x, y and
        the height of the surface under it): the place spot over whatever
        already lies there. The motor readout's target (its teacher records
        it; ``motor: network`` computes it the same way, whatever the task)."""
        x, y, surface, _ = self._place_spot(obs)
        return np.array([x, y, landing_surface(obs, x, y, surface, self.size, skip=self.block)])

    def _grasp_yaws(self, block_pose: np.ndarray) -> tuple[float, float]:
        """Gripper yaw for the grasp (a face-aligned yaw near the home yaw) and
        for the place (turned so the block lands square to the tower)."""
        block_yaw = yaw_of(block_pose[3:])
        delta = wrap_angle(block_yaw - self.home_yaw)
        quarter = math.pi / 2
        delta -= quarter * round(delta / quarter)
        grasp = self.home_yaw + delta
        offset = block_yaw - quarter * round(block_yaw / quarter)
        return grasp, grasp - offset

    def _plan_pick_and_place(self, obs, block: int, ahead: bool = False) -> None:
        """Steps up to the shared zone; the rest is planned at the gate, when
        the turn is granted, from the tower as it is then. ``ahead``: planned
        during the partner's turn, whose block will be on the tower first."""
        self.block = block
        pose = obs["blocks"][block]
        grasp_yaw, place_yaw = self._grasp_yaws(pose)
        self._place_yaw = place_yaw
        bx, by = pose[0], pose[1]
        grasp_z = pose[2] - self.size / 2 + self.grasp_height
        self._grasp_z = grasp_z
        tx, ty, surface, self.target = self._place_spot(obs)
        carry_z = self._carry_z(surface + (self.size if ahead else 0.0))
        self.plan = [
            Step("move", "reach", np.array([bx, by, grasp_z + 0.10, grasp_yaw]), 0.0, FREE_SPEED),
            Step("move", "reach", np.array([bx, by, grasp_z, grasp_yaw]), 0.0, NEAR_SPEED),
            Step("grip", "grasp", gripper=1.0, duration=GRIP_WAIT),
            Step("move", "grasp", np.array([bx, by, carry_z, grasp_yaw]), 1.0, NEAR_SPEED,
                 data={"check_grasp": True}),
        ]
        if np.hypot(tx - self.tower_xy[0], ty - self.tower_xy[1]) < self.zone_radius:
            # Into the zone comes last: first to its edge, on the way from the block.
            sx, sy = self._staging(np.array([bx, by]), carry_z, place_yaw)
            self.plan.append(Step("move", "carry", np.array([sx, sy, carry_z, place_yaw]), 1.0, FREE_SPEED))
        self.plan.append(Step("gate", "carry", gripper=1.0))
        if obs["holding"] == block:
            # Started (or restarted, e.g. a respawned policy process) with the
            # block already in hand: the grip stays closed; go on from the lift.
            self.gripper = 1.0
            self.plan = self.plan[3:]
            self.plan[0].target[:3] = [obs["ee_pose"][0], obs["ee_pose"][1], carry_z]

    def _held_height(self, obs) -> float:
        """Tool height above the held block's bottom face (see :func:`placing.held_height`)."""
        return held_height(obs, self.block, self.size, self.grasp_height)

    def _staging(self, block_xy: np.ndarray, z: float, yaw: float) -> np.ndarray:
        """Where the arm waits for the turn: on the line from the tower to
        its block, STAGING_MARGIN outside the zone, or farther until every
        link of the arm (on the twin, not only the tool) keeps ZONE_MARGIN
        from the zone cylinder."""
        away = block_xy - self.tower_xy
        away /= max(float(np.linalg.norm(away)), 1e-9)
        q = self.q_cmd if self.q_cmd is not None else self.home_q
        for extra in (0.0, 0.05, 0.10, 0.15, 0.20, 0.25):
            xy = self.tower_xy + away * (self.zone_radius + STAGING_MARGIN + extra)
            q, _, _ = self.kin.ik(np.array([*xy, z, *top_down_quat(yaw)]), q)
            if self.clearance.zone_distance(q, cap=ZONE_MARGIN) >= ZONE_MARGIN:
                break
        return xy

    def _carry_z(self, surface: float) -> float:
        return max(surface + self.grasp_height + 0.06, self._grasp_z + 0.12)

    def _in_zone_steps(self, obs) -> list[Step]:
        """Carry over the place spot, put the block down, let go, retreat."""
        tx, ty, surface, self.target = self._place_spot(obs)
        surface = landing_surface(obs, tx, ty, surface, self.size, skip=self.block)
        tx, ty = np.array([tx, ty]) - held_offset(obs, self.block, self.size)
        carry_z = self._carry_z(surface)
        place_z = surface + self._held_height(obs) + 0.002
        yaw = self._place_yaw
        start = self.setpoint[:3] if self.setpoint is not None else np.asarray(obs["ee_pose"][:3], float)
        ghosts = self.clearance.obstacles(obs, skip=self.block)
        carry_z += approach_height(self.clearance, self.q_cmd, start, np.array([tx, ty, carry_z]), yaw, ghosts)
        return [
            Step("move", "carry", np.array([tx, ty, carry_z, yaw]), 1.0, FREE_SPEED),
            Step("move", "place", np.array([tx, ty, place_z, yaw]), 1.0, NEAR_SPEED * 0.7),
            Step("grip", "place", gripper=0.0, duration=GRIP_WAIT),
            Step("move", "retreat", np.array([tx, ty, carry_z + 0.04, yaw]), 0.0, NEAR_SPEED),
            Step("home", "retreat", gripper=0.0, data={"after_place": True, "after_place_check": True}),
        ]

    # ---------------------------------------------------------- anticipation
    def _prefetch_due(self, obs) -> bool:
        """Partner's turn ends soon enough that fetching now ends at the zone edge in time."""
        if self.turn_end_predictor is None or obs["my_turn"] or not obs["holder"]:
            return False
        predicted = self.turn_end_predictor(obs)
        return predicted is not None and predicted <= self._fetch_time(obs)

    def _fetch_time(self, obs) -> float:
        """Rough seconds from home to the staging pose with the next block in hand."""
        block = np.flatnonzero(obs["my_blocks"] & ~obs["placed"])
        if not len(block):
            return 0.0
        b = obs["blocks"][int(block[0])][:3]
        tool = obs["ee_pose"][:3]
        staging = self.tower_xy + (b[:2] - self.tower_xy) / max(np.linalg.norm(b[:2] - self.tower_xy), 1e-9) \
            * (self.zone_radius + STAGING_MARGIN)
        reach = np.linalg.norm(b[:2] - tool[:2]) + abs(tool[2] - b[2] - 0.1)
        return (reach / FREE_SPEED + 2 * 0.1 / NEAR_SPEED + 0.12 / NEAR_SPEED + GRIP_WAIT
                + np.linalg.norm(staging - b[:2]) / FREE_SPEED + 5 * SETTLE)

    def time_to_release(self) -> float | None:
        """Estimated seconds until this arm gives its turn back (None when it
        is not working on a turn). The ceiling of the fluency comparison reads
        it as the 'true' turn end of its partner."""
        if not self.plan or self.block is None:
            return None
        total = 0.0
        pos = self.setpoint[:3] if self.setpoint is not None else None
        for step in self.plan:
            if step.kind == "grip":
                total += max(0.0, step.duration - step.elapsed)
            elif step.kind == "move":
                start = pos if pos is not None else step.target[:3]
                total += float(np.linalg.norm(step.target[:3] - start)) / step.speed + SETTLE
                pos = step.target[:3]
            elif step.kind == "gate":
                return None  # still waiting for its own turn
            elif step.kind == "home":
                return total + 2 * SETTLE  # out of the zone soon after it heads home
        return total

    def _retry(self, obs) -> None:
        """The block did not come up with the gripper: open, back off, try again."""
        self.retries += 1
        if self.retries > MAX_RETRIES:
            self.plan = [Step("home", "retreat", gripper=0.0, data={"after_place": True})]
            return
        self.gripper = 0.0
        block = self.block
        assert block is not None
        self._plan_pick_and_place(obs, block)

    # --------------------------------------------------------------- execute
    def _execute(self, step: Step, obs) -> bool:
        step.elapsed += self.dt
        if step.kind == "gate":
            self.gripper = step.gripper
            if not obs["my_turn"]:
                return False  # hold still at the zone's edge
            self.plan[1:1] = self._in_zone_steps(obs)
            return True
        if step.kind == "grip":
            self.gripper = step.gripper
            return step.elapsed >= step.duration
        if step.kind == "home":
            self.gripper = step.gripper
            if step.data.pop("after_place_check", False) and self._clear_retreat(obs):
                return False  # the lift steps now come first
            self._toward_home()
            arrived = np.max(np.abs(self.home_q - obs["q"])) < 0.03
            return bool(arrived and np.allclose(self.q_cmd, self.home_q))
        return self._execute_move(step, obs)

    def _execute_move(self, step: Step, obs) -> bool:
        """One tick of a straight tool move at the step's speed (IK on the twin)."""
        self.gripper = step.gripper
        if self.setpoint is None:
            tool = obs["ee_pose"]
            self.setpoint = np.array([*tool[:3], yaw_of(tool[3:])])
        target = step.target
        previous = self.setpoint.copy()
        delta = target[:3] - self.setpoint[:3]
        dist = float(np.linalg.norm(delta))
        advance = step.speed * self.dt
        if dist > advance:
            frac = advance / dist
            self.setpoint[:3] += delta * frac
            self.setpoint[3] += wrap_angle(target[3] - self.setpoint[3]) * frac
        else:
            self.setpoint = target.copy()
        xyz = self.setpoint[:3] if self.drift is None else \
            self.drift.apply(self.setpoint[:3], step.data.setdefault("drift_from", previous[:3].copy()), target[:3])
        pose = np.array([*xyz, *top_down_quat(self.setpoint[3])])
        q = follow_ik(self.kin, pose, self.q_cmd) if self.keep_posture else self.kin.ik(pose, self.q_cmd, 1)[0]
        if not obs["my_turn"] and self._would_enter_zone(q):
            self.setpoint = previous  # hold at the zone's margin until the turn comes
            return False
        # Still changing posture (follow_ik's slow switch): the 1.5 s grace
        # runs at a quarter speed, or a grasp closes with the tool far off.
        moving = float(np.max(np.abs(q - self.q_cmd))) > 1e-3
        self.q_cmd = q
        if np.array_equal(self.setpoint, target):
            step.arrived_for += self.dt / 4 if moving else self.dt
            error = float(np.linalg.norm(obs["ee_pose"][:3] - target[:3]))
            return error < REACH_TOL or step.arrived_for > 1.5
        return False

    def _would_enter_zone(self, q: np.ndarray, margin: float = ZONE_MARGIN) -> bool:
        """Would moving to ``q`` bring a link of the arm deeper into the
        zone's ``margin`` (ZONE_MARGIN around the cylinder)? Off turn, no link
        goes there, whatever the plan and whatever the partner predicted."""
        new = self.clearance.zone_distance(q, cap=margin)
        if new >= margin:
            return False
        return new < self.clearance.zone_distance(self.q_cmd, cap=margin) - 1e-4

    def _clear_retreat(self, obs) -> bool:
        """Before the joint-space return home after a placement: if a link of
        the arm would pass within the margin of the tower or a block on the
        way, lift the tool first (and, if that is not enough, carry it over
        its home position); True when steps were added."""
        yaw = self.setpoint[3] if self.setpoint is not None else self.home_yaw
        points = retreat_waypoints(self.clearance, self.q_cmd, self.home_q, yaw, self._retreat_obstacles(obs))
        steps = [Step("move", "retreat", np.array([*point, yaw]), 0.0, NEAR_SPEED, data={"clearance": True})
                 for point in points]
        self.plan[0:0] = steps
        return bool(steps)

    def _retreat_obstacles(self, obs) -> list[int]:
        """What the way home keeps TOWER_MARGIN from: every block but the one in hand."""
        return self.clearance.obstacles(obs, skip=obs["holding"] if obs["holding"] >= 0 else None)

    def _way_home_clear(self, step: Step) -> bool:
        """Does the rest of the straight joint line home keep every link
        RELEASE_MARGIN out of the zone? Only then is the turn given back: an
        arm that released the moment it left the zone swung a link back in
        on its way home, after the partner had been granted the turn. The
        rest of the line is a part of the one checked, so a yes is kept."""
        if step.data.get("home_clear") or np.array_equal(self.q_cmd, self.home_q):
            return True
        path = self.clearance.joint_path(self.q_cmd, self.home_q)
        step.data["home_clear"] = all(self.clearance.zone_distance(q, cap=RELEASE_MARGIN) >= RELEASE_MARGIN
                                      for q in path)
        return step.data["home_clear"]

    def _hold_home(self) -> None:
        assert self.q_cmd is not None
        self._toward_home()

    def _toward_home(self) -> None:
        """One tick along the straight joint-space line to the home posture,
        the largest joint at JOINT_SPEED. Straight, because that line is the
        path :func:`retreat_waypoints` checked against the tower; clipping
        each joint alone (the small ones arrive first) runs another path,
        on which a plain arm's elbow swept down through the tower."""
        self.setpoint = None
        delta = self.home_q - self.q_cmd
        biggest = float(np.max(np.abs(delta)))
        limit = JOINT_SPEED * self.dt
        if not self.straight_home:
            self.q_cmd = self.q_cmd + np.clip(delta, -limit, limit)
            return
        self.q_cmd = self.home_q.copy() if biggest <= limit else self.q_cmd + delta * (limit / biggest)
