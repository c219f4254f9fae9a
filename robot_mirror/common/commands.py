"""What a policy sends to its arm each control tick, as plain data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

@dataclass
class ArmCommand:
    """Joint-space target (``q_target``) or tool-pose target (``ee_pose``, 7:
    xyz + quaternion xyzw, world frame), gripper closure 0 (open)..1 (closed),
    and a turn intent: ``"release"`` gives the turn back."""

    q_target: np.ndarray | None = None
    ee_pose: np.ndarray | None = None
    gripper: float = 0.0
    turn: str = ""

    @classmethod
    def coerce(cls, value: "ArmCommand | Mapping[str, Any] | None") -> "ArmCommand | None":
        if value is None or isinstance(value, ArmCommand):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - {"q_target", "ee_pose", "gripper", "turn"}
            if unknown:
                raise ValueError(f"unknown command fields: {sorted(unknown)}")
            return cls(
                q_target=None if value.get("q_target") is None else np.asarray(value["q_target"], float),
                ee_pose=None if value.get("ee_pose") is None else np.asarray(value["ee_pose"], float),
                gripper=float(value.get("gripper", 0.0)),
                turn=str(value.get("turn", "")),
            )
        raise TypeError(f"a command must be an ArmCommand or a mapping, not {type(value).__name__}")
