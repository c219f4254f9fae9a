"""What one robot perceives of its partner (robot_mirror.common.perception)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robot_mirror.common.perception import PartnerObserver, observer_rng
from robot_mirror.geometry import Frame, yaw_of

LEFT = Frame(np.array([-0.6, 0.0, 0.0]), 0.0)
RIGHT = Frame(np.array([0.6, 0.0, 0.0]), math.pi)
SOUTH = Frame(np.array([0.0, -0.6, 0.0]), math.pi / 2)  # a quarter turn: rotation direction matters
NORTH = Frame(np.array([0.0, 0.6, 0.0]), -math.pi / 2)
IDENTITY = np.array([0.0, 0.0, 0.0, 1.0])


def pose(xyz) -> np.ndarray:
    return np.concatenate([np.asarray(xyz, float), IDENTITY])


def keys(xyz) -> np.ndarray:
    return np.array([xyz, np.add(xyz, [0.0, 0.0, 0.3])], float)


@pytest.mark.parametrize("observer, partner", [(LEFT, RIGHT), (RIGHT, LEFT), (SOUTH, NORTH), (NORTH, SOUTH)])
def test_partner_base_is_straight_ahead_in_the_observers_frame(observer: Frame, partner: Frame) -> None:
    """Facing each other across the table, each sees the other's base 1.2 m
    ahead along its own +x: the same motion looks the same from either side."""
    view = PartnerObserver(observer).observe(pose(partner.position), keys(partner.position), 0.7)
    np.testing.assert_allclose(view.ee_pose[:3], [1.2, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(view.keypoints, [[1.2, 0.0, 0.0], [1.2, 0.0, 0.3]], atol=1e-12)
    assert view.observed and view.gripper == 0.7
    # A world-aligned tool is turned by minus the observer's yaw.
    assert math.isclose(abs(yaw_of(view.ee_pose[3:])), abs(observer.yaw), abs_tol=1e-9)


def test_a_point_to_the_observers_left_stays_on_its_left() -> None:
    view = PartnerObserver(RIGHT).observe(pose([0.6, -0.2, 0.1]), keys([0.6, -0.2, 0.1]), 0.0)
    np.testing.assert_allclose(view.ee_pose[:3], [0.0, 0.2, 0.1], atol=1e-12)  # right faces -x: world -y is its +y


@pytest.mark.parametrize("k", [0, 1, 3])
def test_delay_by_k_ticks(k: int) -> None:
    obs = PartnerObserver(LEFT, delay_ticks=k)
    for i in range(10):
        view = obs.observe(pose([i, 0, 0]), keys([i, 0, 0]), i / 10)
        seen = max(0, i - k)  # until the line fills, the oldest view
        assert view.ee_pose[0] == pytest.approx(seen + 0.6) and view.gripper == pytest.approx(seen / 10)
        assert view.keypoints[0, 0] == pytest.approx(seen + 0.6)
    obs.reset()
    assert obs.observe(pose([42, 0, 0]), keys([42, 0, 0]), 0.0).ee_pose[0] == pytest.approx(42.6)


def test_drops_keep_the_last_view_unobserved() -> None:
    obs = PartnerObserver(LEFT, drop_rate=0.4, rng=np.random.default_rng(1))
    last = None
    flags = []
    for i in range(300):
        view = obs.observe(pose([i, 0, 0]), keys([i, 0, 0]), (i % 7) / 7)
        flags.append(view.observed)
        if view.observed:
            assert view.ee_pose[0] == pytest.approx(i + 0.6) and view.gripper == pytest.approx((i % 7) / 7)
            last = view
        else:
            assert last is not None  # the very first tick is always seen
            np.testing.assert_array_equal(view.ee_pose, last.ee_pose)
            np.testing.assert_array_equal(view.keypoints, last.keypoints)
            assert view.gripper == last.gripper
    assert flags[0] and 0.3 < 1 - np.mean(flags) < 0.5  # about drop_rate of them dropped


def test_noise_has_zero_mean_and_the_configured_std() -> None:
    std, n = 0.01, 20_000
    obs = PartnerObserver(LEFT, noise_std=std, rng=np.random.default_rng(2))
    truth = np.array([0.3, -0.1, 0.2])
    views = [obs.observe(pose(truth), keys(truth), 0.5) for _ in range(n)]
    errors = np.array([v.ee_pose[:3] for v in views]) - (truth - LEFT.position)
    key_errors = np.array([v.keypoints for v in views]) - (keys(truth) - LEFT.position)
    for err in (errors.reshape(-1, 3), key_errors.reshape(-1, 3)):
        np.testing.assert_allclose(err.mean(axis=0), 0.0, atol=5 * std / math.sqrt(len(err)))
        np.testing.assert_allclose(err.std(axis=0), std, rtol=0.05)
    assert all(np.array_equal(v.ee_pose[3:], IDENTITY) for v in views[:50])  # orientation is not noised
    assert all(v.gripper == 0.5 and v.observed for v in views)


def stream(rng: np.random.Generator, n: int = 50) -> np.ndarray:
    obs = PartnerObserver(LEFT, noise_std=0.02, delay_ticks=2, drop_rate=0.3, rng=rng)
    views = [obs.observe(pose([i * 0.01, 0, 0]), keys([i * 0.01, 0, 0]), 0.0) for i in range(n)]
    return np.array([np.concatenate([v.ee_pose, v.keypoints.ravel(), [v.observed]]) for v in views])


def test_same_seed_same_stream() -> None:
    np.testing.assert_array_equal(stream(observer_rng(7, 0)), stream(observer_rng(7, 0)))
    assert not np.array_equal(stream(observer_rng(7, 0)), stream(observer_rng(7, 1)))  # per robot
    assert not np.array_equal(stream(observer_rng(7, 0)), stream(observer_rng(8, 0)))  # per episode
