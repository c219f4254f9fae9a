"""What the libraries' checkers do not cover: lock-step reproducibility.

The shape and kind of every observation field and the reset/step contract
are checked by Gymnasium's ``check_env`` and PettingZoo's ``api_test`` /
``parallel_api_test`` on the wrappers (:mod:`robot_mirror.envs`), whose
spaces are derived from the one declaration of the observation. Neither
checks that a seeded episode repeats **bit for bit** (theirs compare a
reset or a few random steps), and that is what makes the in-process run
and the multi-process lock-step run comparable: any environment with the
``TurnTakingEnv`` API can be run through :func:`check_lockstep`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from robot_mirror.common.commands import ArmCommand


class EnvContractError(AssertionError):
    pass


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise EnvContractError(message)


def same(a: Any, b: Any) -> bool:
    """Equal bit for bit: nested mappings, arrays (shape, dtype kind and
    every value) and plain values."""
    if isinstance(a, Mapping):
        return isinstance(b, Mapping) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and a.dtype.kind == b.dtype.kind and np.array_equal(a, b)
    return type(a) is type(b) and a == b


def _hold(obs: Mapping[str, Mapping[str, Any]]) -> dict[str, ArmCommand]:
    return {n: ArmCommand(q_target=np.asarray(o["q"]).copy()) for n, o in obs.items()}


def _check_turn(obs: Mapping[str, Mapping[str, Any]], robots: list[str]) -> None:
    """Both robots agree on who holds the turn (a rule no library knows)."""
    holders = {o["holder"] for o in obs.values()}
    _check(len(holders) == 1 and holders <= {"", *robots}, f"robots disagree on the holder: {holders}")
    for name, o in obs.items():
        _check(o["my_turn"] == (o["holder"] == name), f"obs[{name!r}]: my_turn disagrees with holder")


def _trace(env, seed: int, steps: int) -> list[dict[str, dict[str, Any]]]:
    """The observations of a seeded episode under "hold" commands, as plain dicts."""
    robots = list(env.robot_names)
    obs, _ = env.reset(seed=seed)
    trace = [{n: dict(o) for n, o in obs.items()}]
    for _ in range(steps):
        obs, _, terminated, truncated, _ = env.step(_hold(obs))
        _check_turn(obs, robots)
        trace.append({n: dict(o) for n, o in obs.items()})
        if terminated or truncated:
            break
    return trace


def check_lockstep(env, seed: int = 0, steps: int = 20) -> None:
    """Same seed, same commands: the same observations, bit for bit, tick
    by tick. Raises :class:`EnvContractError` at the first tick that differs."""
    first = _trace(env, seed, steps)
    second = _trace(env, seed, steps)
    _check(len(first) == len(second), "a seeded rollout ended at a different tick")
    for tick, (a, b) in enumerate(zip(first, second)):
        _check(same(a, b), f"a seeded rollout is not reproducible (first difference at tick {tick})")
