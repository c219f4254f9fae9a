"""How well the heads anticipate: scores of their predictions over an episode.

Pure functions over arrays (predictions and labels per stream; definitions in
docs/mirror.md): the early recognition curve of the partner's target,
and turn-end anticipation.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np


# ---- early recognition -----------------------------------------------------------------------

def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of the runs of True in a 1-D bool array."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.diff(m.astype(np.int8))
    return list(zip(np.nonzero(d == 1)[0].tolist(), np.nonzero(d == -1)[0].tolist()))


def held_from(ok: np.ndarray) -> int | None:
    """First index from which ``ok`` holds on every element to the end (None
    when the last one fails): where an answer is settled for good."""
    if not ok[-1]:
        return None
    misses = np.flatnonzero(~np.asarray(ok, bool))
    return int(misses[-1]) + 1 if misses.size else 0


def turn_goals(partner_target: np.ndarray, partner_segment: np.ndarray, partner_turn: np.ndarray,
               place_segment: int) -> np.ndarray:
    """Per tick, the target the partner *places at* in its current turn (-1
    outside its turns, and for a turn in which it places nothing).

    The per-tick label is what the partner is doing now, which at the start
    of a turn can still be the end of its previous job: an imitation leader
    is granted its turn while it retreats from the slot it just filled as
    follower, labelled with that slot. Early recognition asks for the goal
    of the turn, so it is scored against this label for every tick of the
    turn: naming the slot just left is not recognising the next one."""
    target = np.asarray(partner_target)
    placing = np.asarray(partner_segment) == place_segment
    goals = np.full(target.shape, -1, np.int64)
    for s, e in runs(partner_turn):
        placed = target[s:e][placing[s:e] & (target[s:e] >= 0)]
        if placed.size:
            goals[s:e] = int(placed[-1])
    return goals


def early_recognition(pred: Sequence[np.ndarray], true: Sequence[np.ndarray],
                      partner_turn: Sequence[np.ndarray], *, bins: int = 10) -> dict:
    """Target accuracy against the fraction of the partner's turn observed so far.

    Per sequence and per partner turn [s, e): tick t has observed fraction
    f = (t - s + 1) / (e - s); bin b covers f in ((b-1)/bins, b/bins]. Ticks
    whose true label is negative are skipped. ``at_half`` = accuracy over all
    ticks with f <= 0.5 (the headline ``early_recognition_at_half``).
    """
    hits = np.zeros(bins)
    counts = np.zeros(bins)
    half = [0, 0]
    for p, y, turn in zip(pred, true, partner_turn):
        p, y = np.asarray(p), np.asarray(y)
        for s, e in runs(turn):
            t = np.arange(s, e)
            f = (t - s + 1) / (e - s)
            ok = y[s:e] >= 0
            b = np.clip(np.ceil(f * bins - 1e-9).astype(int) - 1, 0, bins - 1)
            correct = (p[s:e] == y[s:e]) & ok
            np.add.at(hits, b[ok], correct[ok])
            np.add.at(counts, b[ok], 1)
            h = ok & (f <= 0.5 + 1e-9)
            half[0] += int(correct[h].sum())
            half[1] += int(h.sum())
    curve = [float(h / c) if c else float("nan") for h, c in zip(hits, counts)]
    return {"bins": [round((i + 1) / bins, 4) for i in range(bins)], "accuracy": curve,
            "ticks": counts.astype(int).tolist(), "at_half": float(half[0] / half[1]) if half[1] else float("nan")}


def recognition_leads(pred: Sequence[np.ndarray], goals: Sequence[np.ndarray],
                      partner_turn: Sequence[np.ndarray], hz: float) -> list[float]:
    """Per partner turn with a goal (:func:`turn_goals`): how many seconds
    before the turn ends the prediction names the goal and keeps naming it
    on every tick to the end (0 if the last tick misses). The whole turn's
    length for an observer right from its first tick. Turns in the order of
    the sequences, so two observers' leads pair up turn by turn."""
    leads: list[float] = []
    for p, g, turn in zip(pred, goals, partner_turn):
        p, g = np.asarray(p), np.asarray(g)
        for s, e in runs(turn):
            if g[s] < 0:
                continue
            first = held_from(p[s:e] == g[s])
            leads.append(0.0 if first is None else float((e - s - first) / hz))
    return leads


# ---- turn-end anticipation -------------------------------------------------------------------

def turn_end_anticipation(pred: Sequence[np.ndarray], true: Sequence[np.ndarray], *,
                          tolerance: float = 0.5) -> dict:
    """How well "seconds until the partner's turn ends" is predicted.

    ``mae_s``: mean |pred - true| over ticks with a finite label;
    ``mae_last_2s_s``: the same over ticks with true <= 2 s;
    ``lead_time_s``: per partner turn (run of finite labels), the true remaining
    time at the first tick from which |error| stays <= ``tolerance`` until the
    turn ends (0 if the last tick misses), averaged over turns: how long in
    advance the end is anticipated correctly.
    """
    errs, late, leads = [], [], []
    for p, y in zip(pred, true):
        p, y = np.asarray(p, np.float64), np.asarray(y, np.float64)
        fin = np.isfinite(y)
        e = np.abs(p - y)
        errs.append(e[fin])
        late.append(e[fin & (y <= 2.0)])
        for s, t in runs(fin):
            first = held_from(e[s:t] <= tolerance)
            leads.append(0.0 if first is None else float(y[s + first]))
    errs = np.concatenate(errs) if errs else np.zeros(0)
    late = np.concatenate(late) if late else np.zeros(0)
    return {"mae_s": float(errs.mean()) if errs.size else float("nan"),
            "mae_last_2s_s": float(late.mean()) if late.size else float("nan"),
            "lead_time_s": float(np.mean(leads)) if leads else float("nan"),
            "tolerance_s": tolerance, "turns": len(leads)}
