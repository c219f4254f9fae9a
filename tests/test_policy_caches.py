"""The policies' per-tick caches save work without changing an answer: the
twin is not re-set to joints it already stands at, and zone distances are
remembered per joint vector (the zone never moves)."""

from __future__ import annotations

import numpy as np
import pytest

from robot_mirror.config.scenario import load_scenario
from robot_mirror.geometry import top_down_quat
from robot_mirror.policies.clearance import ZONE_MARGIN, Clearance
from robot_mirror.sim.kinematics import Kinematics
from robot_mirror.sim.spec import RobotSpec
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def spec():
    sc = load_scenario(ROOT / "launch/tower.yaml")
    return RobotSpec.from_config(sc.robot("left"), sc.base_dir)


@pytest.fixture
def kin(spec):
    k = Kinematics(spec)
    yield k
    k.close()


def _count_resets(kin, monkeypatch) -> list:
    calls: list = []
    real = kin.arm.reset_joints
    monkeypatch.setattr(kin.arm, "reset_joints", lambda q, *a, **k: (calls.append(1), real(q, *a, **k)))
    return calls


def test_set_q_skips_the_joints_the_twin_already_has(kin, monkeypatch) -> None:
    calls = _count_resets(kin, monkeypatch)
    q = kin.home_q + 0.05
    kin.set_q(q)
    kin.set_q(q.copy())
    assert len(calls) == 1
    kin.set_q(q + 1e-9)  # any change at all is a new pose
    assert len(calls) == 2
    kin.fk(q)
    assert len(calls) == 3


def test_cached_twin_gives_the_same_poses_and_ik_as_a_fresh_one(spec, kin) -> None:
    fresh = Kinematics(spec)
    try:
        seed = kin.home_q
        for k in range(12):
            pose = np.array([0.1 + 0.01 * k, 0.05, 0.25, *top_down_quat(0.1 * k)])
            q, err, ang = kin.ik(pose, seed, iterations=1)
            fresh._q_set = None  # the reference re-sets before every read
            assert np.array_equal(kin.fk(q), fresh.fk(q))
            fresh._cache.clear()
            ref = fresh.ik(pose, seed, iterations=1)
            assert np.array_equal(q, ref[0]) and (err, ang) == (ref[1], ref[2])
            seed = q
    finally:
        fresh.close()


def test_zone_distance_is_remembered_and_unchanged(kin, monkeypatch) -> None:
    clr = Clearance(kin, (0.0, 0.0), 0.2, 0.05)
    qs = [kin.home_q + d for d in (0.0, 0.3, -0.2)]
    first = [clr.zone_distance(q, cap=ZONE_MARGIN) for q in qs]
    far = clr.zone_distance(qs[0])  # another cap is another question
    queries: list = []
    real = clr._distance
    monkeypatch.setattr(clr, "_distance", lambda g, cap: (queries.append(cap), real(g, cap))[1])
    again = [clr.zone_distance(q.copy(), cap=ZONE_MARGIN) for q in qs]
    assert again == first and queries == []
    other = Clearance(Kinematics(kin.spec), (0.0, 0.0), 0.2, 0.05)
    try:
        assert [other.zone_distance(q, cap=ZONE_MARGIN) for q in qs] == first
        assert other.zone_distance(qs[0]) == far
    finally:
        other.kin.close()


def test_each_episode_starts_the_twin_without_memory(spec, kin) -> None:
    """The twin's IK remembers answers and the last good target (a
    multi-start seed). An expert's reset (every episode) clears that, so an
    episode moves the same whatever the twin solved before: a seed played
    after others in a benchmark worker once moved otherwise than alone."""
    from robot_mirror.config.scenario import load_scenario as load
    from robot_mirror.policies.tower_expert import ScriptedExpert

    task = load(ROOT / "launch/tower.yaml").task
    expert = ScriptedExpert(spec, task, 60, kin)
    far = np.array([-0.2, 0.45, 0.05, *top_down_quat(2.5)])  # off to the side: the warm start misses
    for pose in (far, np.array([-0.1, -0.4, 0.3, *top_down_quat(-1.0)])):
        kin.ik(pose, kin.home_q)
    assert kin._cache and kin._last_good is not None
    expert.reset()
    assert not kin._cache and kin._last_good is None and kin._last_miss is None
    fresh = Kinematics(spec)
    try:
        q, err, _ = kin.ik(far, kin.home_q)
        assert np.array_equal(q, fresh.ik(far, fresh.home_q)[0]) and err < 0.01
    finally:
        fresh.close()
