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
