"""What every task provides to the environment."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from robot_mirror.sim.spec import RobotSpec
from robot_mirror.sim.zone import SharedZone


class Task(ABC):
    """A shared manipulation task for two arms on one table.

    Subclasses set :attr:`kind` and implement the abstract methods. The
    environment calls :meth:`build` after each world reset, :meth:`update`
    once per control tick, and merges :meth:`observation` into each arm's
    observation.
    """

    kind: ClassVar[str]

    def __init__(self, config: Any, robots: list[RobotSpec]) -> None:
        self.config = config
        self.robots = robots
        self.names = [r.name for r in robots]
        self.zone = SharedZone(tuple(getattr(config, "tower_xy", (0.0, 0.0))), config.zone_radius)
        self.block_size = config.block_size
        self.first = config.first or self.names[0]

    # layout helpers shared by tasks -----------------------------------
    def toward_base(self, robot: RobotSpec) -> tuple[np.ndarray, np.ndarray]:
        """Unit vectors from the zone centre toward the robot's base, and to its left."""
        c = np.asarray(self.zone.center_xy)
        d = np.asarray(robot.base_position[:2]) - c
        n = float(np.linalg.norm(d))
        u = d / n if n > 1e-6 else np.array([-math.cos(robot.base_yaw), -math.sin(robot.base_yaw)])
        return u, np.array([-u[1], u[0]])

    def home_reach(self, robot: RobotSpec) -> float:
        """How far in front of its base an arm rests: as far as possible (up to
        0.45 m) while staying well clear (12 cm) of the shared zone."""
        base = np.asarray(robot.base_position[:2])
        clearance = float(np.linalg.norm(base - np.asarray(self.zone.center_xy))) - self.zone.radius - 0.12
        return float(np.clip(clearance, 0.2, 0.45))

    # the contract -------------------------------------------------------
    @abstractmethod
    def build(self, world, rng: np.random.Generator) -> None:
        """Create the task's bodies in a freshly reset world."""

    @abstractmethod
    def has_work(self, robot: str) -> bool:
        """Does ``robot`` still have something to do on a turn of its own?"""

    @abstractmethod
    def update(self, t: float, block_poses: np.ndarray, held: dict[str, int | None],
               events: list[dict]) -> float:
        """Advance the task's bookkeeping; append events; return the reward."""

    @abstractmethod
    def observation(self, robot: str) -> dict[str, Any]:
        """Task-specific part of ``robot``'s observation (plain data)."""

    @property
    @abstractmethod
    def success(self) -> bool: ...

    @property
    @abstractmethod
    def failed(self) -> bool: ...

    def on_turn(self, kind: str, robot: str, t: float) -> None:
        """A turn event of the tick just advanced (``turn_start`` / ``turn_end``),
        told by the environment once the turn is settled, whoever decided it
        (its own arbiter or the turn process). Tasks that time turns use it."""

    def summary(self) -> dict[str, Any]:
        """Task-specific per-episode figures for the run summary."""
        return {}

    def reach_poses(self) -> dict[str, list[tuple[str, np.ndarray]]]:
        """Named tool poses each robot must reach (checked before running)."""
        return {}
