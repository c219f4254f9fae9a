"""Gripper kinds through the one interface an arm calls, and the task table."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from robot_mirror.errors import ConfigError, URDFError
from robot_mirror.sim.grippers import GRIPPER_TYPES, FingerGripper, Gripper, SuctionGripper
from robot_mirror.sim.spec import RobotSpec
from robot_mirror.sim.tasks import TASK_TYPES, ImitationTask, TowerTask, make_task
from robot_mirror.sim.world import World

GRIPPERS = {
    # urdf: (gripper class, how far beyond the tool point the block's centre starts, m)
    "franka_panda/panda.urdf": (FingerGripper, 0.0),    # between the open fingers
    "kuka_iiwa/model.urdf": (SuctionGripper, 0.026),    # just under the tool's surface
}


@pytest.fixture(scope="module")
def world():
    w = World()
    yield w
    w.close()


def _arm_with_block_at_tool(world: World, urdf: str, beyond: float):
    """An arm held in its rest pose (tool pointing down, well above the table)
    and a block at its tool, lined up with the tool frame."""
    world.reset()
    arm = world.add_arm(RobotSpec(name="a", urdf=urdf, base_position=(-0.5, 0.0, 0.0)))
    arm.reset_joints(arm.rest_q)
    arm.command_joints(arm.rest_q)
    tool = arm.tool_pose()
    axis = np.array(world.client.getMatrixFromQuaternion(tool[3:])).reshape(3, 3)[:, 2]
    block = world.add_block(tool[:3] + beyond * axis, 0.0)
    world.client.resetBasePositionAndOrientation(block, (tool[:3] + beyond * axis).tolist(), tool[3:].tolist())
    return arm, block


@pytest.mark.parametrize("urdf", sorted(GRIPPERS), ids=lambda u: u.split("/")[0])
def test_grasp_holds_and_release_drops_a_block(world, urdf: str) -> None:
    cls, beyond = GRIPPERS[urdf]
    arm, block = _arm_with_block_at_tool(world, urdf, beyond)
    assert isinstance(arm.gripper, cls) and isinstance(arm.gripper, Gripper)
    assert arm.gripper_kind == cls.kind
    assert arm.gripper_opening() == 0.0
    assert arm.grasped_block(world.blocks) is None

    arm.command_gripper(1.0, world.blocks)
    world.step(240)  # 1 s: a held block does not fall
    assert arm.grasped_block(world.blocks) == block
    assert 0.0 < arm.gripper_opening() <= 1.0
    held_z = world.block_poses()[0][2]
    assert held_z > 0.3
    assert np.linalg.norm(world.block_poses()[0][:3] - arm.tool_pose()[:3]) < 0.06

    arm.command_gripper(0.0, world.blocks)
    world.step(240)  # 1 s: a released block falls to the table
    assert arm.grasped_block(world.blocks) is None
    assert arm.gripper_opening() == pytest.approx(0.0, abs=0.02)
    assert world.block_poses()[0][2] < held_z - 0.2


def test_read_state_reports_the_grippers_opening(world) -> None:
    arm, _ = _arm_with_block_at_tool(world, "kuka_iiwa/model.urdf", 0.026)
    arm.command_gripper(0.7, world.blocks)
    assert arm.read_state()[3] == arm.gripper_opening() == pytest.approx(0.7)


def test_gripper_kinds_table_and_unknown_kind(world) -> None:
    assert GRIPPER_TYPES == {"fingers": FingerGripper, "suction": SuctionGripper}
    world.reset()
    with pytest.raises(URDFError, match="gripper 'magnet' is not one of auto, fingers, suction"):
        world.add_arm(RobotSpec(name="m", urdf="franka_panda/panda.urdf", gripper="magnet"))


def test_task_table_and_unknown_task_kind() -> None:
    assert TASK_TYPES == {"tower": TowerTask, "imitation": ImitationTask}
    with pytest.raises(ConfigError, match="task kind 'juggling' is unknown; kinds are: tower, imitation") as err:
        make_task(SimpleNamespace(kind="juggling"), [])
    assert "\n" not in str(err.value)
