"""The imitation task (mirror game): layout, turn order by role, the
follower's blindness to the label, and the oracle / random baselines."""

from __future__ import annotations

import numpy as np
import pytest

from robot_mirror.env import TurnTakingEnv
from robot_mirror.env_checker import check_lockstep
from robot_mirror.config.scenario import load_scenario
from robot_mirror.policies import make_policy, rollout
from robot_mirror.policies.imitation_expert import ImitationExpert, ObservedSlot, OracleSlot, RandomSlot
from robot_mirror.sim.tasks.imitation import ImitationTask
from tests.conftest import ROOT

SCENARIO = ROOT / "launch/imitation.yaml"


def play(env: TurnTakingEnv, seed: int, *, oracle: bool = True, check=None) -> tuple[dict, list[dict]]:
    """One episode through the one loop; ``check(env, obs)`` sees every
    observation together with the env state it came from."""
    sc = env.scenario
    policies = {s.name: make_policy(sc.robot(s.name).policy, s, sc, env.twin(s.name),
                                    oracle=env.task.true_slot if oracle else None) for s in env.specs}
    on_tick = None if check is None else (lambda tick: check(env, tick.next_obs))
    summary = rollout(env, policies, seed, on_tick)
    return summary, list(env.episode_events)


@pytest.fixture(scope="module")
def env():
    e = TurnTakingEnv(load_scenario(SCENARIO, ["task.rounds=2"]))
    yield e
    e.close()


def test_slots_are_mirror_symmetric_and_reachable(env) -> None:
    task = env.task
    left, right = task.slot_xy(0), task.slot_xy(1)
    assert left.shape == right.shape == (4, 2)
    # same world y, mirrored x (the arms face each other across x = 0)
    assert np.allclose(left[:, 1], right[:, 1]) and np.allclose(left[:, 0], -right[:, 0])
    assert np.allclose(sorted(np.abs(left[:, 1])), [0.09, 0.09, 0.27, 0.27])
    # each arm's slots and supply are on its own side, outside the shared zone
    for ri, spec in enumerate(env.specs):
        side = np.sign(spec.base_position[0])
        for xy in [*task.slot_xy(ri), task.supply_xy(ri)]:
            assert np.sign(xy[0]) == side and np.hypot(*xy) > task.zone.radius + 0.05
        assert np.hypot(*task.supply_xy(ri)) > abs(task.slot_xy(ri)[0, 0])  # supply further back
    poses = task.reach_poses()
    assert set(poses) == {"left", "right"} and all(len(p) == 4 + 2 for p in poses.values())
    env.check_reachability()  # raises if any slot or supply spot is out of reach


def test_env_is_lockstep_reproducible(env) -> None:
    check_lockstep(env, seed=3)


def test_oracle_follower_succeeds_every_round_blind_to_the_label(env) -> None:
    seen_roles = set()

    def check(env, obs):
        task = env.task
        if task.phase == "done":
            return
        leader, follower = task.leader(), task.follower()
        lo, fo = obs[leader], obs[follower]
        assert lo["role"] == "leader" and fo["role"] == "follower"
        assert fo["target_slot"] == -1
        assert set(fo) == set(lo)  # no extra key for either
        if task.phase in ("lead", "follow", "score"):
            assert lo["target_slot"] == task.true_slot() >= 0
        assert fo["slots"].shape == (4, 3)
        seen_roles.add((leader, task.phase))

    summary, events = play(env, seed=0, check=check)
    assert summary["success"] and summary["rounds_played"] == 2, summary
    assert summary["imitation_success"] == 1.0, summary["round_results"]
    assert summary["zone_violations"] == 0
    for r in summary["round_results"]:
        assert r["success"] and r["chosen_slot"] == r["slot"] == r["leader_slot"] and r["error"] < 0.01
    # turn order by role: leader, follower, leader, follower (roles alternate per round)
    grants = [e["robot"] for e in events if e["type"] == "turn_start"]
    assert grants == ["left", "right", "right", "left"], grants
    ends = [e for e in events if e["type"] == "round_end"]
    assert [e["round"] for e in ends] == [0, 1] and all({"success", "slot", "chosen_slot"} <= set(e) for e in ends)
    assert [e["round"] for e in events if e["type"] == "round_start"] == [0, 1]
    assert {("left", "lead"), ("left", "follow"), ("right", "lead"), ("right", "follow")} <= seen_roles


def test_random_follower_is_scored(env) -> None:
    sc = load_scenario(SCENARIO, ["task.rounds=2", "robots.left.policy=random", "robots.right.policy=random"])
    e = TurnTakingEnv(sc, check_reach=False)
    try:
        policies = [make_policy("random", s, sc, e.twin(s.name), oracle=e.task.true_slot) for s in e.specs]
        assert all(isinstance(p, ImitationExpert) and isinstance(p.slot_source, RandomSlot) for p in policies)
        summary, _ = play(e, seed=1)
    finally:
        e.close()
    assert summary["rounds_played"] == 2 and len(summary["round_results"]) == 2
    for r in summary["round_results"]:
        assert 0 <= r["chosen_slot"] < 4 and r["placed"] == (r["chosen_slot"] == r["slot"])
        assert r["success"] == (r["placed"] and not r["late"])
    assert summary["imitation_success"] == sum(r["success"] for r in summary["round_results"]) / 2


def test_make_policy_slot_sources(env) -> None:
    sc = env.scenario
    spec = env.specs[1]
    with_oracle = make_policy("expert", spec, sc, env.twin(spec.name), oracle=lambda: 2)
    assert isinstance(with_oracle.slot_source, OracleSlot) and with_oracle.slot_source({}) == 2
    # without the task at hand (a policy process) the expert follower reads the leader's block
    assert isinstance(make_policy("expert", spec, sc, env.twin(spec.name)).slot_source, ObservedSlot)
    a = RandomSlot([0, 1])
    b = RandomSlot([0, 1])
    obs = {"slots": np.zeros((4, 3))}
    a.reset(), b.reset()
    draws = [a(obs) for _ in range(50)]
    assert draws == [b(obs) for _ in range(50)] and set(draws) == {0, 1, 2, 3}


def test_observed_slot_mirrors_the_leaders_block(env) -> None:
    obs, _ = env.reset(seed=0)
    task: ImitationTask = env.task
    right = obs["right"]
    for k in range(4):
        blocks = right["blocks"].copy()
        blocks[right["partner_block"], :2] = task.slot_xy(0)[k] + 0.01  # left's block in its slot k
        assert ObservedSlot()({**right, "blocks": blocks}) == k


def test_tower_expert_labels_levels() -> None:
    """The tower expert exposes the same labels (target = tower level)."""
    env = TurnTakingEnv(load_scenario(ROOT / "launch/tower.yaml", ["task.blocks=2"]))
    try:
        sc = env.scenario
        policies = {s.name: make_policy("expert", s, sc, env.twin(s.name)) for s in env.specs}
        targets = {n: set() for n in policies}

        def on_tick(tick) -> None:
            for n, p in policies.items():
                segment, target, block = p.labels()
                if segment != "wait":
                    targets[n].add((target, block))

        rollout(env, policies, 0, on_tick)
    finally:
        env.close()
    assert targets == {"left": {(0, 0)}, "right": {(1, 1)}}
