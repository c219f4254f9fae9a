"""The shared-zone rule, enforced by the sim rather than trusted to policies."""

from __future__ import annotations

import numpy as np

from robot_mirror.common.commands import ArmCommand
from robot_mirror.env import TurnTakingEnv
from robot_mirror.sim.zone_probe import ZoneProbe


class ZoneGuard:
    """Would this command bring a non-holding arm into the shared zone?
    Checked on the arm's kinematic twin at the commanded joint angles; the
    answer for an unchanged target is reused (a holding arm repeats it)."""

    def __init__(self, env: TurnTakingEnv) -> None:
        self.env = env
        self.probes = {n: ZoneProbe(env.twin(n).client, env.task.zone) for n in env.robot_names}
        self._last: dict[str, tuple[bytes, bool]] = {}

    def refuses(self, robot: str, cmd: ArmCommand) -> bool:
        env = self.env
        if cmd.q_target is None or env.arbiter.holder == robot:
            return False
        if env.arm_in_zone(robot):
            return False  # already inside (turn just lost): let it move out
        twin = env.twin(robot)
        q = np.clip(cmd.q_target, twin.lower, twin.upper)
        key = q.tobytes()
        cached = self._last.get(robot)
        if cached is not None and cached[0] == key:
            return cached[1]
        twin.set_q(q)
        inside = self.probes[robot].arm_inside(twin.arm)
        self._last[robot] = (key, inside)
        return inside
