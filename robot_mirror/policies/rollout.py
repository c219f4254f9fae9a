"""The one episode loop.

Launch, demonstration recording, evaluation, the benchmarks and the tests
all play episodes through :func:`rollout`; what each needs per tick
(recording, progress, metrics) goes in ``on_tick``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from robot_mirror.common.commands import ArmCommand


@dataclass
class Tick:
    """One control tick: the observations the actions were chosen from, the
    actions, and what ``env.step`` returned for them."""

    obs: dict[str, dict[str, Any]]
    actions: dict[str, ArmCommand]
    next_obs: dict[str, dict[str, Any]]
    reward: float
    info: dict[str, Any]


def rollout(env, policies: dict[str, Any], seed: int,
            on_tick: Callable[[Tick], None] | None = None) -> dict[str, Any]:
    """Play one episode of ``env`` with ``policies`` (robot name -> policy):
    reset the environment with ``seed`` and every policy (a policy with a
    ``seed_episode(seed)`` method is then handed the episode seed, so what it
    draws follows the episode and not the scenario), step until the
    episode is terminated or truncated, calling ``on_tick`` after each step;
    returns ``env.episode_summary()``."""
    obs, _ = env.reset(seed=seed)
    for policy in policies.values():
        policy.reset()
        seed_episode = getattr(policy, "seed_episode", None)  # optional: policies that draw
        if seed_episode is not None:
            seed_episode(seed)
    done = False
    while not done:
        actions = {name: policy.act(obs[name]) for name, policy in policies.items()}
        next_obs, reward, terminated, truncated, info = env.step(actions)
        done = terminated or truncated
        if on_tick is not None:
            on_tick(Tick(obs, actions, next_obs, reward, info))
        obs = next_obs
    return env.episode_summary()
