"""World state as plain data, and the one function that turns it into a
robot's observation.

The in-process environment and the perception process both call
:func:`build_observation`, so a policy receives the same dictionary whether
it runs beside the simulator or in its own process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robot_mirror.perception import PartnerObserver


@dataclass
class ArmState:
    q: np.ndarray            # (dof,) rad
    dq: np.ndarray           # (dof,) rad/s
    ee_pose: np.ndarray      # (7,) tool pose, world frame
    gripper: float           # 0 open .. 1 closed
    keypoints: np.ndarray    # (5, 3) world frame
    holding: int = -1        # block index, -1 none
    in_zone: bool = False


@dataclass
class WorldState:
    t: float
    tick: int
    episode: int
    seed: int
    holder: str
    arms: dict[str, ArmState]
    blocks: np.ndarray                       # (N, 7) world frame
    task_obs: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)
    done: bool = False


def observer_rng(seed: int, robot_index: int) -> np.random.Generator:
    """Perception noise stream of one robot in one episode (same in every process)."""
    return np.random.default_rng([seed, robot_index, 0x5EE])


def build_observation(state: WorldState, name: str, observer: PartnerObserver,
                      ground_truth: bool = False) -> dict[str, Any]:
    """``name``'s observation. ``ground_truth`` adds the partner's true joint
    angles and pose (the in-process environment offers them; processes on
    the bus never see them)."""
    partner = next(n for n in state.arms if n != name)
    me, other = state.arms[name], state.arms[partner]
    seen = observer.observe(other.ee_pose, other.keypoints, other.gripper)
    obs: dict[str, Any] = {
        "t": state.t,
        "q": me.q, "dq": me.dq, "ee_pose": me.ee_pose, "gripper": me.gripper,
        "keypoints": me.keypoints,
        "holding": me.holding, "in_zone": me.in_zone,
        "partner_in_zone": other.in_zone,
        "seen_partner_ee_pose": seen.ee_pose, "seen_partner_keypoints": seen.keypoints,
        "seen_partner_gripper": seen.gripper, "partner_observed": seen.observed,
        "blocks": state.blocks.copy(),
        "holder": state.holder,
        "my_turn": state.holder == name,
    }
    if ground_truth:
        obs.update(partner_q=other.q, partner_ee_pose=other.ee_pose, partner_gripper=other.gripper)
    for key, value in state.task_obs.get(name, {}).items():
        obs[key] = np.asarray(value) if isinstance(value, (list, tuple)) else value
    return obs
