"""One arm as a Gymnasium environment; its partner is driven by the policy
the scenario names for it (``robots.<partner>.policy``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import gymnasium as gym

from robot_mirror.envs.base import LAUNCH, RENDER_MODES, ArmSpaces, EnvConfig
from robot_mirror.envs.spaces import to_command
from robot_mirror.errors import ConfigError
from robot_mirror.policies import check_policies, make_policy


class SingleArmEnv(gym.Env):
    """The shared task seen by one arm (``robot``, default the scenario's
    first): the agent commands it, the partner's policy the other arm, both
    every control tick. Reward: the team's (blocks newly stacked, imitation
    rounds won); ``terminated`` on success or failure, ``truncated`` at the
    task's time limit. Spaces: :mod:`robot_mirror.envs.spaces`."""

    metadata = {"render_modes": RENDER_MODES, "render_fps": 10}

    def __init__(self, scenario: str | Path = LAUNCH / "tower.yaml", overrides: Sequence[str] = (),
                 robot: str | None = None, render_mode: str | None = None) -> None:
        self.arms = ArmSpaces(EnvConfig(scenario, tuple(overrides), render_mode))
        names, sc = self.arms.names, self.arms.scenario
        self.robot = robot if robot is not None else names[0]
        if self.robot not in names:
            self.arms.close()
            raise ConfigError(f"{sc.source}: robot = {self.robot!r}: no such robot; robots: {', '.join(names)}")
        self.partner = next(n for n in names if n != self.robot)
        self.render_mode = render_mode
        self.observation_space = self.arms.observation_spaces[self.robot]
        self.action_space = self.arms.action_spaces[self.robot]
        self.partner_policy = self._partner_policy()
        self._partner_obs: Any = None

    def _partner_policy(self):
        sc, env = self.arms.scenario, self.arms.env
        check_policies(sc, inprocess=True, robot=self.partner)
        spec = env.specs[env.robot_names.index(self.partner)]
        policy = make_policy(sc.robot(self.partner).policy, spec, sc, env.twin(self.partner),
                             oracle=getattr(env.task, "true_slot", None))
        if getattr(policy, "wants_partner", False):
            raise ConfigError(f"{sc.source}: robots.{self.partner}.policy = "
                              f"'{sc.robot(self.partner).policy}' needs a scripted partner, not an agent")
        return policy

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        obs, info = self.arms.env.reset(seed=seed)
        self.partner_policy.reset()
        self._partner_obs = obs[self.partner]
        return self.arms.convert(self.robot, obs[self.robot]), info

    def step(self, action):
        commands = {self.robot: to_command(action), self.partner: self.partner_policy.act(self._partner_obs)}
        obs, reward, terminated, truncated, info = self.arms.env.step(commands)
        self._partner_obs = obs[self.partner]
        return self.arms.convert(self.robot, obs[self.robot]), float(reward), terminated, truncated, info

    def render(self):
        return self.arms.render()

    def close(self) -> None:
        self.arms.close()
