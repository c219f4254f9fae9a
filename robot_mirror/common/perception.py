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
        self._last: Sight | None = None  # the last view not dropped

    @property
    def stateless(self) -> bool:
        """No delay, drops or noise: a view depends on this tick alone, so
        a tick nobody reads need not be fed at all."""
        return self.delay_ticks == 0 and self.drop_rate == 0 and self.noise_std == 0

    def reset(self) -> None:
        self._line.clear()
        self._last = None

    def observe(self, ee_pose_world: np.ndarray, keypoints_world: np.ndarray, gripper: float) -> PartnerView:
        """Feed the partner's true state for this tick; get what is perceived."""
        return self.feed(ee_pose_world, keypoints_world, gripper).view()

    def feed(self, ee_pose_world: np.ndarray, keypoints_world: np.ndarray, gripper: float) -> "Sight":
        """Feed the partner's true state for this tick and make this tick's
        draws (the drop, then the noise); the view itself is computed when
        :meth:`Sight.view` is first asked, so a tick nobody reads skips the
        frame change but leaves the delay line and the noise stream as they
        would be."""
        self._line.append((np.asarray(ee_pose_world, float), np.asarray(keypoints_world, float), float(gripper)))
        ee, keys, grip = self._line[0]  # oldest entry = delayed view (until the line fills)
        dropped = self.drop_rate > 0 and self.rng.random() < self.drop_rate
        if dropped and self._last is not None:
            return Sight(self.frame, repeat=self._last)
        noise = None
        if self.noise_std > 0:
            noise = (self.rng.normal(0.0, self.noise_std, 3), self.rng.normal(0.0, self.noise_std, keys.shape))
        self._last = Sight(self.frame, (ee, keys, grip), noise)
        return self._last


class Sight:
    """One tick's perceived partner, computed on first use from the delayed
    true state and the noise drawn for that tick (or, for a dropped tick,
    the last view, marked not observed)."""

    __slots__ = ("_frame", "_state", "_noise", "_repeat", "_view")

    def __init__(self, frame: Frame, state: tuple[np.ndarray, np.ndarray, float] | None = None,
                 noise: tuple[np.ndarray, np.ndarray] | None = None, repeat: "Sight | None" = None) -> None:
        self._frame, self._state, self._noise, self._repeat = frame, state, noise, repeat
        self._view: PartnerView | None = None

    def view(self) -> PartnerView:
        if self._view is None:
            if self._repeat is not None:
                last = self._repeat.view()
                self._view = PartnerView(last.ee_pose, last.keypoints, last.gripper, False)
            else:
                ee, keys, grip = self._state
                pose = self._frame.pose_to_local(ee)
                points = self._frame.points_to_local(keys)
                if self._noise is not None:
                    pose = pose.copy()
                    pose[:3] += self._noise[0]
                    points = points + self._noise[1]
                self._view = PartnerView(pose, points, grip, True)
            self._state = self._noise = self._repeat = None
        return self._view


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
