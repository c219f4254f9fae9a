"""Offline metrics of a mirror network (definitions and formulas in docs/mirror.md).

Runs a network over demonstration streams (:func:`collect`) and applies the
measures of :mod:`robot_mirror.studies.probes` (cross-condition probe, mirror
index) and :mod:`robot_mirror.studies.head_scores` (early recognition,
turn-end anticipation, motor error), with the controls (an untrained network
of the same architecture, shuffled partners).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from robot_mirror.studies.head_scores import early_recognition, motor_error, turn_end_anticipation
from robot_mirror.studies.probes import accuracy, cross_condition_probe, mirror_index


# ---- running a network over streams ----------------------------------------------------------

@dataclass
class StreamRecord:
    """What a network produced over one stream (numpy, whole episode)."""

    self_states: np.ndarray     # (T, H)
    obs_states: np.ndarray      # (T, H)
    self_segment: np.ndarray    # (T,) argmax predictions
    self_target: np.ndarray
    obs_segment: np.ndarray
    obs_target: np.ndarray
    turn_end: np.ndarray        # (T,) seconds
    q_pred: np.ndarray          # (T, K, D) radians


def collect(model, streams) -> list[StreamRecord]:
    """Run ``model`` over whole streams from a zero state (as online)."""
    from robot_mirror.mirror.dataset import full_batch

    records = []
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for s in streams:
            b = full_batch(s, model.config.motor_horizon)
            out = model(s.robot_type, b["own"], b["seen"], b["target"])
            records.append(StreamRecord(
                self_states=out.self_states[0].numpy(), obs_states=out.obs_states[0].numpy(),
                self_segment=out.self_segment[0].argmax(-1).numpy(), self_target=out.self_target[0].argmax(-1).numpy(),
                obs_segment=out.obs_segment[0].argmax(-1).numpy(), obs_target=out.obs_target[0].argmax(-1).numpy(),
                turn_end=out.turn_end[0].numpy(), q_pred=model.denormalise_q(s.robot_type, out.motor[0]).numpy()))
    model.train(was_training)
    return records


def condition_data(streams, records, label: str = "segment") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """States and labels per condition: (self states, own labels) over all ticks,
    (observed states, partner's labels) over the ticks where the partner was seen."""
    sx, sy, ox, oy = [], [], [], []
    for s, r in zip(streams, records):
        sx.append(r.self_states)
        sy.append(getattr(s, label))
        ox.append(r.obs_states[s.observed])
        oy.append(getattr(s, "partner_" + label)[s.observed])
    return np.concatenate(sx), np.concatenate(sy), np.concatenate(ox), np.concatenate(oy)


def untrained_like(model, seed: int = 12345):
    """The same architecture and normalisation with random weights (a control)."""
    from robot_mirror.mirror.model import MirrorNet

    torch.manual_seed(seed)
    fresh = MirrorNet(model.config)
    buffers = {k: v for k, v in model.state_dict().items() if "norm" in k or k == "turn_scale"}
    fresh.load_state_dict(buffers, strict=False)
    return fresh


def shuffled_partner(streams, seed: int = 0) -> list:
    """Each stream's labels with the observations of the same robot in another episode
    (a derangement of the episodes; unchanged when there is only one episode)."""
    rng = np.random.default_rng(seed)
    episodes = sorted({s.episode for s in streams})
    if len(episodes) < 2:
        return list(streams)
    perm = list(episodes)
    while any(a == b for a, b in zip(perm, episodes)):
        perm = list(rng.permutation(episodes))
    donor = dict(zip(episodes, perm))
    by_key = {(s.episode, s.robot): s for s in streams}
    return [s.with_seen_from(by_key.get((donor[s.episode], s.robot), s)) for s in streams]


def mirror_metrics(streams, records, segments: Sequence[str], n_targets: int, *, seed: int = 0) -> dict:
    """Probes (segment and target) and the mirror index of one network's records."""
    baseline = list(segments).index("wait") if "wait" in segments else None
    seg = condition_data(streams, records, "segment")
    tgt = condition_data(streams, records, "target")
    return {
        "probe_segment": cross_condition_probe(*seg, len(segments), seed=seed),
        "probe_target": cross_condition_probe(*tgt, max(n_targets, 1), seed=seed),
        "mirror_index": mirror_index(*seg, baseline=baseline),
    }


def head_accuracy(streams, records) -> dict:
    def acc(pairs):
        p = np.concatenate([a for a, _ in pairs]) if pairs else np.zeros(0)
        y = np.concatenate([b for _, b in pairs]) if pairs else np.zeros(0)
        k = y >= 0
        return accuracy(p[k], y[k])

    return {
        "segment_self": acc([(r.self_segment, s.segment) for s, r in zip(streams, records)]),
        "target_self": acc([(r.self_target, s.target) for s, r in zip(streams, records)]),
        "segment_obs": acc([(r.obs_segment, s.partner_segment) for s, r in zip(streams, records)]),
        "target_obs": acc([(r.obs_target, s.partner_target) for s, r in zip(streams, records)]),
        "segment_obs_partner_turn": acc([(r.obs_segment[s.partner_turn], s.partner_segment[s.partner_turn])
                                         for s, r in zip(streams, records)]),
    }


def evaluate_model(model, streams, *, segments: Sequence[str], n_targets: int, controls: bool = True,
                   seed: int = 0) -> dict:
    """Every offline metric of ``model`` on ``streams`` (held-out episodes), plus
    the controls: an untrained network and shuffled partners."""
    records = collect(model, streams)
    out = {"streams": len(streams), "ticks": int(sum(s.ticks for s in streams)),
           "heads": head_accuracy(streams, records)}
    out.update(mirror_metrics(streams, records, segments, n_targets, seed=seed))
    er = early_recognition([r.obs_target for r in records], [s.partner_target for s in streams],
                           [s.partner_turn for s in streams])
    out["early_recognition"] = er
    out["early_recognition_at_half"] = er["at_half"]
    out["turn_end"] = turn_end_anticipation([r.turn_end for r in records], [s.turn_end for s in streams])
    out["motor"] = motor_error([r.q_pred for r in records], [s.q for s in streams], [s.my_turn for s in streams])
    if controls:
        out["controls"] = control_metrics(model, streams, segments=segments, n_targets=n_targets, seed=seed)
    return out


def _brief(m: dict) -> dict:
    return {"probe_segment_self_to_obs": m["probe_segment"]["self_to_obs"],
            "probe_segment_obs_to_self": m["probe_segment"]["obs_to_self"],
            "probe_target_self_to_obs": m["probe_target"]["self_to_obs"],
            "probe_target_obs_to_self": m["probe_target"]["obs_to_self"],
            "cmni": m["mirror_index"]["cmni"], "cmni_signed": m["mirror_index"]["cmni_signed"]}


def control_metrics(model, streams, *, segments: Sequence[str], n_targets: int, seed: int = 0) -> dict:
    """Probe accuracies and mirror index for the controls: ``untrained`` (same
    architecture, random init) and ``shuffled_partner`` (this network, observed
    streams taken from another episode while labels stay with the true partner;
    None with fewer than two episodes)."""
    fresh = untrained_like(model, seed=seed + 12345)
    out = {"untrained": _brief(mirror_metrics(streams, collect(fresh, streams), segments, n_targets, seed=seed))}
    if len({s.episode for s in streams}) < 2:
        out["shuffled_partner"] = None  # needs two episodes to swap
        return out
    shuffled = shuffled_partner(streams, seed=seed)
    out["shuffled_partner"] = _brief(mirror_metrics(shuffled, collect(model, shuffled), segments, n_targets,
                                                    seed=seed))
    return out


def compare_models(models: dict, streams, *, segments: Sequence[str], n_targets: int, seed: int = 0) -> dict:
    """Probe and mirror-index summary for several networks on the same streams,
    e.g. {"trained": m, "no_contrastive": m0, "untrained": untrained_like(m)}."""
    return {name: _brief(mirror_metrics(streams, collect(m, streams), segments, n_targets, seed=seed))
            for name, m in models.items()}
