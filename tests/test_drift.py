"""The teacher perturbation behind ``robot-mirror demos --motor-noise`` (DART)."""

from __future__ import annotations

import numpy as np
import pytest

from robot_mirror.policies.drift import FADE_M, SetpointDrift


def _run(drift: SetpointDrift, ticks: int, distance: float = 1.0) -> np.ndarray:
    return np.array([drift.step(distance) for _ in range(ticks)])


def test_the_drift_is_seeded_and_has_the_asked_spread() -> None:
    a, b = SetpointDrift(0.01, 1 / 60), SetpointDrift(0.01, 1 / 60)
    a.seed(7, 0)
    b.seed(7, 0)
    path = _run(a, 20000)
    np.testing.assert_array_equal(path, _run(b, 20000))  # same seed, same path, bit for bit
    b.seed(7, 1)
    assert not np.array_equal(path, _run(b, 20000))  # the other arm draws its own
    assert 0.007 < path.std() < 0.013  # stationary std 1 cm per axis
    steps = np.linalg.norm(np.diff(path, axis=0), axis=1)
    assert steps.max() < 0.005  # smooth: white noise of this spread jumps ~2.5 cm a tick


def test_the_drift_fades_at_both_ends_of_a_move() -> None:
    drift = SetpointDrift(0.01, 1 / 60)
    drift.seed(3)
    _run(drift, 200)
    assert np.array_equal(drift.step(0.0), np.zeros(3))  # at a waypoint: exact
    half = drift.step(FADE_M / 2)
    full = drift.offset.copy()
    np.testing.assert_allclose(half, full / 2)
    np.testing.assert_allclose(drift.step(1.0), drift.offset)


@pytest.mark.parametrize("std", [-0.01, float("nan"), float("inf")])
def test_a_bad_spread_is_refused(std: float) -> None:
    with pytest.raises(ValueError, match="drift std"):
        SetpointDrift(std, 1 / 60)
