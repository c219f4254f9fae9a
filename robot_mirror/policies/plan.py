"""A scripted expert's plan: the steps it follows, one at a time.

Its own module so that every expert (tower, imitation, the network-moved
one) and their tests name a step the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

FREE_SPEED = 0.5     # m/s, moves in free space


@dataclass
class Step:
    """One segment of a plan. ``label`` is the action segment it belongs to
    (reach, grasp, carry, place, retreat, home), which later becomes the
    mirror network's training label."""

    kind: str                  # "move" | "grip" | "home" | "gate" (wait for the turn)
    label: str
    target: np.ndarray | None = None  # (x, y, z, yaw) for moves
    gripper: float = 0.0
    speed: float = FREE_SPEED
    duration: float = 0.0
    elapsed: float = 0.0
    arrived_for: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)
