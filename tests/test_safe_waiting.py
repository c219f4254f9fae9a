"""Safe waiting next to any partner: for every policy on the Panda (expert,
oracle, mirror, constant turn-end prediction) and each pair (Panda + iiwa,
mirror_arm + Panda, xArm6 + Panda, generated zoo arms + Panda), no zone
violation, no tower disturbance and the arms never closer than 5 cm. The
default set plays one 4-block tower per policy and pair, the policies taking
seeds 0 and 1 in turn (so each pair, and the zoo pair's arm drawn per seed,
meets both seeds: 16 episodes, not 32, for a suite under 10 minutes); the
slow set plays every policy on the full 20 seeds of ``bench/safe_waiting.py``."""

from __future__ import annotations

import importlib.util

import pytest

from tests.conftest import ROOT


def bench():
    spec = importlib.util.spec_from_file_location("safe_waiting", ROOT / "bench" / "safe_waiting.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SAFE = bench()


def check(pair: str, seeds: range, blocks: int, one_seed_each: bool = False) -> None:
    """Every policy on every seed, or with ``one_seed_each`` policy i on seed i mod len(seeds)."""
    bad = []
    for index, policy in enumerate(SAFE.POLICIES):
        for seed in ([seeds[index % len(seeds)]] if one_seed_each else seeds):
            s = SAFE.play(pair, policy, seed, blocks)
            if s["zone_violations"] or s["min_arm_distance"] < SAFE.MIN_DISTANCE or s["tower_disturbances"]:
                bad.append((policy, seed, s["zone_violations"], s["min_arm_distance"], s["tower_disturbances"]))
    assert not bad, f"{pair}: (policy, seed, violations, min distance, disturbances) {bad}"


@pytest.mark.parametrize("pair", list(SAFE.PAIRS))
def test_safe_waiting_two_seeds(pair: str) -> None:
    check(pair, range(2), blocks=4, one_seed_each=True)


@pytest.mark.slow
@pytest.mark.parametrize("pair", list(SAFE.PAIRS))
def test_safe_waiting_twenty_seeds(pair: str) -> None:
    check(pair, range(20), blocks=6)
