"""Any arm next to the tower: the home (waiting) posture keeps every link
out of the shared zone, the expert's per-tick IK never jumps to another
posture, and its return home runs on the joint line its clearance check
sampled."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robot_mirror.config.scenario import TowerConfig
from robot_mirror.sim.home import HOME_ZONE_MARGIN, zone_clearance
from robot_mirror.sim.kinematics import Kinematics
from robot_mirror.sim.spec import RobotSpec
from robot_mirror.sim.tasks import make_task
from robot_mirror.sim.zoo import generate


def _task_and_spec(arm):
    spec = RobotSpec(name="c", urdf=arm.urdf, base_position=arm.base, base_yaw=math.radians(arm.yaw_deg),
                     gripper=arm.gripper)
    partner = RobotSpec(name="p", urdf="franka_panda/panda.urdf", base_position=(0.6, 0.0, 0.0), base_yaw=math.pi)
    return make_task(TowerConfig(), [spec, partner]), spec


@pytest.fixture(scope="module")
def zoo_arms(tmp_path_factory):
    return generate(6, tmp_path_factory.mktemp("zoo"), seed=0)


def test_home_posture_keeps_every_link_out_of_the_zone(zoo_arms) -> None:
    """zoo001_ur's first home posture folds its forearm ~6 cm into the zone
    (the tool rests 12 cm outside it); given the zone, the twin picks a
    posture whose every link keeps the margin, for every generated arm."""
    ur = next(a for a in zoo_arms if a.name == "zoo001_ur")
    task, spec = _task_and_spec(ur)
    blind = Kinematics(spec, home_reach=task.home_reach(spec))
    try:
        assert zone_clearance(blind, blind.home_q, task.zone) < 0.0, "the case this test guards is gone"
    finally:
        blind.close()
    for arm in zoo_arms:
        task, spec = _task_and_spec(arm)
        kin = Kinematics(spec, home_reach=task.home_reach(spec), zone=task.zone)
        try:
            assert zone_clearance(kin, kin.home_q, task.zone) >= HOME_ZONE_MARGIN - 1e-6, arm.name
            tool = kin.fk(kin.home_q)
            assert np.linalg.norm(tool[:2] - task.zone.center_xy) > task.zone.radius + HOME_ZONE_MARGIN
        finally:
            kin.close()


class _FlippingTwin:
    """A twin whose multi-start answers with another posture (``far``) and
    whose warm start without restarts stays near the seed (``near``)."""

    def __init__(self, near_step: float) -> None:
        self.near_step = near_step

    def ik(self, pose, q, iterations=4, restarts=True):
        q = np.asarray(q, float)
        if restarts:
            return q + np.array([1.7, -1.2, 0.0]), 0.0, 0.0
        return q + np.array([self.near_step, 0.0, 0.0]), 0.004, 0.0


def test_followed_tool_path_never_jumps_to_another_posture() -> None:
    """A restart's far posture is refused for the warm answer on the same
    posture; a warm answer that still jumps is cut to MAX_TICK_JUMP."""
    from robot_mirror.policies.clearance import MAX_TICK_JUMP, follow_ik

    q = np.zeros(3)
    stay = follow_ik(_FlippingTwin(0.02), np.zeros(7), q)
    assert np.allclose(stay, [0.02, 0.0, 0.0])
    cut = follow_ik(_FlippingTwin(0.5), np.zeros(7), q)
    assert np.max(np.abs(cut - q)) == pytest.approx(MAX_TICK_JUMP)


def test_return_home_runs_on_the_straight_joint_line() -> None:
    """The clearance check samples the straight joint line to home; the
    expert must move on it (every joint arriving together), or what it
    checked is not what it runs."""
    from robot_mirror.config.scenario import load_scenario
    from robot_mirror.policies.tower_expert import JOINT_SPEED, ScriptedExpert
    from tests.conftest import ROOT

    scenario = load_scenario(ROOT / "launch/tower.yaml")
    spec = RobotSpec.from_config(scenario.robot("left"), scenario.base_dir)
    kin = Kinematics(spec)
    try:
        expert = ScriptedExpert(spec, scenario.task, scenario.control_hz, kin)
        start = kin.home_q + np.linspace(0.6, -0.1, kin.dof)
        expert.q_cmd = start.copy()
        line = (kin.home_q - start) / np.linalg.norm(kin.home_q - start)
        for _ in range(10):
            before = expert.q_cmd.copy()
            expert._hold_home()
            step = expert.q_cmd - before
            assert np.max(np.abs(step)) == pytest.approx(JOINT_SPEED * expert.dt)
            off_line = (expert.q_cmd - start) - np.dot(expert.q_cmd - start, line) * line
            assert np.max(np.abs(off_line)) < 1e-9
    finally:
        kin.close()
