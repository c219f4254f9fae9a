"""Whole-arm clearance of the scripted expert: retreat and approach keep
every link off the tower and the blocks, an arm off turn keeps out of the
zone's margin, never fetches a block from the tower, places at the height it
holds its block at; and the tower task counts disturbed blocks."""

from __future__ import annotations

import numpy as np
import pytest

from robot_mirror.config.scenario import load_scenario
from robot_mirror.geometry import top_down_quat
from robot_mirror.policies.clearance import TOWER_MARGIN, ZONE_MARGIN, Clearance, retreat_waypoints
from robot_mirror.policies.plan import Step
from robot_mirror.policies.tower_expert import ScriptedExpert
from robot_mirror.sim.kinematics import Kinematics
from robot_mirror.sim.spec import RobotSpec
from robot_mirror.sim.tasks.tower import TowerTask
from tests.conftest import ROOT

SIZE = 0.05


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(ROOT / "launch/tower_mixed.yaml")


@pytest.fixture(scope="module")
def panda(scenario):
    kin = Kinematics(RobotSpec.from_config(scenario.robot("panda"), scenario.base_dir))
    yield kin
    kin.close()


def block_poses(*xyz) -> np.ndarray:
    return np.array([[*p, 0.0, 0.0, 0.0, 1.0] for p in xyz], float)


def observation(kin, q, blocks, *, my_turn: bool, mine=None, placed=None, holding: int = -1) -> dict:
    n = len(blocks)
    return {
        "q": np.asarray(q, float), "ee_pose": kin.fk(q), "my_turn": my_turn, "holder": "" if my_turn else "iiwa",
        "in_zone": False, "holding": holding, "blocks": blocks,
        "my_blocks": np.ones(n, bool) if mine is None else np.asarray(mine, bool),
        "placed": np.zeros(n, bool) if placed is None else np.asarray(placed, bool),
        "tower_count": 0, "tower_xy": np.zeros(2),
    }


def over_tower_q(kin, z: float = 0.30) -> np.ndarray:
    q, err, _ = kin.ik(np.array([0.0, 0.0, z, *top_down_quat(0.0)]), kin.home_q, iterations=8)
    assert err < 0.005
    return q


