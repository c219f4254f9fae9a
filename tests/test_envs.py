"""The standard environment APIs: Gymnasium's ``check_env`` and PettingZoo's
API and seed tests on the wrappers, bit-for-bit lock-step through the
Gymnasium wrapper (the partner's policy included), and what they add
to ``TurnTakingEnv``: nothing but the conversion into declared spaces."""

from __future__ import annotations

import re
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test, seed_test

from robot_mirror.common.commands import ArmCommand
from robot_mirror.common.observation import OBSERVATION
from robot_mirror.config.scenario import load_scenario
from robot_mirror.env import TurnTakingEnv
from robot_mirror.env_checker import same
from robot_mirror.envs import GYM_IDS, SingleArmEnv, env, parallel_env
from robot_mirror.envs.base import LAUNCH
from robot_mirror.errors import ConfigError
from tests.helpers import ROOT

SHORT = ["task.time_limit=5"]  # 300 ticks: the API tests reach the end of an episode
# What the libraries' checkers say of any unbounded physical observation (as
# Gymnasium's own MuJoCo environments have) and of joint targets in radians:
# recommendations, not broken promises. Any other warning fails a test.
RECOMMENDATIONS = re.compile(r"observation space (minimum|maximum) value is -?infinity"
                             r"|symmetric and normalized space"
                             r"|Observation is not a NumPy array"
                             r"|probably should be gymnasium.spaces.box or gymnasium.spaces.discrete"
                             r"|named in the format <descriptor>_<number>")


def no_other_warnings(caught: list[warnings.WarningMessage]) -> None:
    others = [str(w.message) for w in caught if not RECOMMENDATIONS.search(str(w.message))]
    assert not others, others


@pytest.mark.parametrize("env_id", sorted(GYM_IDS))
def test_gymnasium_check_env(env_id: str) -> None:
    """Each registered id; Tower-v0's partner is the scenario's mirror network."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        e = gym.make(env_id)
        try:
            check_env(e.unwrapped)
        finally:
            e.close()
    no_other_warnings(caught)


def test_gymnasium_observation_space_is_the_declaration() -> None:
    e = SingleArmEnv(overrides=["robots.right.policy=expert"])
    try:
        space = e.observation_space
        assert {f.name for f in OBSERVATION} <= set(space.spaces)
        assert space["q"].shape == (7,) and space["blocks"].shape == (6, 7)
        assert space["my_blocks"].n == (6,) and space["tower_count"].dtype == np.int64
        obs, _ = e.reset(seed=0)
        assert obs in space and obs["my_turn"] == 1 and obs["holder"] == "left"
    finally:
        e.close()


def rollout_trace(e: SingleArmEnv, seed: int, steps: int) -> list:
    obs, _ = e.reset(seed=seed)
    e.action_space.seed(seed)
    trace = [{"obs": obs}]
    for _ in range(steps):
        obs, reward, terminated, truncated, _ = e.step(e.action_space.sample())
        trace.append({"obs": obs, "reward": reward, "terminated": terminated, "truncated": truncated})
    return trace


def test_gymnasium_lockstep_with_the_mirror_partner() -> None:
    """Same seed, same actions: the same observations bit for bit, the
    partner's recurrent network reset with the episode."""
    e = gym.make("robot_mirror/Tower-v0").unwrapped
    try:
        first = rollout_trace(e, seed=4, steps=40)
        rollout_trace(e, seed=9, steps=10)  # another episode in between
        second = rollout_trace(e, seed=4, steps=40)
        for tick, (a, b) in enumerate(zip(first, second)):
            assert same(a, b), f"tick {tick}"
        other = rollout_trace(e, seed=5, steps=3)
        assert not same(first[0], other[0])  # another seed lays the blocks elsewhere
    finally:
        e.close()


def test_gymnasium_bad_arguments_are_one_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"robot = 'middle': no such robot; robots: left, right"):
        SingleArmEnv(robot="middle")
    with pytest.raises(ConfigError, match=r"task.blocks = 99"):
        SingleArmEnv(overrides=["task.blocks=99"])
    with pytest.raises(ValueError, match="render_mode = 'human'"):
        SingleArmEnv(render_mode="human")


def test_pettingzoo_parallel_api_and_seed_tests() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        par = parallel_env(overrides=SHORT)
        try:
            parallel_api_test(par, num_cycles=320)
        finally:
            par.close()
        parallel_seed_test(lambda: parallel_env(overrides=SHORT), num_cycles=40)
    no_other_warnings(caught)


def test_pettingzoo_aec_api_and_seed_tests() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        aec = env(overrides=SHORT)
        try:
            api_test(aec, num_cycles=320)
        finally:
            aec.close()
        seed_test(lambda: env(overrides=SHORT), num_cycles=40)
    no_other_warnings(caught)


def test_pettingzoo_adds_nothing_to_the_env() -> None:
    """The parallel env's observations are those of a plain TurnTakingEnv
    given the same seed and commands, converted; both agents get the team
    reward and end together."""
    par = parallel_env(overrides=SHORT)
    plain = TurnTakingEnv(load_scenario(LAUNCH / "tower.yaml", SHORT))
    try:
        obs, infos = par.reset(seed=3)
        plain_obs, _ = plain.reset(seed=3)
        assert set(obs) == set(infos) == {"left", "right"}
        hold = {n: {"q_target": obs[n]["q"], "gripper": np.array(0.0), "turn": 0} for n in obs}
        ticks = 0
        while par.agents:
            obs, rewards, terms, truncs, _ = par.step(hold)
            plain_obs, *_ = plain.step({n: ArmCommand(q_target=h["q_target"]) for n, h in hold.items()})
            ticks += 1
            for n in obs:
                assert same(obs[n], par.arms.convert(n, plain_obs[n])), (ticks, n)
            assert rewards["left"] == rewards["right"] and terms["left"] == terms["right"]
        assert truncs == {"left": True, "right": True} and ticks == 300
    finally:
        par.close()
        plain.close()


def python_blocks(path, heading: str) -> list[str]:
    """The ```python blocks of one section of a Markdown file."""
    text = (ROOT / path).read_text()
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_readme_example_steps_each_environment() -> None:
    """The README's example runs as written (and steps both environments)."""
    (block,) = python_blocks("README.md", "## Environments (Gymnasium, PettingZoo)")
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)
    assert scope["obs"].keys() == {"left", "right"} and scope["obs"]["left"]["t"] == pytest.approx(1.0)


def test_tutorial_example_runs() -> None:
    (block,) = python_blocks("docs/environments.md", "## Opening one")
    scope: dict = {}
    exec(compile(block, "docs/environments.md", "exec"), scope)
    assert scope["obs"]["t"] == pytest.approx(1 / 60) and scope["obs"]["blocks"].shape == (2, 7)
