"""A reusable contract check for two-arm environments (in the spirit of
Gymnasium's ``check_env``): any environment claiming the ``TurnTakingEnv``
API can be run through it."""

from __future__ import annotations

from typing import Any

import numpy as np

from robot_mirror.common.commands import ArmCommand
from robot_mirror.common.observation import OBSERVATION, ObsField

_SCALAR_TYPES = {"f": (float, int, np.floating, np.integer), "b": (bool, np.bool_),
                 "i": (int, np.integer), "s": (str,)}


class EnvContractError(AssertionError):
    pass


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise EnvContractError(message)


def _check_field(o: dict[str, Any], where: str, spec: ObsField, dims: dict[str, int]) -> None:
    _check(spec.name in o, f"{where} lacks {spec.name!r}")
    value = o[spec.name]
    if spec.shape is None:
        _check(isinstance(value, _SCALAR_TYPES[spec.dtype]),
               f"{where}[{spec.name!r}] = {value!r}: want a scalar of kind {spec.dtype!r}")
        return
    arr = np.asarray(value)
    _check(arr.ndim == len(spec.shape), f"{where}[{spec.name!r}] has shape {arr.shape}, want {spec.shape}")
    for size, want in zip(arr.shape, spec.shape):
        want = dims.setdefault(want, size) if isinstance(want, str) else want
        _check(size == want, f"{where}[{spec.name!r}] has shape {arr.shape}, want {spec.shape} ({dims})")
    if spec.dtype == "f":
        _check(bool(np.all(np.isfinite(arr))), f"{where}[{spec.name!r}] must be finite")


def check_observation(obs: dict[str, Any], robots: list[str]) -> None:
    """Every robot's observation holds every declared field (OBSERVATION),
    with its declared shape and kind, and agrees with itself on the turn."""
    _check(isinstance(obs, dict) and set(obs) == set(robots), f"obs keys {list(obs)} != robots {robots}")
    for name in robots:
        o, where, dims = obs[name], f"obs[{name!r}]", {}
        for spec in OBSERVATION:
            _check_field(o, where, spec, dims)
        _check(o["holder"] in ("", *robots), f"{where}['holder'] = {o['holder']!r}")
        _check(o["my_turn"] == (o["holder"] == name), f"{where}: my_turn disagrees with holder")


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