# ------------------------------------------------------------- retreat
def test_retreat_lifts_when_the_way_home_passes_a_block(panda) -> None:
    """A block right under the hand halfway home: the direct joint-space
    return would brush it; the planner lifts first, and the path it plans
    keeps every link the margin away."""
    clr = Clearance(panda, (0.0, 0.0), 0.2, SIZE)
    q = over_tower_q(panda)
    path = clr.joint_path(q, panda.home_q)
    assert clr.path_clear(path, clr.obstacles({"blocks": block_poses()}))
    assert retreat_waypoints(clr, q, panda.home_q, 0.0, []) == []

    mid = panda.fk(path[len(path) // 2])[:3]
    ghosts = clr.obstacles({"blocks": block_poses(mid - [0.0, 0.0, 0.05])})
    assert not clr.path_clear(path, ghosts, TOWER_MARGIN)
    points = retreat_waypoints(clr, q, panda.home_q, 0.0, ghosts)
    assert points, "the planner must re-plan"
    tool = panda.fk(q)[:3]
    qs, last = [], q
    for a, b in zip([tool, *points], points):
        qs += clr.tool_path(last, a, b, 0.0)
        last = qs[-1]
    qs += clr.joint_path(last, panda.home_q)
    assert clr.path_clear(qs, ghosts, TOWER_MARGIN)


def make_expert(scenario, kin) -> ScriptedExpert:
    return ScriptedExpert(kin.spec, scenario.task, scenario.control_hz, kin)


def test_expert_lifts_before_going_home_past_a_block(scenario, panda) -> None:
    expert = make_expert(scenario, panda)
    q = over_tower_q(panda)
    path = expert.clearance.joint_path(q, panda.home_q)
    mid = panda.fk(path[len(path) // 2])[:3]
    obs = observation(panda, q, block_poses(mid - [0.0, 0.0, 0.05]), my_turn=True)
    expert.q_cmd = q.copy()
    expert.block = 0
    expert.plan = [Step("home", "retreat", data={"after_place": True, "after_place_check": True})]
    expert.act(obs)
    assert expert.plan[0].kind == "move" and expert.plan[0].target[2] > panda.fk(q)[2]
    assert expert.plan[-1].kind == "home"


# ---------------------------------------------------------------- zone


def test_off_turn_the_arm_stops_at_the_zone_margin(scenario, panda) -> None:
    """Whatever its plan says, an arm without the turn moves no link into the
    zone's margin; with the turn it goes on."""
    expert = make_expert(scenario, panda)
    blocks = block_poses((-0.3, 0.2, 0.025))
    obs = observation(panda, panda.home_q, blocks, my_turn=False, placed=[False])
    expert.q_cmd = panda.home_q.copy()
    expert.plan = [Step("move", "carry", np.array([0.0, 0.0, 0.30, 0.0]), 1.0, 0.5)]
    for _ in range(240):
        expert.act(obs)
    assert expert.clearance.zone_distance(expert.q_cmd) >= ZONE_MARGIN - 0.005
    obs["my_turn"] = True
    inside = False
    for _ in range(120):
        expert.act(obs)
        inside = inside or expert.clearance.zone_distance(expert.q_cmd) < 0.0
    assert inside


def test_staging_keeps_every_link_outside_the_zone(scenario, panda, monkeypatch) -> None:
    """The wait pose moves out until the whole arm keeps the margin (here a
    margin wider than the default staging distance gives)."""
    import robot_mirror.policies.tower_expert as tower_expert

    monkeypatch.setattr(tower_expert, "ZONE_MARGIN", 0.12)
    expert = make_expert(scenario, panda)
    for block_xy in ([-0.30, 0.24], [-0.38, -0.12], [-0.30, -0.24]):
        xy = expert._staging(np.array(block_xy), 0.12, 0.0)
        # The posture the expert itself reaches the wait pose with (its IK from
        # its own start: another seed may find another posture of the arm).
        q, _, _ = expert.kin.ik(np.array([*xy, 0.12, *top_down_quat(0.0)]), expert.home_q)
        assert expert.clearance.zone_distance(q) >= 0.12 - 0.005


def test_prefetch_never_takes_a_block_from_the_tower(scenario, panda) -> None:
    """A partner pressing its block down can un-count ours below it for a
    tick; fetching ahead, the expert must not go for it."""
    expert = make_expert(scenario, panda)
    blocks = block_poses((0.0, 0.0, 0.025), (-0.3, 0.12, 0.025))
    obs = observation(panda, panda.home_q, blocks, my_turn=False)
    assert expert._next_block(obs) == 1
    obs["placed"] = np.array([False, True])
    assert expert._next_block(obs) is None
    obs["my_turn"] = True
    assert expert._next_block(obs) == 0


def test_place_height_is_where_the_block_is_held(scenario, panda) -> None:
    """A suction cup holds the block where it touched it: the place height
    comes from the observed hold, not from the aimed grasp."""
    expert = make_expert(scenario, panda)
    expert.block = 0
    obs = observation(panda, panda.home_q, block_poses((0.0, 0.0, 0.0)), my_turn=True, holding=0)
    tool_z = obs["ee_pose"][2]
    obs["blocks"][0][2] = tool_z - 0.02
    assert expert._held_height(obs) == pytest.approx(0.02 + SIZE / 2)
    obs["holding"] = -1
    assert expert._held_height(obs) == expert.grasp_height


# ------------------------------------------------------- disturbances
@pytest.fixture
def tower_task(scenario) -> TowerTask:
    specs = [RobotSpec.from_config(r, scenario.base_dir) for r in scenario.robots]
    task = TowerTask(load_scenario(ROOT / "launch/tower_mixed.yaml", ["task.blocks=2"]).task, specs)
    return task


def test_tower_disturbances_count_moved_unheld_blocks(tower_task) -> None:
    none = {"panda": None, "iiwa": None}
    poses = block_poses((0.0, 0.0, 0.025), (0.3, 0.2, 0.025))
    tower_task.update(0.0, poses, none, [])
    tower_task.update(0.1, poses, none, [])  # at rest: referenced
    poses[1, :3] = [0.0, 0.0, 0.085]  # held 1 cm high, then let go: falling, not at rest yet
    tower_task.update(0.2, poses, {"panda": None, "iiwa": 1}, [])
    poses[1, 2] = 0.083  # counted on the tower (within a quarter block of level 1), still falling
    tower_task.update(0.3, poses, none, [])
    poses[1, 2] = 0.075
    tower_task.update(0.4, poses, none, [])
    tower_task.update(0.45, poses, none, [])
    assert tower_task.summary()["tower_disturbances"] == 0
    poses[0, 0] += 0.01  # knocked
    tower_task.update(0.5, poses, none, [])
    assert tower_task.summary()["tower_disturbances"] == 1
    tower_task.reset_state()
    assert tower_task.summary()["tower_disturbances"] == 0
