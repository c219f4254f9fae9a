"""A robot arm built from any URDF.

The arm discovers its own structure: which joints move, their limits, which
link is the end effector and what kind of gripper it has. Nothing here is
specific to one robot, so a user's URDF works the same as the shipped ones.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pybullet as p

from robot_mirror.errors import URDFError
from robot_mirror.sim.assets import prepare_urdf, resolve_urdf
from robot_mirror.sim.grippers import GRIPPER_KINDS, Gripper, make_gripper
from robot_mirror.sim.spec import RobotSpec

__all__ = ["Arm", "GRIPPER_KINDS", "JointInfo", "KNOWN_REST_POSES"]

# Links whose names say "this is where the tool is", most specific first.
_EE_NAME_PATTERNS = [
    r"grasp_?target", r"tcp", r"tool0?$", r"tool", r"eef", r"end_?effector", r"ee_?link", r"^ee$", r"hand$",
]
_FINGER_PATTERN = re.compile(r"finger|gripper|knuckle", re.IGNORECASE)

# Null-space rest postures for well-known arms: elbow up, wrist down. IK is
# attracted to these, which keeps the solutions far from joint limits and
# consistent from one call to the next. Unknown arms use mid-range.
KNOWN_REST_POSES = {
    "panda.urdf": [0.0, -0.3, 0.0, -2.2, 0.0, 2.0, 0.785],
    "model.urdf": [0.0, 0.5, 0.0, -1.6, 0.0, 1.0, 0.0],  # kuka_iiwa
    "xarm6_robot.urdf": [0.0, -0.3, -0.9, 0.0, 1.2, 0.0],
    "xarm6_robot_white.urdf": [0.0, -0.3, -0.9, 0.0, 1.2, 0.0],
}


@dataclass(frozen=True)
class JointInfo:
    index: int
    name: str
    child_link: str
    lower: float
    upper: float
    max_force: float
    max_velocity: float


class Arm:
    """One arm's body in one PyBullet client (a world or a kinematic twin)."""

    def __init__(self, client, spec: RobotSpec) -> None:
        self.client = client
        self.spec = spec
        self.name = spec.name
        path = resolve_urdf(spec.urdf, spec.urdf_base_dir)
        self.urdf_path = path
        loadable = prepare_urdf(path)
        try:
            self.body = client.loadURDF(
                str(loadable),
                basePosition=spec.base_position,
                baseOrientation=spec.base_orientation(),
                useFixedBase=True,
                flags=p.URDF_USE_INERTIA_FROM_FILE,
            )
        except p.error as exc:
            raise URDFError(f"{path}: PyBullet could not load it ({exc})") from None
        self._discover_joints(path)
        self.ee_index = self._find_ee_link(spec.ee_link, path)
        self.ee_link_name = self.link_names[self.ee_index]
        self.gripper: Gripper = make_gripper(self, spec.gripper, path)
        self.rest_q = self._rest_pose(path)
        self.tool_offset = self.gripper.measure_tool_offset()
        self._keypoint_links = self.keypoint_links()
        self.gripper.setup()
        self.gripper_command = 0.0
        self.clamped_commands = 0

    # ----------------------------------------------------------- discovery
    def _discover_joints(self, path: Path) -> None:
        c = self.client
        self.link_names: dict[int, str] = {-1: c.getBodyInfo(self.body)[0].decode()}
        self.arm_joints: list[JointInfo] = []
        self.finger_joints: list[JointInfo] = []
        self._movable_order: list[int] = []  # every non-fixed joint, as IK reports them
        self._parent: dict[int, int] = {}
        for j in range(c.getNumJoints(self.body)):
            info = c.getJointInfo(self.body, j)
            jname, jtype, link = info[1].decode(), info[2], info[12].decode()
            self.link_names[j] = link
            self._parent[j] = info[16]
            if jtype not in (p.JOINT_REVOLUTE, p.JOINT_PRISMATIC):
                continue
            lower, upper = float(info[8]), float(info[9])
            if lower >= upper:  # continuous joint or no limit given
                lower, upper = (-2 * math.pi, 2 * math.pi) if jtype == p.JOINT_REVOLUTE else (-1.0, 1.0)
            joint = JointInfo(
                index=j, name=jname, child_link=link, lower=lower, upper=upper,
                max_force=float(info[10]) if info[10] > 0 else 100.0,
                max_velocity=float(info[11]) if info[11] > 0 else 2.0,
            )
            self._movable_order.append(j)
            if _FINGER_PATTERN.search(jname) or _FINGER_PATTERN.search(link):
                self.finger_joints.append(joint)
            else:
                self.arm_joints.append(joint)
        if not self.arm_joints:
            raise URDFError(f"{path}: no movable joints (revolute or prismatic) outside the gripper")
        self.joint_indices = [j.index for j in self.arm_joints]
        self.lower = np.array([j.lower for j in self.arm_joints])
        self.upper = np.array([j.upper for j in self.arm_joints])
        self.max_force = np.array([j.max_force for j in self.arm_joints])
        self._forces = self.max_force.tolist()  # what command_joints sends every tick
        self.dof = len(self.arm_joints)
        self._arm_slots = [self._movable_order.index(j) for j in self.joint_indices]

    def _find_ee_link(self, requested: str | None, path: Path) -> int:
        by_name = {v: k for k, v in self.link_names.items()}
        if requested:
            if requested not in by_name:
                raise URDFError(
                    f"{path}: ee_link '{requested}' is not a link; links are: "
                    + ", ".join(self.link_names[i] for i in sorted(self.link_names))
                )
            return by_name[requested]
        # Links descended from the last arm joint, fingers excluded.
        last = self.joint_indices[-1]
        chain = [last]
        children = [j for j, parent in self._parent.items() if parent in chain]
        while children:
            chain += children
            children = [j for j, parent in self._parent.items() if parent in children]
        candidates = [j for j in chain if not _FINGER_PATTERN.search(self.link_names[j])]
        for pattern in _EE_NAME_PATTERNS:
            for j in candidates:
                if re.search(pattern, self.link_names[j], re.IGNORECASE):
                    return j
        return last

    @property
    def gripper_kind(self) -> str:
        """The gripper's kind: "fingers" or "suction" (never "auto")."""
        return self.gripper.kind

    def parent_link(self, link: int, default: int) -> int:
        """Index of ``link``'s parent link (-1: the base), or ``default`` if unknown."""
        return self._parent.get(link, default)

    def _rest_pose(self, path: Path) -> np.ndarray:
        known = KNOWN_REST_POSES.get(path.name)
        if known is not None and len(known) == self.dof:
            return np.array(known, dtype=float)
        return np.clip(np.zeros(self.dof), self.lower, self.upper)

    # --------------------------------------------------------------- state
    def joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        states = self.client.getJointStates(self.body, self.joint_indices)
        q = np.fromiter((s[0] for s in states), float, self.dof)
        dq = np.fromiter((s[1] for s in states), float, self.dof)
        return q, dq

    def read_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, np.ndarray]:
        """``(q, dq, tool_pose, gripper_opening, keypoints)``: the same values as
        joint_state(), tool_pose(), gripper_opening() and keypoints(), read
        with two queries instead of four (the environment reads all of them
        every tick, and each query has a fixed cost)."""
        c, dof = self.client, self.dof
        states = c.getJointStates(self.body, [*self.joint_indices, *(j.index for j in self.finger_joints)])
        q = np.fromiter((s[0] for s in states[:dof]), float, dof)
        dq = np.fromiter((s[1] for s in states[:dof]), float, dof)
        links = c.getLinkStates(self.body, [*self._keypoint_links, self.ee_index], computeForwardKinematics=True)
        tool = self._tool_pose_from(links[3][4], links[3][5])
        return q, dq, tool, self.gripper.opening_from(states[dof:]), self._keypoints_from(links[:3], tool)

    def ee_frame(self) -> tuple[tuple, tuple]:
        state = self.client.getLinkState(self.body, self.ee_index, computeForwardKinematics=True)
        return state[4], state[5]

    def tool_pose(self) -> np.ndarray:
        """Pose (7,) of the tool point: the end-effector frame moved out by the tool offset."""
        return self._tool_pose_from(*self.ee_frame())

    def _tool_pose_from(self, pos, orn) -> np.ndarray:
        pose = np.array([*pos, *orn], dtype=float)
        if self.tool_offset:
            axis = np.array(self.client.getMatrixFromQuaternion(orn)).reshape(3, 3)[:, 2]
            pose[:3] += self.tool_offset * axis
        return pose

    def gripper_opening(self) -> float:
        """0 = fully open, 1 = fully closed (fingers); suction reports its command."""
        return self.gripper.opening()

    def keypoint_links(self) -> list[int]:
        """Links seen as the arm's keypoints: a third and two thirds along the
        arm chain and its last link. With the base and the tool point that is
        five points for every arm, whatever its number of joints, so arms of
        different makes are perceived in the same units."""
        chain = [j.index for j in self.arm_joints]
        n = len(chain)
        return [chain[max(0, round(n / 3) - 1)], chain[max(0, round(2 * n / 3) - 1)], chain[-1]]

    def keypoints(self) -> np.ndarray:
        """(5, 3) world positions: base, two along the chain, last arm link, tool point."""
        # One query for the three links and the end effector (the tool point
        # is derived from the latter exactly as tool_pose() does).
        states = self.client.getLinkStates(
            self.body, [*self._keypoint_links, self.ee_index], computeForwardKinematics=True)
        return self._keypoints_from(states[:3], self._tool_pose_from(states[3][4], states[3][5]))

    def _keypoints_from(self, link_states, tool: np.ndarray) -> np.ndarray:
        points = np.empty((5, 3))
        points[0] = self.spec.base_position
        for i, state in enumerate(link_states):
            points[i + 1] = state[4]
        points[4] = tool[:3]
        return points

    def link_aabbs(self) -> list[tuple[tuple, tuple]]:
        c = self.client
        return [c.getAABB(self.body, j) for j in self.link_names]

    def reset_joints(self, q: np.ndarray, gripper_open: bool = True) -> None:
        """Teleport the joints (used at episode start and by kinematic twins)."""
        for j, value in zip(self.joint_indices, q):
            self.client.resetJointState(self.body, j, float(value), 0.0)
        if gripper_open:
            for j in self.finger_joints:
                self.client.resetJointState(self.body, j.index, j.upper, 0.0)

    # ------------------------------------------------------------ commands
    def clamp(self, q: np.ndarray) -> tuple[np.ndarray, bool]:
        # = np.clip(q, lower, upper), without np.clip's Python-level wrapper (runs every tick)
        clamped = np.minimum(np.maximum(q, self.lower), self.upper)
        return clamped, bool((clamped != q).any())

    def command_joints(self, q_target: np.ndarray) -> None:
        """Position-control the arm joints toward ``q_target`` (clamped to limits)."""
        q, was_clamped = self.clamp(np.asarray(q_target, dtype=float))
        self.clamped_commands += int(was_clamped)
        self.client.setJointMotorControlArray(
            self.body, self.joint_indices, p.POSITION_CONTROL,
            targetPositions=q.tolist(), forces=self._forces,
        )

    def command_gripper(self, closure: float, blocks: list[int]) -> None:
        """0 = open, 1 = close. Fingers are position-controlled; suction makes a
        fixed constraint to a block touching the tool when closed."""
        self.gripper_command = min(max(float(closure), 0.0), 1.0)  # = np.clip, for one float
        self.gripper.command(self.gripper_command, blocks)

    def grasped_block(self, blocks: list[int]) -> int | None:
        """The block the gripper holds now, or None."""
        return self.gripper.grasped_block(blocks)

    def describe(self) -> dict:
        """Plain-data summary: joints, limits, end effector, gripper."""
        return {
            "name": self.name,
            "urdf": str(self.urdf_path),
            "dof": self.dof,
            "joints": [
                {"name": j.name, "lower": j.lower, "upper": j.upper,
                 "max_force": j.max_force, "max_velocity": j.max_velocity}
                for j in self.arm_joints
            ],
            "finger_joints": [j.name for j in self.finger_joints],
            "ee_link": self.ee_link_name,
            "gripper": self.gripper_kind,
            "tool_offset": self.tool_offset,
        }
