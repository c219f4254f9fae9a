"""Gripper behaviour, one class per kind of tool.

An :class:`~robot_mirror.sim.arm.Arm` holds one gripper and calls it for
everything that depends on the tool: set-up after loading, the tool offset,
the opening it reports, what a closure command does and which block it holds.
A new kind is a new subclass and one entry in :data:`GRIPPER_TYPES`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import pybullet as p

from robot_mirror.errors import URDFError


class Arm(Protocol):
    """What a gripper uses of the arm that holds it (``sim.arm.Arm``; not
    imported, so arm -> grippers stays the only edge between the two)."""

    client: Any
    body: int
    ee_index: int
    finger_joints: list
    gripper_command: float

    def ee_frame(self) -> Any: ...

    def parent_link(self, link: int, default: int) -> int: ...

    def tool_pose(self) -> Any: ...


class Gripper:
    """What an arm asks of its gripper. Subclasses set :attr:`kind`."""

    kind: ClassVar[str]

    def __init__(self, arm: Arm) -> None:
        self.arm = arm

    @classmethod
    def check(cls, arm: Arm, path: Path) -> None:
        """Raise URDFError if ``arm`` cannot carry this kind of gripper."""

    def measure_tool_offset(self) -> float:
        """Distance along the end-effector's +z from its frame to the grasp point."""
        return 0.0

    def setup(self) -> None:
        """Prepare the freshly loaded arm (constraints and the like)."""

    def opening(self) -> float:
        """0 = fully open, 1 = fully closed."""
        raise NotImplementedError

    def opening_from(self, finger_states) -> float:
        """The same as :meth:`opening`, from finger joint states already read."""
        raise NotImplementedError

    def command(self, closure: float, blocks: list[int]) -> None:
        """Act on a closure command (already clamped to [0, 1])."""
        raise NotImplementedError

    def grasped_block(self, blocks: list[int]) -> int | None:
        """The block held now, or None."""
        raise NotImplementedError


class FingerGripper(Gripper):
    """Position-controlled finger joints; holds a block by touching it with two fingers."""

    kind = "fingers"

    @classmethod
    def check(cls, arm: Arm, path: Path) -> None:
        if not arm.finger_joints:
            raise URDFError(f"{path}: gripper 'fingers' requested but the URDF has no finger joints")

    def setup(self) -> None:
        """Tie a two-finger gripper's fingers together (a gear constraint, as in
        PyBullet's own Panda demo). Without it one finger yields while the other
        pushes, and the block creeps sideways in the grasp."""
        arm = self.arm
        if len(arm.finger_joints) != 2:
            return
        a, b = arm.finger_joints
        cid = arm.client.createConstraint(
            arm.body, a.index, arm.body, b.index, jointType=p.JOINT_GEAR, jointAxis=[1, 0, 0],
            parentFramePosition=[0, 0, 0], childFramePosition=[0, 0, 0],
        )
        arm.client.changeConstraint(cid, gearRatio=-1, erp=0.1, maxForce=50)

    def opening(self) -> float:
        arm = self.arm
        return self.opening_from(arm.client.getJointStates(arm.body, [j.index for j in arm.finger_joints]))

    def opening_from(self, finger_states) -> float:
        # Plain floats (runs every tick; numpy mean/clip on two values cost
        # more than the query). Same arithmetic: sum in order, divide, clamp.
        fingers = self.arm.finger_joints
        total = 0.0
        for j, s in zip(fingers, finger_states):
            total += (j.upper - s[0]) / (j.upper - j.lower)
        return float(min(max(total / len(fingers), 0.0), 1.0))

    _sent: float | None = None  # the closure the finger motors hold now

    def command(self, closure: float, blocks: list[int]) -> None:
        # PyBullet keeps a motor's target until it is set again, and a gripper
        # stays open or closed for long stretches: re-sending the same target
        # every tick changes nothing (a new body gets a new gripper object).
        if closure == self._sent:
            return
        self._sent = closure
        arm = self.arm
        for j in arm.finger_joints:
            target = j.upper - closure * (j.upper - j.lower)
            arm.client.setJointMotorControl2(
                arm.body, j.index, p.POSITION_CONTROL, targetPosition=target,
                force=max(j.max_force, 40.0),
            )

    def grasped_block(self, blocks: list[int]) -> int | None:
        arm = self.arm
        if arm.gripper_command < 0.5:
            return None
        touching: dict[int, int] = {}
        for j in arm.finger_joints:
            for block in blocks:
                if arm.client.getContactPoints(arm.body, block, j.index):
                    touching[block] = touching.get(block, 0) + 1
        for block, count in touching.items():
            if count >= min(2, len(arm.finger_joints)):
                return block
        return None


