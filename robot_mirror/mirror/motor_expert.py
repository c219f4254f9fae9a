"""``motor: network``: the arm moved by the mirror network's motor readout.

The scripted expert's plan for a pick-and-place (reach, grasp, lift, carry,
place, release, retreat) is replaced by one step, ``net``: every tick the
readout (:mod:`robot_mirror.mirror.motor`) names the tool's next waypoint,
speed, grip and whether the job is done, and the arm's own IK follows it
(the expert's straight tool move, one tick at a time). What stays the
planner's is safety and arbitration, the same in both modes:

- off turn, no link enters the shared zone (the move is held at its margin,
  whatever the network asks);
- when the readout says done, the checked joint-space way home, and the
  turn is given back only once that way keeps every link out of the zone;
- a job the readout does not finish in ``NET_TIMEOUT_S`` is abandoned the
  same way (counted by the evaluation as a failure, not hidden);
- a command that is not finite (a NaN or inf that reached its input) is
  not followed: the arm holds that tick (the IK would refuse the target);
- no joint is commanded faster than the arm's velocity limit (its URDF's,
  and never above ``NET_MAX_JOINT_SPEED``). The planner's paths are smooth
  by construction; a readout's waypoints are not, and the IK followed them
  at up to 6 rad/s (``MAX_TICK_JUMP`` a tick) on 3 % of a Panda's ticks.
  PyBullet's position motor ignores the URDF limit, so a joint wound up
  that way ran 5 rad/s and overshot its command by 1.5 rad when the job
  ended: the lesioned readout's arm, going home off turn on a checked
  line 4 cm from the zone, swung a finger 1.7 cm into it (seed 7104, the
  two zone violations of the lesioned row). A real controller refuses
  such a command (libfranka's limits);
- the waypoint stays on the arm's own side: no more than ``OWN_SIDE_M`` past
  the zone's centre toward the partner (along the line from this arm's base
  through the centre), where the partner waits at the zone's far edge. No
  target of either task lies beyond the centre (the tower is on it, the
  mirror game's slots are on each arm's side), so a correct readout never
  meets the bound; a wrong one once sent the tool 26 cm past the tower into
  the waiting partner (mirror_arm, seed 7107);
- the way home keeps every link on that side too: a job can end in
  another posture than the planner's, and the straight joint line home
  from it swung a zoo arm's tool 12 cm past the tower, 4 cm from the
  partner waiting there with its block (zoo010, seed 7107). The planner's
  own check of that line against the tower (lift first, or go over the
  home position) takes the far half-space as one more obstacle;
- off turn, the way home never takes a link into the zone. The planner's
  own way home starts from the tower, with the turn held, and the turn is
  given back only once the rest of it is clear; the readout's job can end
  (done, or abandoned) anywhere, off turn, e.g. beyond the tower, where the
  straight joint line home runs through the zone. Such an arm waits at
  ``HOME_GUARD_M`` from the zone until its turn comes (a lesioned core once
  swung an arm through the zone that way).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from robot_mirror.mirror.motor import MotorCommand
from robot_mirror.policies.imitation_expert import ImitationExpert
from robot_mirror.policies.plan import Step
from robot_mirror.policies.tower_expert import ScriptedExpert

NET_TIMEOUT_S = 30.0
MIN_NET_S = 0.5  # a "done" in the first half second is not believed
# m: off turn, a step home that takes a link deeper than this into the zone's margin waits. Below
# the planner's release margin (2 cm), so an arm that gave its turn back on a checked way home
# never waits on it.
HOME_GUARD_M = 0.01
# m past the zone's centre toward the partner that a readout waypoint may reach: half the default
# zone radius (0.2 m). A block placed on the tower's far edge needs 3 cm; an arm waiting off turn
# keeps every link ZONE_MARGIN outside the zone, 0.25 m from the centre.
OWN_SIDE_M = 0.10
# rad/s: the most a readout-moved joint is commanded, below the arm's URDF limit where that is lower
# (a Panda's 2.17-2.61). pybullet_data's iiwa declares 10 rad/s; a real iiwa 14 moves 1.7-3.1.
NET_MAX_JOINT_SPEED = 2.5


class NetworkMotorExpert(ScriptedExpert):
    """The tower expert whose pick-and-place motion comes from ``readout(obs, block)``."""

    # m past the zone's centre a readout waypoint may reach; None lifts the bound and its way-home
    # ghost (the ablation in bench/motor.py: condition network_unbounded), never a scenario setting
    own_side_m: float | None = OWN_SIDE_M

    def __init__(self, *args, readout: Callable[[dict[str, Any], int], MotorCommand], **kwargs) -> None:
        self.readout = readout
        super().__init__(*args, **kwargs)
        toward = self.tower_xy - np.asarray(self.spec.base_position[:2], float)
        self.toward_partner = toward / max(float(np.linalg.norm(toward)), 1e-9)
        urdf_limits = np.array([joint.max_velocity for joint in self.kin.arm.arm_joints], float)
        self.max_joint_step = np.minimum(urdf_limits, NET_MAX_JOINT_SPEED) * self.dt  # rad a tick

    def reset(self) -> None:
        super().reset()
        self.own_side_clamps = 0  # ticks whose waypoint the own-side bound moved (a wrong readout)
        self.speed_limited = 0  # ticks whose joint command the velocity limit cut short

    def _plan_pick_and_place(self, obs, block: int, ahead: bool = False) -> None:
        self.block = block
        self.target = self._place_spot(obs)[3]
        self.plan = [Step("net", "reach"),
                     Step("home", "retreat", gripper=0.0, data={"after_place": True, "after_place_check": True})]

    def _execute(self, step: Step, obs) -> bool:
        if step.kind == "home" and not obs["my_turn"]:
            return self._home_off_turn(step, obs)
        if step.kind != "net":
            return super()._execute(step, obs)
        step.elapsed += self.dt
        command = self.readout(obs, int(self.block))
        step.label = self.segment = command.segment
        holding = int(obs["holding"]) == self.block
        if (command.done and not holding and step.elapsed > MIN_NET_S) or step.elapsed > NET_TIMEOUT_S:
            self.gripper = 0.0
            return True
        if np.all(np.isfinite(command.waypoint)) and np.isfinite(command.speed):
            waypoint = self._own_side(command.waypoint)
            self._move_within_joint_speed(Step("move", step.label, waypoint, command.grip, command.speed), obs)
        return False

    def _move_within_joint_speed(self, step: Step, obs) -> None:
        """One tick of the straight tool move, the joint command cut short on
        the straight joint line where a joint would pass its velocity limit.
        Off turn the shortened command is checked against the zone again
        (the move checked only its end); held where it would go deeper."""
        before, setpoint = self.q_cmd.copy(), None if self.setpoint is None else self.setpoint.copy()
        self._execute_move(step, obs)
        delta = self.q_cmd - before
        scale = float(np.min(self.max_joint_step / np.maximum(np.abs(delta), 1e-12)))
        if scale >= 1.0:
            return
        self.speed_limited += 1
        self.q_cmd = before + delta * scale
        if not obs["my_turn"] and self._would_enter_zone(self.q_cmd):
            self.q_cmd, self.setpoint = before, setpoint

    def _retreat_obstacles(self, obs) -> list[int]:
        if self.own_side_m is None:
            return super()._retreat_obstacles(obs)
        return [*super()._retreat_obstacles(obs), self.clearance.beyond_ghost(self.toward_partner, self.own_side_m)]

    def _own_side(self, waypoint: np.ndarray) -> np.ndarray:
        """The waypoint moved back, along the line between the arms, to ``own_side_m`` past the zone's centre."""
        if self.own_side_m is None:
            return waypoint
        beyond = float(np.dot(waypoint[:2] - self.tower_xy, self.toward_partner)) - self.own_side_m
        if beyond <= 0.0:
            return waypoint
        self.own_side_clamps += 1
        kept = np.array(waypoint, float)
        kept[:2] -= beyond * self.toward_partner
        return kept

    def _home_off_turn(self, step: Step, obs) -> bool:
        """The planner's step home, held where it would take a link into the zone."""
        before = self.q_cmd.copy()
        done = super()._execute(step, obs)
        moved, self.q_cmd = self.q_cmd, before
        if self._would_enter_zone(moved, HOME_GUARD_M):
            return False
        self.q_cmd = moved
        return done


