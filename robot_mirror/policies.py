"""Build the policy named in a scenario for one robot (in-process use; the
policy node builds the same objects in its own process)."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from robot_mirror.commands import ArmCommand
from robot_mirror.errors import ConfigError


class Policy(Protocol):
    def reset(self) -> None: ...

    def act(self, obs: dict[str, Any]) -> ArmCommand: ...


class HoldPolicy:
    """Holds the arm where it is and never asks for anything (a test stand-in)."""

    def __init__(self) -> None:
        self.q: np.ndarray | None = None

    def reset(self) -> None:
        self.q = None

    def act(self, obs: dict[str, Any]) -> ArmCommand:
        if self.q is None:
            self.q = np.asarray(obs["q"], float).copy()
        return ArmCommand(q_target=self.q.copy(), gripper=0.0, turn="release" if obs["my_turn"] else "")


def make_policy(kind: str, spec, scenario, kinematics) -> Policy:
    if kind == "expert":
        from robot_mirror.sim.expert import ScriptedExpert

        return ScriptedExpert(spec, scenario.task, scenario.control_hz, kinematics)
    if kind == "hold":
        return HoldPolicy()
    raise ConfigError(
        f"{scenario.source}: robots.{spec.name}.policy = '{kind}': not available in this mode"
    )