class SuctionGripper(Gripper):
    """A suction cup: closing makes a fixed constraint to a block touching the tool."""

    kind = "suction"

    def __init__(self, arm: Arm) -> None:
        super().__init__(arm)
        self.constraint: int | None = None

    def measure_tool_offset(self) -> float:
        """Found by casting a ray back at the end-effector: suction contact
        happens at the tool's surface, not at its frame."""
        arm = self.arm
        pos, orn = arm.ee_frame()
        axis = np.array(arm.client.getMatrixFromQuaternion(orn)).reshape(3, 3)[:, 2]
        start = np.asarray(pos) + 0.3 * axis
        hit = arm.client.rayTest(start.tolist(), list(pos))[0]
        if hit[0] == arm.body and hit[1] in (arm.ee_index, arm.parent_link(arm.ee_index, -2)):
            return float(0.3 * (1.0 - hit[2]))
        return 0.0

    def opening(self) -> float:
        """Suction reports its command."""
        return float(self.arm.gripper_command)

    def opening_from(self, finger_states) -> float:
        return float(self.arm.gripper_command)

    def command(self, closure: float, blocks: list[int]) -> None:
        if closure >= 0.5 and self.constraint is None:
            block = self._block_at_tool(blocks)
            if block is not None:
                self._attach(block)
        elif closure < 0.5 and self.constraint is not None:
            self.arm.client.removeConstraint(self.constraint)
            self.constraint = None

    def grasped_block(self, blocks: list[int]) -> int | None:
        if self.constraint is None:
            return None
        return self.arm.client.getConstraintInfo(self.constraint)[2]

    def _block_at_tool(self, blocks: list[int]) -> int | None:
        arm, c = self.arm, self.arm.client
        tool = arm.tool_pose()
        parent = arm.parent_link(arm.ee_index, -1)
        for block in blocks:
            points = c.getClosestPoints(arm.body, block, 0.01, arm.ee_index)
            if not points and parent >= -1:
                points = c.getClosestPoints(arm.body, block, 0.01, parent)
            if points:
                return block
            pos, _ = c.getBasePositionAndOrientation(block)
            if np.linalg.norm(np.asarray(pos) - tool[:3]) < 0.04:
                return block
        return None

    def _attach(self, block: int) -> None:
        arm, c = self.arm, self.arm.client
        ee_pos, ee_orn = arm.ee_frame()
        b_pos, b_orn = c.getBasePositionAndOrientation(block)
        inv_pos, inv_orn = c.invertTransform(ee_pos, ee_orn)
        rel_pos, rel_orn = c.multiplyTransforms(inv_pos, inv_orn, b_pos, b_orn)
        cid = c.createConstraint(
            arm.body, arm.ee_index, block, -1, p.JOINT_FIXED, [0, 0, 0],
            parentFramePosition=rel_pos, childFramePosition=[0, 0, 0],
            parentFrameOrientation=rel_orn,
        )
        c.changeConstraint(cid, maxForce=200.0)
        self.constraint = cid


GRIPPER_TYPES: dict[str, type[Gripper]] = {cls.kind: cls for cls in (FingerGripper, SuctionGripper)}
GRIPPER_KINDS = ("auto", *GRIPPER_TYPES)


def make_gripper(arm: Arm, requested: str, path: Path) -> Gripper:
    """The gripper ``requested`` for ``arm`` ("auto": fingers if the URDF has
    finger joints, else suction)."""
    if requested == "auto":
        requested = FingerGripper.kind if arm.finger_joints else SuctionGripper.kind
    cls = GRIPPER_TYPES.get(requested)
    if cls is None:
        raise URDFError(f"gripper '{requested}' is not one of {', '.join(GRIPPER_KINDS)}")
    cls.check(arm, path)
    return cls(arm)