class NetworkImitationExpert(NetworkMotorExpert, ImitationExpert):
    """The mirror game with the readout moving the arm. What stays the
    imitation expert's is what the round asks and when: which block is ours,
    the slot (the leader's announced one; the follower's recognised one,
    asked every tick before the grant and committed at it), and the turn,
    given back the moment our block is let go. Where the arm goes to fetch
    it, hover over the slot, put it down and let go is the readout's, told
    the slot only as the point its block lands on (``landing_point``)."""

    def _plan_pick_and_place(self, obs, block: int, ahead: bool = False) -> None:
        self._turn_released = False
        self._letting_go = False
        self._had_block = False
        self._committed = bool(obs["my_turn"])
        NetworkMotorExpert._plan_pick_and_place(self, obs, block)

    def _retarget(self, obs) -> None:
        """Before the grant: the readout is steered by the slot believed now."""
        slot = self._ask(obs)
        if self.plan and self.block is not None and 0 <= slot < len(obs["slots"]):
            self._slot = self.target = slot

    def _execute(self, step: Step, obs) -> bool:
        if step.kind == "net":
            self._had_block = self._had_block or int(obs["holding"]) == self.block
        done = super()._execute(step, obs)
        if step.kind == "net" and self._had_block and self.gripper == 0.0:
            self._letting_go = True  # opened after holding it: ImitationExpert.act gives the turn back
        return done

    def act(self, obs: dict[str, Any]):
        if self._following(obs) and obs["my_turn"] and self.plan:
            self._retarget(obs)  # the grant: asked once more, then committed
            self._committed = True
        return super().act(obs)
