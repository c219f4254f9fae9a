"""Shared tasks. A task lays out its objects, says who still has work, and
scores the episode; it never drives an arm (policies do)."""

from robot_mirror.sim.tasks.base import Task, make_task

__all__ = ["Task", "make_task"]
