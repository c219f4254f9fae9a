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


def make_policy(kind: str, spec, scenario, kinematics, *, oracle=None) -> Policy:
    """``oracle``: a callable returning the task's ground truth (the imitation
    task's ``true_slot``), offered only in process; policies that do not need
    it ignore it.

    Imitation task: ``expert`` = scripted leader + a follower that places at
    the true slot (``oracle``; without one, e.g. in a policy process, it reads
    the slot off the leader's placed block); ``random`` = scripted leader + a
    follower that picks a uniformly random slot (the chance floor)."""
    if scenario.task.kind == "imitation" and kind in ("expert", "random"):
        from robot_mirror.sim.imitation_expert import ImitationExpert, ObservedSlot, OracleSlot, RandomSlot

        if kind == "random":
            source = RandomSlot([scenario.seed, scenario.robot_names.index(spec.name), 0x51A7])
        else:
            source = OracleSlot(oracle) if oracle is not None else ObservedSlot()
        return ImitationExpert(spec, scenario.task, scenario.control_hz, kinematics, slot_source=source)
    if kind == "expert":
        from robot_mirror.sim.expert import ScriptedExpert

        return ScriptedExpert(spec, scenario.task, scenario.control_hz, kinematics)
    if kind == "hold":
        return HoldPolicy()
    raise ConfigError(
        f"{scenario.source}: robots.{spec.name}.policy = '{kind}': not available in this mode"
    )
