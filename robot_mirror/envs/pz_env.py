"""Both arms as PettingZoo agents.

The arms act at once: every control tick each sends a command and the
physics advances once, whoever holds the turn (the arm without it still
moves, fetching and waiting outside the shared zone). The shared-zone turn
is a token in the observation (``holder``, ``my_turn``), not whose move it
is. So the native form is PettingZoo's **parallel** API; the AEC form
(``env()``) is PettingZoo's own ``parallel_to_aec`` conversion of it: each
agent in turn gives its command, and the tick runs when the last has.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from pettingzoo import ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec

from robot_mirror.envs.base import LAUNCH, RENDER_MODES, ArmSpaces, EnvConfig
from robot_mirror.envs.spaces import to_command


class TurnTakingParallelEnv(ParallelEnv):
    """Agents: the scenario's robot names. Each agent's reward is the team
    reward; both end together (success, failure or time limit)."""

    metadata = {"name": "robot_mirror_v0", "render_modes": RENDER_MODES, "is_parallelizable": True,
                "render_fps": 10}

    def __init__(self, scenario: str | Path = LAUNCH / "tower.yaml", overrides: Sequence[str] = (),
                 render_mode: str | None = None) -> None:
        self.arms = ArmSpaces(EnvConfig(scenario, tuple(overrides), render_mode))
        self.possible_agents = list(self.arms.names)
        self.agents: list[str] = []
        self.render_mode = render_mode

    def observation_space(self, agent: str):
        return self.arms.observation_spaces[agent]

    def action_space(self, agent: str):
        return self.arms.action_spaces[agent]

    def reset(self, seed: int | None = None, options: dict | None = None):
        obs, info = self.arms.env.reset(seed=seed)
        self.agents = list(self.possible_agents)
        return self._observe(obs), {n: dict(info) for n in self.agents}

    def step(self, actions: Mapping[str, Any]):
        commands = {n: to_command(a) for n, a in actions.items()}
        obs, reward, terminated, truncated, info = self.arms.env.step(commands)
        agents = self.agents
        if terminated or truncated:
            self.agents = []
        return (self._observe(obs, agents), {n: float(reward) for n in agents},
                {n: terminated for n in agents}, {n: truncated for n in agents}, {n: dict(info) for n in agents})

    def _observe(self, obs, agents: list[str] | None = None) -> dict[str, dict[str, Any]]:
        return {n: self.arms.convert(n, obs[n]) for n in (self.agents if agents is None else agents)}

    def render(self):
        return self.arms.render()

    def close(self) -> None:
        self.arms.close()


def parallel_env(**kwargs) -> TurnTakingParallelEnv:
    """The parallel form (keyword arguments: those of :class:`TurnTakingParallelEnv`)."""
    return TurnTakingParallelEnv(**kwargs)


def env(**kwargs):
    """The AEC form: PettingZoo's ``parallel_to_aec`` of :func:`parallel_env`."""
    return parallel_to_aec(parallel_env(**kwargs))
