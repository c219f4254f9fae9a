"""The best answers that need no network: public-information baselines.

Every figure credited to the mirror network is reported beside what a
heuristic gets from information any observer has (the turn state, the last
seen tool position, turn counting). Each heuristic here is *fitted* on the
training streams (a lookup table, centroids, a mean duration) and then
applied to held-out streams tick by tick, causally: at tick t it uses
nothing after t. Where several heuristics answer the same question, the
metric reports the best of them on the test data (generous to the baseline).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robot_mirror.studies.head_scores import runs, turn_goals

TOOL = slice(15, 18)  # tool position inside a body description (features.body_features)


def turn_index(stream) -> np.ndarray:
    """Per tick, how many turns (either arm's) have started so far, minus one:
    the public turn count (-1 before the first turn)."""
    starts = np.zeros(stream.ticks, np.int64)
    for turn in (stream.my_turn, stream.partner_turn):
        for s, _ in runs(np.asarray(turn, bool)):
            starts[s] += 1
    return np.cumsum(starts) - 1


@dataclass
class TurnCountTarget:
    """Target = the most common target the partner placed at in that turn
    number in training (:func:`~robot_mirror.studies.head_scores.turn_goals`)."""

    table: dict[int, int]

    @classmethod
    def fit(cls, streams, place_segment: int) -> "TurnCountTarget":
        votes: dict[int, list[int]] = {}
        for s in streams:
            idx = turn_index(s)
            goals = turn_goals(s.partner_target, s.partner_segment, s.partner_turn, place_segment)
            ok = goals >= 0
            for i, y in zip(idx[ok], goals[ok]):
                votes.setdefault(int(i), []).append(int(y))
        return cls({i: int(np.bincount(v).argmax()) for i, v in votes.items()})

    def predict(self, stream) -> np.ndarray:
        return np.array([self.table.get(int(i), 0) for i in turn_index(stream)], np.int64)


@dataclass
class SeenToolTarget:
    """Target = the target whose placement spot (as seen) is nearest the last
    seen partner tool position. Spots are the mean seen tool position while
    the partner placed at each target in training."""

    centroids: np.ndarray  # (n_targets, 3), NaN where never seen

    @classmethod
    def fit(cls, streams, n_targets: int, place_segment: int) -> "SeenToolTarget":
        sums, counts = np.zeros((n_targets, 3)), np.zeros(n_targets)
        for s in streams:
            ok = s.observed & (s.partner_segment == place_segment) & (s.partner_target >= 0)
            for y in np.unique(s.partner_target[ok]):
                pick = ok & (s.partner_target == y)
                sums[y] += s.seen[pick, TOOL].sum(0)
                counts[y] += pick.sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            return cls(sums / counts[:, None])

    def predict(self, stream) -> np.ndarray:
        tool = np.asarray(stream.seen[:, TOOL], np.float64)
        d = np.linalg.norm(tool[:, None, :] - self.centroids[None], axis=-1)
        d = np.where(np.isfinite(d), d, np.inf)
        return np.argmin(d, axis=1).astype(np.int64)


@dataclass
class MeanTurnEnd:
    """Seconds to the partner's turn end = the mean partner turn length in
    training minus the time it has held the turn so far (never below 0)."""

    mean_s: float
    hz: float

    @classmethod
    def fit(cls, streams, hz: float) -> "MeanTurnEnd":
        lengths = [(e - s) / hz for st in streams for s, e in runs(st.partner_turn)]
        return cls(float(np.mean(lengths)) if lengths else 0.0, hz)

    def predict(self, stream) -> np.ndarray:
        out = np.full(stream.ticks, np.nan)
        for s, e in runs(stream.partner_turn):
            out[s:e] = np.maximum(0.0, self.mean_s - np.arange(e - s) / self.hz)
        return out


def best_constant_turn_end(streams) -> float:
    """The constant with the least absolute error on training labels: their median."""
    te = np.concatenate([s.turn_end[np.isfinite(s.turn_end)] for s in streams] or [np.zeros(1)])
    return float(np.median(te)) if te.size else 0.0
