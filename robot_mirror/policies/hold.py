"""``policy: hold``: a stand-in for tests and benchmarks."""

from __future__ import annotations

from typing import Any

import numpy as np

from robot_mirror.common.commands import ArmCommand


class HoldPolicy:
    """Holds the arm where it is and never asks for anything; passes its turn."""

    def __init__(self) -> None:
        self.q: np.ndarray | None = None

    def reset(self) -> None:
        self.q = None

    def act(self, obs: dict[str, Any]) -> ArmCommand:
        if self.q is None:
            self.q = np.asarray(obs["q"], float).copy()
        return ArmCommand(q_target=self.q.copy(), gripper=0.0, turn="release" if obs["my_turn"] else "")
