"""Teacher perturbation for recording motor demonstrations (DART).

Behaviour cloning learns the teacher's commands only along the teacher's own
paths; the cloned arm drifts off them and meets states the data never held
(Ross et al. 2011). DART (Laskey et al. 2017, "DART: Noise Injection for
Robust Imitation Learning") injects noise into the teacher's *execution*
while recording: the arm visits the neighbourhood of the nominal path, and
the teacher, being closed-loop, labels each of those states with its
correction. Here the scripted planner's tool setpoint gets a smooth offset:
an Ornstein-Uhlenbeck process (correlation time ``tau``) seen through a
first-order low-pass (time constant ``smooth``, so the commanded path has no
per-tick jitter), with stationary standard deviation ``std`` per axis. It
fades in over the first and out over the last ``fade`` metres of each move,
so grasps and placements stay exact and the path is continuous from one move
to the next: the data shows how to get back on track, and where precision
matters the teacher is as precise as ever. The labels
(:func:`robot_mirror.mirror.motor.motor_teacher`) are the planner's
waypoints measured from the perturbed tool.

Seeded per episode and robot, so a recording is reproducible bit for bit.
"""

from __future__ import annotations

import math

import numpy as np

FADE_M = 0.05  # the offset grows over a move's first 5 cm and vanishes over its last 5 cm


class SetpointDrift:
    """A smooth random offset added to a scripted arm's tool setpoint."""

    def __init__(self, std: float, dt: float, tau: float = 0.4, smooth: float = 0.15, fade: float = FADE_M) -> None:
        if not (math.isfinite(std) and std >= 0.0):
            raise ValueError(f"drift std {std!r}: must be a finite number >= 0")
        self.dt, self.tau, self.smooth, self.fade = float(dt), float(tau), float(smooth), float(fade)
        # The low-pass shrinks the OU process's variance by tau / (tau + smooth): drive it harder.
        self.std = float(std) * math.sqrt((tau + smooth) / tau)
        self.seed(0)

    def seed(self, *entropy: int) -> None:
        """Restart the process (offset zero) with its own random stream."""
        self.rng = np.random.default_rng([0xDA57, *entropy])
        self.state = np.zeros(3)   # the OU process
        self.offset = np.zeros(3)  # its low-passed value, what is added

    def step(self, distance_to_end: float) -> np.ndarray:
        """Advance one tick; the offset to add to the setpoint now (m, world),
        scaled down within ``fade`` of the move's start or target
        (``distance_to_end``: the nearer of the two)."""
        a = self.dt / self.tau
        self.state += -a * self.state + self.std * math.sqrt(2.0 * a) * self.rng.standard_normal(3)
        self.offset += (self.state - self.offset) * (self.dt / self.smooth)
        return self.offset * min(1.0, distance_to_end / self.fade)

    def apply(self, point: np.ndarray, start: np.ndarray, target: np.ndarray) -> np.ndarray:
        """``point`` (the setpoint of a move from ``start`` to ``target``) with
        this tick's offset added."""
        ends = min(float(np.linalg.norm(target - point)), float(np.linalg.norm(point - start)))
        return point + self.step(ends)
