"""The shared-zone rule as the sim enforces it (robot_mirror.nodes.zone_guard),
on a real environment: only the turn holder may reach into the zone."""

from __future__ import annotations

import numpy as np
import pytest

from robot_mirror.common.commands import ArmCommand
from robot_mirror.config.scenario import load_scenario
from robot_mirror.env import TurnTakingEnv
from robot_mirror.geometry import top_down_quat
from robot_mirror.nodes.zone_guard import ZoneGuard
from tests.helpers import ROOT


@pytest.fixture(scope="module")
def env():
    env = TurnTakingEnv(load_scenario(ROOT / "launch/tower.yaml", ["task.blocks=2"]))
    yield env
    env.close()


@pytest.fixture
def guard(env) -> ZoneGuard:
    env.reset(seed=0)
    return ZoneGuard(env)


def into_zone(env, robot: str, height: float = 0.15) -> np.ndarray:
    """Joint angles putting ``robot``'s tool over the zone's centre (checked by FK)."""
    zone = env.task.zone
    twin = env.twin(robot)
    pose = np.concatenate([[*zone.center_xy, height], top_down_quat(0.0)])
    q, err, _ = twin.ik(pose, env.arm_q(robot), iterations=6)
    tool = twin.fk(q)
    assert err < 0.01 and np.hypot(*(tool[:2] - zone.center_xy)) < zone.radius / 2, (err, tool)
    return q


def roles(env) -> tuple[str, str]:
    holder = env.arbiter.holder
    assert holder is not None
    return holder, next(n for n in env.robot_names if n != holder)


def test_non_holder_reaching_into_the_zone_is_refused(env, guard) -> None:
    _, other = roles(env)
    assert not env.arm_in_zone(other)
    assert guard.refuses(other, ArmCommand(q_target=into_zone(env, other)))
    assert guard.refuses(other, ArmCommand(q_target=into_zone(env, other, height=0.4)))  # from above, too


def test_holder_may_reach_into_the_zone(env, guard) -> None:
    holder, _ = roles(env)
    assert not guard.refuses(holder, ArmCommand(q_target=into_zone(env, holder)))


def test_commands_away_from_the_zone_are_allowed(env, guard) -> None:
    holder, other = roles(env)
    for robot in (holder, other):
        assert not guard.refuses(robot, ArmCommand(q_target=env.arm_q(robot).copy()))  # stay at home
    assert not guard.refuses(other, ArmCommand(q_target=None, gripper=1.0))  # no joint target: nothing to check


def test_cached_answers_follow_the_target(env, guard) -> None:
    _, other = roles(env)
    q_in, home = into_zone(env, other), env.arm_q(other).copy()
    answers = [guard.refuses(other, ArmCommand(q_target=q)) for q in (q_in, q_in, home, home, q_in)]
    assert answers == [True, True, False, False, True]


def test_an_arm_already_inside_may_move(env, guard) -> None:
    """The holder enters, then gives the turn away while still inside: it is
    no longer the holder, and it may still move (out, or anywhere)."""
    holder, other = roles(env)
    q_in = into_zone(env, holder)
    for _ in range(240):
        env.step({holder: ArmCommand(q_target=q_in)})
        if env.arm_in_zone(holder):
            break
    assert env.arm_in_zone(holder), "the holder never reached the zone"
    env.step({holder: ArmCommand(q_target=q_in, turn="release")})
    assert env.arbiter.holder == other and env.arm_in_zone(holder)
    assert not guard.refuses(holder, ArmCommand(q_target=q_in))
    assert not guard.refuses(holder, ArmCommand(q_target=into_zone(env, holder, height=0.1)))
    assert not guard.refuses(other, ArmCommand(q_target=into_zone(env, other)))  # the new holder may enter
