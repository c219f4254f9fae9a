"""What one robot perceives of its partner.

A policy never reads its partner's internals (joint angles). It sees the
partner as a camera-like sensor would: a few keypoints (link positions) and
the tool pose, expressed in the observer's own base frame, with optional
Gaussian noise, a fixed delay and random drops (the last view is kept and
``partner_observed`` is false). Expressing the partner in the observer's
frame is what lets one network treat "my arm reaching toward me+x" and
"the partner reaching toward me-x" in the same units.

Pure numpy: the perception node, the in-process environment and the
demonstration recorder all use this one class.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from robot_mirror.geometry import Frame


@dataclass
class PartnerView:
    ee_pose: np.ndarray      # (7,) observer base frame
    keypoints: np.ndarray    # (K, 3) observer base frame
    gripper: float
    observed: bool


class PartnerObserver:
    """One observer's view of its partner over time (keeps the delay line)."""

    def __init__(self, observer_frame: Frame, *, noise_std: float = 0.0, delay_ticks: int = 0,
                 drop_rate: float = 0.0, rng: np.random.Generator | None = None) -> None:
        self.frame = observer_frame
        self.noise_std = float(noise_std)
        self.delay_ticks = int(delay_ticks)
        self.drop_rate = float(drop_rate)
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self._line: deque[tuple[np.ndarray, np.ndarray, float]] = deque(maxlen=self.delay_ticks + 1)
        self._last: PartnerView | None = None

    @property
    def stateless(self) -> bool:
        """No delay, drops or noise: a view depends on this tick alone, so
        ticks nobody reads may be skipped without changing the others."""
        return self.delay_ticks == 0 and self.drop_rate == 0 and self.noise_std == 0

    def reset(self) -> None:
        self._line.clear()
        self._last = None

    def observe(self, ee_pose_world: np.ndarray, keypoints_world: np.ndarray, gripper: float) -> PartnerView:
        """Feed the partner's true state for this tick; get what is perceived."""
        self._line.append((np.asarray(ee_pose_world, float), np.asarray(keypoints_world, float), float(gripper)))
        ee, keys, grip = self._line[0]  # oldest entry = delayed view (until the line fills)
        dropped = self.drop_rate > 0 and self.rng.random() < self.drop_rate
        if dropped and self._last is not None:
            return PartnerView(self._last.ee_pose, self._last.keypoints, self._last.gripper, False)
        pose = self.frame.pose_to_local(ee)
        points = self.frame.points_to_local(keys)
        if self.noise_std > 0:
            pose = pose.copy()
            pose[:3] += self.rng.normal(0.0, self.noise_std, 3)
            points = points + self.rng.normal(0.0, self.noise_std, points.shape)
        view = PartnerView(pose, points, grip, True)
        self._last = view
        return view


def observer_rng(seed: int, robot_index: int) -> np.random.Generator:
    """Perception noise stream of one robot in one episode (same in every process)."""
    return np.random.default_rng([seed, robot_index, 0x5EE])


def make_observers(scenario, episode_seed: int) -> dict[str, PartnerObserver]:
    """One observer per robot, configured by the scenario's ``perception``
    section and seeded by (episode seed, robot index) so every process that
    builds them draws the same noise."""
    cfg = scenario.perception
    return {
        robot.name: PartnerObserver(robot.base_frame(), noise_std=cfg.noise_std, delay_ticks=cfg.delay_ticks,
                                    drop_rate=cfg.drop_rate, rng=observer_rng(episode_seed, i))
        for i, robot in enumerate(scenario.robots)
    }
