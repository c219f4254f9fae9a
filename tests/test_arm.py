"""Arms from any URDF: joint, limit, end-effector and gripper discovery; IK."""

from __future__ import annotations

import numpy as np
import pytest

from robot_mirror.errors import URDFError
from robot_mirror.geometry import top_down_quat
from robot_mirror.sim.kinematics import Kinematics
from robot_mirror.sim.spec import RobotSpec
from robot_mirror.sim.world import World
from tests.conftest import ROOT, assert_one_line_error, run_cli

ARMS = {
    # urdf: (arm dof, expected ee link, gripper kind chosen by "auto", finger joints)
    "franka_panda/panda.urdf": (7, "panda_grasptarget", "fingers", 2),
    "kuka_iiwa/model.urdf": (7, "lbr_iiwa_link_7", "suction", 0),
    "xarm/xarm6_robot.urdf": (6, "link6", "suction", 0),
    str(ROOT / "urdf/mirror_arm.urdf"): (6, "tool", "suction", 0),
}


@pytest.fixture(scope="module")
def world():
    w = World()
    w.reset()
    yield w
    w.close()


@pytest.mark.parametrize("urdf", sorted(ARMS), ids=lambda u: u.split("/")[-1])
def test_discovers_joints_limits_ee_and_gripper(world, urdf: str) -> None:
    dof, ee, gripper, fingers = ARMS[urdf]
    arm = world.add_arm(RobotSpec(name=f"a{len(world.arms)}", urdf=urdf, base_position=(0, 0, 0)))
    assert arm.dof == dof
    assert arm.ee_link_name == ee
    assert arm.gripper_kind == gripper
    assert len(arm.finger_joints) == fingers
    assert np.all(arm.lower < arm.upper)
    assert np.all(arm.max_force > 0)
    q, dq = arm.joint_state()
    assert q.shape == dq.shape == (dof,)


def test_ee_link_override_and_bad_override(world) -> None:
    arm = world.add_arm(RobotSpec(name="p2", urdf="franka_panda/panda.urdf", ee_link="panda_hand"))
    assert arm.ee_link_name == "panda_hand"
    with pytest.raises(URDFError, match="ee_link 'wrist9' is not a link"):
        world.add_arm(RobotSpec(name="p3", urdf="franka_panda/panda.urdf", ee_link="wrist9"))


def test_fingers_requested_on_arm_without_fingers(world) -> None:
    with pytest.raises(URDFError, match="no finger joints"):
        world.add_arm(RobotSpec(name="k", urdf="kuka_iiwa/model.urdf", gripper="fingers"))


def test_panda_can_be_forced_to_suction(world) -> None:
    arm = world.add_arm(RobotSpec(name="ps", urdf="franka_panda/panda.urdf", gripper="suction"))
    assert arm.gripper_kind == "suction"


def test_package_uri_meshes_resolve(world, fixtures) -> None:
    """``package://`` and relative mesh paths load (PyBullet alone does not resolve the former)."""
    urdf = fixtures / "pkg_arm/urdf/pkg_arm.urdf"
    assert "package://" in urdf.read_text()
    arm = world.add_arm(RobotSpec(name="pkg", urdf=str(urdf)))
    assert arm.dof == 3
    assert arm.ee_link_name == "ee_link"


def test_missing_mesh_is_named(tmp_path, world, fixtures) -> None:
    text = (fixtures / "pkg_arm/urdf/pkg_arm.urdf").read_text().replace("meshes/link.obj", "meshes/gone.obj")
    bad = fixtures / "pkg_arm/urdf/_tmp_missing_mesh.urdf"
    bad.write_text(text)
    try:
        with pytest.raises(URDFError, match="gone.obj"):
            world.add_arm(RobotSpec(name="pkg2", urdf=str(bad)))
    finally:
        bad.unlink()


@pytest.mark.parametrize("urdf", ["franka_panda/panda.urdf", "xarm/xarm6_robot.urdf",
                                  str(ROOT / "urdf/mirror_arm.urdf")], ids=lambda u: u.split("/")[-1])
def test_ik_reaches_table_poses(urdf: str) -> None:
    kin = Kinematics(RobotSpec(name="k", urdf=urdf, base_position=(-0.6, 0, 0)))
    try:
        for target in ([-0.3, 0.2, 0.03], [-0.25, -0.2, 0.1], [0.0, 0.0, 0.3]):
            pose = np.array([*target, *top_down_quat(0.3)])
            q, err, ang = kin.ik(pose, kin.home_q, iterations=8)
            assert err < 0.005 and ang < 0.05, (target, err, ang)
            assert np.all(q >= kin.lower - 1e-9) and np.all(q <= kin.upper + 1e-9)
    finally:
        kin.close()


def test_check_urdf_prints_structure_and_reach() -> None:
    proc = run_cli("check-urdf", "franka_panda/panda.urdf")
    assert proc.returncode == 0, proc.stderr
    for needle in ("panda_joint1", "panda_grasptarget", "fingers", "tower top", "reachable   yes"):
        assert needle in proc.stdout


@pytest.mark.parametrize("args,needles", [
    (["no/such.urdf"], ["no/such.urdf", "not found"]),
    (["tests/fixtures/malformed.urdf"], ["malformed.urdf", "malformed XML"]),
    (["tests/fixtures/no_joints.urdf"], ["no_joints.urdf", "no movable joints"]),
    (["kuka_iiwa/model.urdf", "--base", "-0.5", "0", "0"], ["cannot reach"]),
], ids=["missing", "malformed", "no-joints", "unreachable"])
def test_check_urdf_errors(args, needles) -> None:
    assert_one_line_error(run_cli("check-urdf", *args), *needles)
