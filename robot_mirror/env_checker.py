"""A reusable contract check for two-arm environments (in the spirit of
Gymnasium's ``check_env``): any environment claiming the ``TurnTakingEnv``
API can be run through it."""

from __future__ import annotations

from typing import Any

import numpy as np

from robot_mirror.common.commands import ArmCommand

OBS_ARRAYS = {"q": None, "dq": None, "ee_pose": 7, "partner_q": None, "partner_ee_pose": 7}
OBS_SCALARS = ("t", "gripper", "holding", "in_zone", "partner_in_zone", "holder", "my_turn")


class EnvContractError(AssertionError):
    pass


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise EnvContractError(message)


def check_observation(obs: dict[str, Any], robots: list[str]) -> None:
    _check(isinstance(obs, dict) and set(obs) == set(robots), f"obs keys {list(obs)} != robots {robots}")
    for name in robots:
        o = obs[name]
        for key, size in OBS_ARRAYS.items():
            _check(key in o, f"obs[{name!r}] lacks {key!r}")
            arr = np.asarray(o[key])
            _check(arr.ndim == 1 and np.all(np.isfinite(arr)), f"obs[{name!r}][{key!r}] must be finite 1-D")
            if size is not None:
                _check(arr.shape == (size,), f"obs[{name!r}][{key!r}] has shape {arr.shape}, want ({size},)")
        _check(np.asarray(o["q"]).shape == np.asarray(o["dq"]).shape, f"obs[{name!r}]: q and dq differ in shape")
        for key in OBS_SCALARS:
            _check(key in o, f"obs[{name!r}] lacks {key!r}")
        _check(o["holder"] in ("", *robots), f"obs[{name!r}]['holder'] = {o['holder']!r}")
        _check(o["my_turn"] == (o["holder"] == name), f"obs[{name!r}]: my_turn disagrees with holder")
        blocks = np.asarray(o["blocks"])
        _check(blocks.ndim == 2 and blocks.shape[1] == 7, f"obs[{name!r}]['blocks'] shape {blocks.shape}")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return a == b


def _hold(obs: dict[str, Any]) -> dict[str, ArmCommand]:
    return {n: ArmCommand(q_target=np.asarray(o["q"]).copy()) for n, o in obs.items()}


def check_env(env, seed: int = 0, steps: int = 20) -> None:
    """Raise :class:`EnvContractError` on the first broken promise."""
    robots = list(env.robot_names)
    _check(len(robots) == 2, "a turn-taking env has two robots")
    obs, info = env.reset(seed=seed)
    check_observation(obs, robots)
    _check(isinstance(info, dict), "reset must return (obs, info dict)")
    first_obs = obs
    trace = []
    for _ in range(steps):
        result = env.step(_hold(obs))
        _check(isinstance(result, tuple) and len(result) == 5, "step must return a 5-tuple")
        obs, reward, terminated, truncated, info = result
        check_observation(obs, robots)
        _check(isinstance(reward, float), f"reward must be a float, got {type(reward).__name__}")
        _check(isinstance(terminated, bool) and isinstance(truncated, bool), "terminated/truncated must be bool")
        _check(isinstance(info, dict) and "events" in info, "info must be a dict with 'events'")
        trace.append(obs)
        if terminated or truncated:
            break
    # Same seed, same actions: the same observations, bit for bit.
    obs, _ = env.reset(seed=seed)
    _check(_same(obs, first_obs), "reset(seed) is not reproducible")
    for expected in trace:
        obs, *_ = env.step(_hold(obs))
        _check(_same(obs, expected), "a seeded rollout is not reproducible")
    try:
        env.step({"no-such-robot": ArmCommand()})
    except KeyError:
        pass
    else:
        raise EnvContractError("step with an unknown robot must raise KeyError")
