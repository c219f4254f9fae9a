"""The motor readout: the mirror network moving its own arm (``motor: network``).

A mirror system in the sense of Tani's RNNPB both recognises and generates.
The core's *own-stream* state (what the arm is doing, as the network encodes
it; the same code that fires when it watches its partner) is read out, every
tick of a pick-and-place, into a **task-space command**: where the tool goes
next (a waypoint relative to the tool, in the arm's base frame, and a yaw
change), how fast, whether the gripper is closed, and whether the
pick-and-place is done. The arm's own IK executes it
(:mod:`robot_mirror.mirror.motor_expert`), so any arm can run it.

What the readout sees besides the core state is the arm's own perception of
the work (:func:`motor_context`, 18 numbers, base frame): its next block
relative to the tool and whether it is already on the tower, the tower top
it will land on, the held block, whether it holds the turn, its gripper and
how fast its joints move. Its own last command is not fed back: an
efference copy (the distance to the last waypoint) halved the offline
waypoint error and quartered the towers built (4/16 against 11/16), the
"copycat" failure of behaviour cloning with history. No phase, no plan and
no waypoint reaches it: which of reach / grasp / lift / carry / place /
release comes next is for the network to know.

The scripted planner is only the teacher (:func:`motor_teacher`, read from
the expert's plan while demonstrations are recorded). The ``blind`` variant
is the same readout trained with the core state zeroed: the ablation that
says how much of the motion the mirror core carries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from robot_mirror.geometry import Frame, wrap_angle, yaw_of
from robot_mirror.policies.placing import landing_surface

CONTEXT_DIM = 18
# Outputs: which reference the waypoint is taken from (3 logits: the tool, the block, the landing
# point for what is held), the offset from it (3, base frame), the yaw change, speed (m/s), grip
# logit, done logit.
OUTPUT_DIM = 10
TOOL, BLOCK, LANDING = 0, 1, 2  # the references (see :func:`references`)
# The reference a planner step's waypoint is measured from, by its action segment: a grasp is
# aimed at the block, a placement at the landing point (so the readout learns a constant offset
# where precision matters), a lift or a retreat from where the tool is.
REFERENCE_OF_SEGMENT = {"wait": TOOL, "reach": BLOCK, "grasp": BLOCK, "carry": LANDING, "place": LANDING,
                        "retreat": TOOL}
MIN_SPEED, MAX_SPEED = 0.05, 0.5
SEGMENT_ACTIVE, SEGMENT_DONE, INACTIVE = 0, 1, -1
# What a demonstration keeps per tick to rebuild the context later (studies/demos.py).
CONTEXT_INPUTS = ("ee_pose", "blocks", "holding", "my_turn", "gripper", "placed", "tower_count", "dq")


def reference_of(segment: str, holding: bool) -> int:
    """The reference of a teacher row. Once the block is let go (the tail of
    "place"), the tool: the landing point then jumps up a level."""
    return TOOL if segment == "place" and not holding else REFERENCE_OF_SEGMENT.get(segment, TOOL)


def _yaw_pair(delta: float) -> tuple[float, float]:
    """A block is square: its yaw matters modulo 90 degrees."""
    return float(np.sin(4 * delta)), float(np.cos(4 * delta))


def place_point(obs: dict[str, Any], tower_xy: np.ndarray, size: float, block: Optional[int]) -> np.ndarray:
    """The tower top a block put down now lands on (world): the tower
    expert's ``landing_point``, rebuilt for tower recordings made before
    demonstrations kept it (``motor_place``)."""
    tx, ty = float(tower_xy[0]), float(tower_xy[1])
    surface = landing_surface(obs, tx, ty, float(obs["tower_count"]) * size, size, skip=block)
    return np.array([tx, ty, surface])


def motor_context(obs: dict[str, Any], frame: Frame, block: Optional[int], place: np.ndarray) -> np.ndarray:
    """The arm's own perception of its work, in its base frame (18 numbers):
    next block - tool (3), its yaw against the tool's (sin, cos of 4x), the
    landing point - tool (3), the held block - tool (3) and its yaw pair (zero
    when nothing of ours is held), my turn, holding, gripper closure, and
    whether the block is counted on the tower, the fastest joint speed
    (rad/s). ``obs`` needs the keys in CONTEXT_INPUTS."""
    c = np.zeros(CONTEXT_DIM, np.float32)
    tool = np.asarray(obs["ee_pose"], float)
    tool_yaw = yaw_of(tool[3:])
    if block is not None and block >= 0:
        pose = np.asarray(obs["blocks"][block], float)
        c[0:3] = frame.vectors_to_local(pose[:3] - tool[:3])
        c[3:5] = _yaw_pair(yaw_of(pose[3:]) - tool_yaw)
        if int(obs["holding"]) == block:
            c[8:11] = c[0:3]
            c[11:13] = c[3:5]
            c[14] = 1.0
        placed = obs.get("placed")  # (the tower's; nothing is counted in imitation)
        c[16] = float(bool(placed[block])) if placed is not None else 0.0
    c[5:8] = frame.vectors_to_local(np.asarray(place, float) - tool[:3])
    c[13] = float(bool(obs["my_turn"]))
    c[15] = float(obs["gripper"])
    c[17] = float(np.max(np.abs(obs["dq"]))) if len(obs["dq"]) else 0.0
    return c


def motor_teacher(expert, obs: dict[str, Any], frame: Frame) -> tuple[int, np.ndarray, float, float]:
    """What the scripted planner commands now (read after its ``act``):
    (state, waypoint, speed, grip). ``state`` is INACTIVE (no pick-and-place
    under way), SEGMENT_ACTIVE or SEGMENT_DONE (the pick-and-place is over:
    the checked way home, which stays the planner's in either mode).
    ``waypoint``: (dx, dy, dz) in the base frame and dyaw, from the tool;
    NaN when not active. ``speed``: NaN unless a tool move."""
    nan4 = np.full(4, np.nan, np.float32)
    plan = getattr(expert, "plan", None)
    if not plan or expert.block is None:
        return INACTIVE, nan4, float("nan"), float(expert.gripper)
    step = plan[0]
    if step.kind == "home" or step.data.get("clearance"):
        return SEGMENT_DONE, nan4, float("nan"), float(expert.gripper)
    tool = np.asarray(obs["ee_pose"], float)
    speed = float("nan")
    if step.kind == "move":
        goal, speed = np.asarray(step.target, float), float(step.speed)
    elif expert.setpoint is not None:  # gripping or waiting at the gate: stay
        goal = np.asarray(expert.setpoint, float)
    else:
        goal = np.array([*tool[:3], yaw_of(tool[3:])])
    waypoint = np.empty(4, np.float32)
    waypoint[:3] = frame.vectors_to_local(goal[:3] - tool[:3])
    waypoint[3] = wrap_angle(goal[3] - yaw_of(tool[3:]))
    return SEGMENT_ACTIVE, waypoint, speed, float(step.gripper if step.kind != "gate" else expert.gripper)


def references(context: torch.Tensor) -> torch.Tensor:
    """(..., CONTEXT_DIM) -> (..., 3 references, 3): each reference point
    relative to the tool, base frame, read off the context: the tool itself,
    the block, and where the tool must be for the held block to sit on the
    landing point (the landing point when nothing is held). (Measuring the
    landing without the held block's vertical offset in the hand built 3
    towers in 16 against 11: the offset tells how deep to go.)"""
    tool = torch.zeros_like(context[..., 0:3])
    landing = context[..., 5:8] - context[..., 8:11]
    return torch.stack([tool, context[..., 0:3], landing], dim=-2)


def reference_point(context: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """(..., CONTEXT_DIM), (...) reference indices -> (..., 3): the chosen reference's point."""
    index = ref.long()[..., None, None].expand(*ref.shape, 1, 3)
    return torch.gather(references(context), -2, index)[..., 0, :]


class MotorHead(nn.Module):
    """(core own-stream state, context) -> the motor outputs (OUTPUT_DIM).
    ``blind``: the core state is zeroed (trained and run so), the no-mirror
    ablation."""

    def __init__(self, hidden: int, width: int = 128, blind: bool = False) -> None:
        super().__init__()
        self.blind = blind
        self.hidden = hidden
        self.register_buffer("ctx_mean", torch.zeros(CONTEXT_DIM))
        self.register_buffer("ctx_std", torch.ones(CONTEXT_DIM))
        self.register_buffer("out_scale", torch.ones(4))  # offset (3) and yaw units per output unit
        self.net = nn.Sequential(nn.Linear(hidden + CONTEXT_DIM, width), nn.Tanh(),
                                 nn.Linear(width, width), nn.Tanh(), nn.Linear(width, OUTPUT_DIM))

    def forward(self, state: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        if self.blind:
            state = torch.zeros_like(state)
        ctx = (context - self.ctx_mean) / self.ctx_std
        return self.net(torch.cat([state, ctx], dim=-1))

    def waypoint(self, out: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """(..., 4): the waypoint from the tool (base frame) and the yaw change:
        the most likely reference plus its offset."""
        point = reference_point(context, torch.argmax(out[..., 0:3], dim=-1))
        return torch.cat([point + out[..., 3:6] * self.out_scale[:3], out[..., 6:7] * self.out_scale[3:]], -1)

    def to_blob(self) -> dict:
        return {"hidden": self.hidden, "width": int(self.net[0].out_features), "blind": bool(self.blind),
                "state_dict": {k: v.detach().clone().contiguous() for k, v in self.state_dict().items()}}

    @classmethod
    def from_blob(cls, blob: dict) -> "MotorHead":
        head = cls(int(blob["hidden"]), int(blob["width"]), bool(blob["blind"]))
        head.load_state_dict(blob["state_dict"], strict=True)
        return head.eval()


@dataclass
class MotorCommand:
    """One tick of the readout, in the world: the tool's next waypoint
    (x, y, z, yaw), speed, gripper closure (0/1) and done; ``segment``: what
    the network's own-action head says the arm is doing (labels, viewers)."""

    waypoint: np.ndarray
    speed: float
    grip: float
    done: bool
    segment: str = "reach"


def decode(head: MotorHead, out: torch.Tensor, context: torch.Tensor, obs: dict[str, Any],
           frame: Frame) -> MotorCommand:
    """The head's raw output for one tick -> a world-frame command."""
    wp = head.waypoint(out, context).numpy().astype(float)
    tool = np.asarray(obs["ee_pose"], float)
    xyz = tool[:3] + frame.vectors_to_world(wp[:3])
    yaw = yaw_of(tool[3:]) + float(wp[3])
    speed = float(np.clip(float(out[7]), MIN_SPEED, MAX_SPEED))
    return MotorCommand(np.array([*xyz, yaw]), speed, 1.0 if float(out[8]) > 0 else 0.0, float(out[9]) > 0)
