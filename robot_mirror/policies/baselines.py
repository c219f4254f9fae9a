"""``policy: constant`` and ``policy: heuristic``: the baselines a mirror network must beat.

Both drive the task's scripted expert and differ only in the belief they
hand its motion layer (the same two hooks :class:`MirrorPolicy` fills):

* tower — ``turn_end_predictor(obs)``, the predicted seconds until the
  partner's turn ends, which decides when to fetch the next block ahead;
* imitation — ``slot_source(obs)``, the slot the follower holds its block
  over during the leader's turn and places it in at the grant.

``constant`` (the best belief that ignores the partner):

* tower: the partner's turn ends now (0 s), i.e. always fetch ahead. The
  reactive ``expert`` is the other constant (never fetch ahead: +inf);
* imitation: slot ``(K - 1) // 2``, the slot nearest the middle of the row
  (slot 1 of 4, lateral offset -0.09 m; with an even K the two middle slots
  are equally near and the lower index is taken). Every slot is equally
  likely, so no constant does better on success; the middle one is the
  shortest correction when the belief is wrong.

``heuristic`` (the best rule on public information only — the turn state,
the clock, the last seen partner tool position — with no learning):

* tower: :class:`TurnClock`, the partner's expected remaining turn time =
  mean duration of its previous turns in this episode (``TURN_PRIOR`` s
  before the first) minus the time elapsed in its current turn;
* imitation: :class:`NearestSeenSlot`, the slot nearest to the partner's last
  seen tool position (``seen_partner_ee_pose``, taken back from the
  observer's base frame to the world and mirrored to this side with the
  geometry the task uses), updated every tick of the partner's turn.
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from robot_mirror.common.commands import ArmCommand
from robot_mirror.geometry import Frame
from robot_mirror.policies.builtin import make_expert
from robot_mirror.policies.imitation_expert import mirrored_slot
from robot_mirror.policies.registry import PolicyContext, PolicyEntry, register_policy

# s: the reactive expert's mean turn duration on launch/tower.yaml
# (docs/results/expert_success.json, 50 seeds: 6.51 s).
TURN_PRIOR = 6.5


def partners_turn(obs: dict[str, Any]) -> bool:
    """The public turn state says the partner holds the turn."""
    return bool(obs["holder"]) and not obs["my_turn"]


class ConstantSlot:
    """Always the slot nearest the middle of the row."""

    name = "constant"

    def reset(self) -> None:
        pass

    def observe(self, obs: dict[str, Any]) -> None:
        pass

    def __call__(self, obs: dict[str, Any]) -> int:
        return (len(obs["slots"]) - 1) // 2


class NearestSeenSlot:
    """The slot mirroring the partner's last seen tool position, updated on
    every tick of the partner's turn and kept after it."""

    name = "heuristic"

    def __init__(self, base_frame: Frame) -> None:
        self.frame = base_frame
        self.reset()

    def reset(self) -> None:
        self.slot = -1

    def observe(self, obs: dict[str, Any]) -> None:
        if partners_turn(obs):
            tool = self.frame.points_to_world(np.asarray(obs["seen_partner_ee_pose"], float)[:3])
            self.slot = mirrored_slot(obs, tool)

    def __call__(self, obs: dict[str, Any]) -> int:
        return self.slot


class TurnClock:
    """Seconds until the partner's turn ends, from the public turn state:
    its mean turn duration so far in the episode minus its elapsed time."""

    name = "heuristic"

    def __init__(self, prior: float = TURN_PRIOR) -> None:
        self.prior = float(prior)
        self.reset()

    def reset(self) -> None:
        self.durations: list[float] = []
        self.started: float | None = None

    def observe(self, obs: dict[str, Any]) -> None:
        t = float(obs["t"])
        if partners_turn(obs):
            if self.started is None:
                self.started = t
        elif self.started is not None:
            self.durations.append(t - self.started)
            self.started = None

    def __call__(self, obs: dict[str, Any]) -> float | None:
        if self.started is None:
            return None
        expected = statistics.fmean(self.durations) if self.durations else self.prior
        return max(0.0, expected - (float(obs["t"]) - self.started))


class BeliefExpert:
    """The task's scripted expert with a belief ``source`` that sees every
    observation before the expert acts (``source.observe``)."""

    def __init__(self, expert: Any, source: Any) -> None:
        self.expert = expert
        self.source = source

    def reset(self) -> None:
        self.source.reset()
        self.expert.reset()

    def act(self, obs: dict[str, Any]) -> ArmCommand:
        self.source.observe(obs)
        return self.expert.act(obs)

    def labels(self) -> tuple[str, int, int]:
        return self.expert.labels()

    def time_to_release(self) -> float | None:
        return self.expert.time_to_release()


def _with_source(ctx: PolicyContext, source: Any) -> BeliefExpert:
    if ctx.scenario.task.kind == "imitation":
        return BeliefExpert(make_expert(ctx, slot_source=source), source)
    return BeliefExpert(make_expert(ctx, turn_end_predictor=source), source)


class _AlwaysNow:
    """Tower constant: the partner's turn ends now (always fetch ahead)."""

    name = "constant"

    def reset(self) -> None:
        pass

    def observe(self, obs: dict[str, Any]) -> None:
        pass

    def __call__(self, obs: dict[str, Any]) -> float:
        return 0.0


def _constant(ctx: PolicyContext) -> BeliefExpert:
    return _with_source(ctx, ConstantSlot() if ctx.scenario.task.kind == "imitation" else _AlwaysNow())


def _heuristic(ctx: PolicyContext) -> BeliefExpert:
    if ctx.scenario.task.kind == "imitation":
        return _with_source(ctx, NearestSeenSlot(ctx.spec.base_frame()))
    return _with_source(ctx, TurnClock())


register_policy("constant", PolicyEntry(_constant, "baseline: the expert with a constant belief (tower: partner's "
                                                   "turn ends now; imitation: the middle slot (K-1)//2)"))
register_policy("heuristic", PolicyEntry(_heuristic, "baseline: the expert with a public-information belief "
                                                     "(tower: mean partner turn minus elapsed; imitation: slot "
                                                     "nearest the last seen partner tool)"))
