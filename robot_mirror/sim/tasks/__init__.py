"""Shared tasks. A task lays out its objects, says who still has work, and
scores the episode; it never drives an arm (policies do)."""

from __future__ import annotations

from typing import Any

from robot_mirror.errors import ConfigError
from robot_mirror.sim.spec import RobotSpec
from robot_mirror.sim.tasks.base import Task
from robot_mirror.sim.tasks.imitation import ImitationTask
from robot_mirror.sim.tasks.tower import TowerTask

# Every task kind a scenario may name, and the class that runs it.
TASK_TYPES: dict[str, type[Task]] = {cls.kind: cls for cls in (TowerTask, ImitationTask)}


def make_task(config: Any, robots: list[RobotSpec]) -> Task:
    """The task ``config.kind`` names, for ``robots``."""
    cls = TASK_TYPES.get(config.kind)
    if cls is None:
        raise ConfigError(f"task kind '{config.kind}' is unknown; kinds are: {', '.join(TASK_TYPES)}")
    return cls(config, robots)


__all__ = ["TASK_TYPES", "ImitationTask", "Task", "TowerTask", "make_task"]
