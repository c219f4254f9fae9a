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


FAR = np.array([1.7, -1.2, 0.0])  # the other posture a restart answers with


class _FlippingTwin:
    """A twin whose multi-start answers with another posture (``FAR`` away,
    exact) and whose warm start without restarts stays on the seed's
    posture (``near_step`` away, ``near_err`` off the pose)."""

    def __init__(self, near_step: float, near_err: float) -> None:
        self.near_step, self.near_err = near_step, near_err

    def ik(self, pose, q, iterations=4, restarts=True):
        q = np.asarray(q, float)
        if restarts:
            return q + FAR, 0.0, 0.0
        return q + np.array([self.near_step, 0.0, 0.0]), self.near_err, 0.0


def test_followed_tool_path_never_jumps_to_another_posture() -> None:
    """A restart's far posture is refused when the seed's posture reaches
    the pose; when it does not (a joint limit), the arm changes posture on
    the straight joint line at POSTURE_STEP a tick, never in one jump."""
    from robot_mirror.policies.clearance import POSTURE_STEP, follow_ik

    q = np.zeros(3)
    stay = follow_ik(_FlippingTwin(0.02, 0.004), np.zeros(7), q)
    assert np.allclose(stay, [0.02, 0.0, 0.0])
    switch = follow_ik(_FlippingTwin(0.0, 0.10), np.zeros(7), q)
    assert np.max(np.abs(switch - q)) == pytest.approx(POSTURE_STEP)
    assert np.allclose(switch / np.linalg.norm(switch), FAR / np.linalg.norm(FAR))


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


def _placing_obs(blocks, holding: int, tool_xyz) -> dict:
    return {"blocks": np.array([[*b, 0.0, 0.0, 0.0, 1.0] for b in blocks], float), "holding": holding,
            "ee_pose": np.array([*tool_xyz, 0.0, 1.0, 0.0, 0.0])}


def test_block_lands_centred_and_on_what_is_really_there() -> None:
    """A suction cup holding its block 1.2 cm off centre places the block,
    not the tool, over the spot; and a block lying on the tower outside the
    stacking tolerance (not counted in the tower's height) still raises the
    landing surface, so the next block is not pressed through it."""
    from robot_mirror.policies.placing import held_offset, landing_surface

    size = 0.05
    obs = _placing_obs([(0.0, 0.0, 0.025), (0.009, 0.013, 0.075), (0.4, 0.1, 0.3)], holding=2,
                       tool_xyz=(0.388, 0.1, 0.35))
    assert np.allclose(held_offset(obs, 2, size), [0.012, 0.0])
    assert np.allclose(held_offset(obs, 1, size), 0.0)  # not held: no offset
    assert landing_surface(obs, 0.0, 0.0, 1 * size, size, skip=2) == pytest.approx(0.1)
    assert landing_surface(obs, 0.3, -0.3, 0.0, size, skip=2) == 0.0


def test_turn_is_given_back_only_when_the_way_home_keeps_out_of_the_zone() -> None:
    """Out of the zone after placing, the expert releases the turn only if
    the rest of its straight joint line home keeps every link out of the
    zone (zoo040_panda swung its forearm back in after releasing)."""
    from robot_mirror.config.scenario import load_scenario
    from robot_mirror.policies.plan import Step
    from robot_mirror.policies.tower_expert import ScriptedExpert
    from tests.conftest import ROOT

    scenario = load_scenario(ROOT / "launch/tower.yaml")
    spec = RobotSpec.from_config(scenario.robot("left"), scenario.base_dir)
    kin = Kinematics(spec)
    try:
        expert = ScriptedExpert(spec, scenario.task, scenario.control_hz, kin)
        start = kin.home_q + 0.5
        middle = (start + kin.home_q) / 2
        for inside, expected in ((True, ""), (False, "release")):
            expert.reset()
            expert.q_cmd, expert.block = start.copy(), 0
            expert.plan = [Step("home", "retreat", data={"after_place": True})]
            expert.clearance.zone_distance = (
                lambda q, cap=1.0, inside=inside: -0.01 if inside and np.allclose(q, middle, atol=0.03) else cap)
            obs = {"q": start, "my_turn": True, "in_zone": False, "holding": -1, "ee_pose": kin.fk(start)}
            assert expert.act(obs).turn == expected
    finally:
        kin.close()
