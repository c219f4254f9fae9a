"""Synchronous imitation: the follower's deadline, the baselines' beliefs,
the comparison's statistics, and the random follower's seed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robot_mirror.config.scenario import load_scenario
from robot_mirror.env import TurnTakingEnv
from robot_mirror.geometry import Frame
from robot_mirror.policies import PolicyContext, make_policy, rollout
from robot_mirror.policies.baselines import ConstantSlot, NearestSeenSlot, TurnClock
from robot_mirror.policies.builtin import make_expert
from robot_mirror.studies import behaviour
from tests.conftest import ROOT

SCENARIO = ROOT / "launch/imitation.yaml"
SEED = 1  # round 0: slot 1; the scripted arms grasp cleanly on this seed


class WrongUntil:
    """A follower belief ``offset`` slots off the truth; at the grant
    (``my_turn``) it switches to the truth when ``switch``, else stays wrong."""

    def __init__(self, truth, offset: int, switch: bool) -> None:
        self.truth, self.offset, self.switch = truth, offset, switch

    def reset(self) -> None:
        pass

    def __call__(self, obs) -> int:
        t = self.truth()
        if t < 0 or (self.switch and obs["my_turn"]):
            return t
        k = len(obs["slots"])
        return t + self.offset if t + self.offset < k else t - self.offset


@pytest.fixture(scope="module")
def env():
    e = TurnTakingEnv(load_scenario(SCENARIO, ["task.rounds=1"]))
    yield e
    e.close()


def play_round(env, source=None) -> dict:
    sc = env.scenario
    policies = {s.name: make_expert(PolicyContext(s, sc, env.twin(s.name), env.task.true_slot),
                                    slot_source=source) for s in env.specs}
    summary = rollout(env, policies, SEED)
    assert summary["rounds_played"] == 1 and summary["zone_violations"] == 0
    return summary["round_results"][0]


def test_oracle_hovering_over_the_slot_is_on_time(env) -> None:
    r = play_round(env)  # expert in process: the true slot from the start of the leader's turn
    budget = env.scenario.task.follow_budget
    assert r["success"] and r["placed"] and not r["late"], r
    assert r["follow_latency"] < budget and r["chosen_slot"] == r["slot"]
    assert r["last_aim_change"] < 0  # it was over the slot before the leader let go


def test_wrong_non_adjacent_belief_fails_or_is_late(env) -> None:
    truth = env.task.true_slot
    stays = play_round(env, WrongUntil(truth, 2, switch=False))
    assert not stays["success"] and not stays["placed"] and abs(stays["chosen_slot"] - stays["slot"]) == 2
    late = play_round(env, WrongUntil(truth, 2, switch=True))
    assert late["placed"] and late["late"] and not late["success"], late
    assert late["follow_latency"] > env.scenario.task.follow_budget
    assert late["last_aim_change"] > 0  # its arm moved over after the leader let go


# ------------------------------------------------------------ the baselines
def _follower_obs(task, right_frame: Frame, seen_xy, *, partners_turn: bool) -> dict:
    slots = np.zeros((4, 3))
    slots[:, :2] = task.slot_xy(1)
    pose = np.array([*seen_xy, 0.2, 0, 0, 0, 1.0])
    return {"slots": slots, "tower_xy": np.zeros(2), "holder": "left" if partners_turn else "right",
            "my_turn": not partners_turn, "seen_partner_ee_pose": right_frame.pose_to_local(pose)}


def test_heuristic_slot_is_the_mirror_of_the_seen_tool(env) -> None:
    task = env.task
    frame = env.specs[1].base_frame()
    source = NearestSeenSlot(frame)
    assert source(_follower_obs(task, frame, (0, 0), partners_turn=True)) == -1  # nothing seen yet
    for k, xy in enumerate(task.slot_xy(0)):  # the leader's tool over its slot k (+ 4 cm off)
        obs = _follower_obs(task, frame, xy + 0.04, partners_turn=True)
        source.observe(obs)
        assert source(obs) == k
    # outside the partner's turn the belief is kept, whatever is seen
    obs = _follower_obs(task, frame, task.slot_xy(0)[0], partners_turn=False)
    source.observe(obs)
    assert source(obs) == 3
    assert ConstantSlot()(obs) == 1  # the middle slot, (K - 1) // 2


def test_heuristic_turn_clock_uses_the_partners_past_turns() -> None:
    clock = TurnClock(prior=6.0)

    def tick(t: float, holder: str) -> float | None:
        obs = {"t": t, "holder": holder, "my_turn": holder == "me"}
        clock.observe(obs)
        return clock(obs)

    assert tick(0.0, "me") is None           # our turn: no prediction
    assert tick(1.0, "them") == 6.0          # the prior before any partner turn
    assert tick(3.0, "them") == 4.0          # minus the elapsed time
    assert tick(5.0, "me") is None           # its turn lasted 4 s
    assert tick(9.0, "them") == 4.0          # mean of past turns (4 s) - 0 s
    assert tick(14.0, "them") == 0.0         # overdue: never below zero


# ---------------------------------------------------------- the statistics
def test_bootstrap_interval_and_paired_advantage_on_fixed_numbers() -> None:
    assert behaviour.bootstrap_ci([0.5] * 6) == (0.5, 0.5)
    lo, hi = behaviour.bootstrap_ci([0.0, 0.25, 0.5, 0.75, 1.0, 1.0], resamples=2000, seed=0)
    assert lo < 0.5833 < hi and 0.2 < lo and hi < 0.95
    assert behaviour.bootstrap_ci([1.0, 2.0, 3.0], seed=4) == behaviour.bootstrap_ci([1.0, 2.0, 3.0], seed=4)
    # a clear advantage: every seed better by 0.25
    clear = behaviour.paired_difference({0: 1.0, 1: 0.75, 2: 1.0}, {0: 0.75, 1: 0.5, 2: 0.75})
    assert clear["mean"] == pytest.approx(0.25) and clear["ci95"] == pytest.approx([0.25, 0.25])
    # better on some seeds, worse on others: the interval straddles 0
    mixed = behaviour.paired_difference({0: 1.0, 1: 0.5, 2: 0.75, 3: 0.25, 9: None},
                                        {0: 0.5, 1: 1.0, 2: 0.5, 3: 0.5, 9: 1.0})
    assert mixed["seeds"] == [0, 1, 2, 3] and mixed["mean"] == pytest.approx(0.0)
    assert mixed["ci95"][0] < 0 < mixed["ci95"][1]


def test_summary_picks_the_best_non_oracle_baseline_lesion_included() -> None:
    def runs(values):
        return {s: {"on_time_success": v, "success": True, "zone_violations": 0, "wall_seconds": 1.0,
                    "late_rounds": 0, "placed": 4} for s, v in enumerate(values)}

    result = behaviour.summarise({"constant": runs([0.25, 0.25, 0.5]), "heuristic": runs([0.75, 0.5, 0.75]),
                                  "oracle": runs([1.0, 1.0, 1.0]), "mirror_lesioned": runs([0.5, 0.5, 0.25]),
                                  "mirror": runs([1.0, 0.5, 1.0])}, "imitation")
    adv = result["mirror_advantage"]
    assert result["mirror_beats_every_baseline"] is False  # its interval overlaps the heuristic's
    assert result["best_baseline"] == "heuristic" and adv["baseline"] == "heuristic"
    assert adv["mean"] == pytest.approx(1 / 6) and adv["per_seed"] == pytest.approx([0.25, 0.0, 0.25])
    assert result["variants"]["oracle"]["headline"]["mean"] == 1.0
    assert behaviour.best_baseline({"expert": 3.0, "constant": 2.5, "oracle": 1.0}, "lower") == "constant"
    # the lesioned network is a baseline too: when it is the best, the mirror is measured against it
    assert behaviour.best_baseline({"mirror": 0.9, "mirror_lesioned": 0.8, "heuristic": 0.5}, "higher") == "mirror_lesioned"
    clear = behaviour.summarise({"constant": runs([0.25, 0.25, 0.25]), "mirror": runs([1.0, 1.0, 1.0])}, "imitation")
    assert clear["mirror_beats_every_baseline"] is True


def test_seeds_and_perception_levels_are_checked() -> None:
    assert behaviour.seeds_for(3, 5) == [5, 6, 7]
    with pytest.raises(behaviour.ConfigError, match="below|0..999"):
        behaviour.seeds_for(6, 996)
    sc = load_scenario(SCENARIO)
    ov = behaviour.variant_overrides(sc, "heuristic", "stress")
    assert "perception.level=stress" in ov and "robots.right.policy=heuristic" in ov
    assert math.isclose(load_scenario(SCENARIO, ov).perception.drop_rate, 0.30)
    with pytest.raises(behaviour.ConfigError, match="perception"):
        behaviour.variant_overrides(sc, "heuristic", "foggy")


# ------------------------------------------------------- the random seed fix
def test_random_follower_draws_follow_the_episode_seed(env) -> None:
    obs = {"slots": np.zeros((4, 3))}

    def draws(scenario_seed: int, episode_seed: int) -> list[int]:
        sc = load_scenario(SCENARIO, [f"seed={scenario_seed}"])
        policy = make_policy("random", env.specs[1], sc, env.twin("right"))
        policy.reset()
        policy.seed_episode(episode_seed)
        per_round = []
        for r in range(20):  # asked on several ticks of each round: one draw per round
            per_round.append({policy.slot_source({**obs, "round": r}) for _ in range(3)})
        assert all(len(d) == 1 for d in per_round)
        return [d.pop() for d in per_round]

    assert draws(0, 3) != draws(0, 4)          # another evaluation seed, other choices
    assert draws(0, 3) == draws(7, 3)          # the scenario's seed no longer decides
