"""Offline metrics of a mirror network, each beside the null it must beat
(definitions and formulas in docs/mirror.md, "Metrics").

A network runs over demonstration streams (:func:`collect`); the measures of
:mod:`robot_mirror.studies.probes` and :mod:`robot_mirror.studies.head_scores`
are applied to its core states and heads, and the public-information
heuristics of :mod:`robot_mirror.studies.heuristics` answer the same
questions. Actions are (segment, target) pairs over the ticks an arm moves
(``wait`` excluded, so "moving vs waiting" cannot carry a metric).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

RANDOM_LESIONS = 10    # random k-unit lesions averaged for the control


@dataclass
class StreamRecord:
    """What a network produced over one stream (numpy, whole episode)."""

    self_states: np.ndarray     # (T, H)
    obs_states: np.ndarray      # (T, H)
    self_segment: np.ndarray    # (T,) argmax of the heads
    self_target: np.ndarray
    obs_segment: np.ndarray
    obs_target: np.ndarray
    obs_turn_end: np.ndarray    # (T,) s


def collect(model, streams, lesion: Optional[torch.Tensor] = None) -> list[StreamRecord]:
    """Run ``model`` over whole streams from a zero state (as online), all
    streams in one padded batch; ``lesion`` silences units at every tick."""
    from robot_mirror.mirror.dataset import whole_streams

    if not streams:
        return []
    batch = whole_streams(streams)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        out = model(batch["own"], batch["seen"], lesion=lesion)
    model.train(was_training)
    records = []
    for i, s in enumerate(streams):
        n = s.ticks
        records.append(StreamRecord(
            self_states=out.self_states[i, :n].numpy(), obs_states=out.obs_states[i, :n].numpy(),
            self_segment=out.self_segment[i, :n].argmax(-1).numpy(), self_target=out.self_target[i, :n].argmax(-1).numpy(),
            obs_segment=out.obs_segment[i, :n].argmax(-1).numpy(), obs_target=out.obs_target[i, :n].argmax(-1).numpy(),
            obs_turn_end=out.obs_turn_end[i, :n].numpy()))
    return records


def action_labels(segment: np.ndarray, target: np.ndarray, n_targets: int) -> np.ndarray:
    """One integer per moving (segment, target) pair; -1 while waiting or without a target."""
    segment, target = np.asarray(segment), np.asarray(target)
    return np.where((segment > 0) & (target >= 0), segment * n_targets + target, -1)


def conditions(streams, records, n_targets: int) -> dict[str, np.ndarray]:
    """States and action labels per condition: executing (every tick of the self
    stream, own labels) and observing (ticks the partner was seen, its labels)."""
    sx = np.concatenate([r.self_states for r in records])
    sy = np.concatenate([action_labels(s.segment, s.target, n_targets) for s in streams])
    seen = [s.observed for s in streams]
    ox = np.concatenate([r.obs_states[m] for r, m in zip(records, seen)])
    oy = np.concatenate([action_labels(s.partner_segment, s.partner_target, n_targets)[m]
                         for s, m in zip(streams, seen)])
    episode = np.concatenate([np.full(int(m.sum()), s.episode * 2 + s.robot) for s, m in zip(streams, seen)])
    return {"self_x": sx, "self_y": sy, "obs_x": ox, "obs_y": oy, "obs_episode": episode}


def head_accuracy(streams, records, n_targets: int) -> dict[str, float]:
    """Own-action decoding (self stream) and partner recognition (observed
    stream) through the same heads, trained on the self stream only: the pair
    is right when segment and target both are; over moving ticks."""
    def acc(pred_s, pred_t, true_s, true_t, mask):
        y = action_labels(true_s, true_t, n_targets)
        m = (y >= 0) & mask
        return (np.asarray(pred_s)[m] * n_targets + np.asarray(pred_t)[m] == y[m])

    own = np.concatenate([acc(r.self_segment, r.self_target, s.segment, s.target, np.ones(s.ticks, bool))
                          for s, r in zip(streams, records)])
    obs = np.concatenate([acc(r.obs_segment, r.obs_target, s.partner_segment, s.partner_target, s.observed)
                          for s, r in zip(streams, records)])
    return {"own": float(own.mean()) if own.size else float("nan"),
            "partner": float(obs.mean()) if obs.size else float("nan")}


def heldout_recognition(streams, records, pairs: list[tuple[int, int]]) -> dict:
    """Recognition of (segment, target) pairs whose labels training never saw:
    the fraction of observed ticks of such a pair where both heads name it."""
    hits, total, own_hits, own_total = 0, 0, 0, 0
    for s, r in zip(streams, records):
        for seg, tgt in pairs:
            m = s.observed & (s.partner_segment == seg) & (s.partner_target == tgt)
            hits += int(((r.obs_segment == seg) & (r.obs_target == tgt))[m].sum())
            total += int(m.sum())
            o = (s.segment == seg) & (s.target == tgt)
            own_hits += int(((r.self_segment == seg) & (r.self_target == tgt))[o].sum())
            own_total += int(o.sum())
    return {"partner": hits / total if total else float("nan"), "own": own_hits / own_total if own_total
            else float("nan"), "ticks": total, "pairs": [list(p) for p in pairs]}
