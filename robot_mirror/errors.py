"""User-facing errors.

Every problem caused by input (a scenario file, a URDF, a message, a checkpoint)
is raised as a :class:`RobotMirrorError` whose message is one line naming the
thing at fault. The CLI prints that line and exits with status 2 instead of a
traceback, so users see *what* to fix, not *where* the code noticed.
"""

from __future__ import annotations


class RobotMirrorError(Exception):
    """An error whose message is meant for the user, on one line."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class ConfigError(RobotMirrorError):
    """A scenario file or override is invalid."""


class URDFError(RobotMirrorError):
    """A robot description cannot be loaded or used."""


class UnreachableError(RobotMirrorError):
    """A pose the task needs is outside an arm's workspace."""
