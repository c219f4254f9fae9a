"""Standard environment APIs over ``TurnTakingEnv``.

* Gymnasium: one arm, its partner driven by the policy the scenario names
  (:class:`~robot_mirror.envs.gym_env.SingleArmEnv`), registered as
  ``robot_mirror/Tower-v0`` and ``robot_mirror/Imitation-v0`` when this
  package is imported (``gym.make("robot_mirror.envs:robot_mirror/Tower-v0")``
  imports it for you).
* PettingZoo: both arms as agents, :func:`parallel_env` (native) and
  :func:`env` (AEC).

Spaces are derived from the one declaration of the observation
(:mod:`robot_mirror.envs.spaces`). Tutorial: docs/environments.md.
"""

from __future__ import annotations

import gymnasium

from robot_mirror.envs.base import LAUNCH, EnvConfig
from robot_mirror.envs.gym_env import SingleArmEnv
from robot_mirror.envs.pz_env import TurnTakingParallelEnv, env, parallel_env
import robot_mirror.mirror  # noqa: F401  (registers policy: mirror, the partner of Tower-v0)

GYM_IDS = {"robot_mirror/Tower-v0": "tower.yaml", "robot_mirror/Imitation-v0": "imitation.yaml"}

for _id, _file in GYM_IDS.items():
    if _id not in gymnasium.registry:
        gymnasium.register(_id, entry_point="robot_mirror.envs.gym_env:SingleArmEnv",
                           kwargs={"scenario": str(LAUNCH / _file)})

__all__ = ["GYM_IDS", "EnvConfig", "SingleArmEnv", "TurnTakingParallelEnv", "env", "parallel_env"]
