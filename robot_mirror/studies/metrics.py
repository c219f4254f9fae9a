"""Offline metrics of a mirror network (definitions and formulas in docs/mirror.md).

The first part is pure functions over arrays (core states, labels,
predictions): a linear probe across conditions, the mirror index, the early
recognition curve, turn-end anticipation and the motor error. The second part
runs a network over demonstration streams and applies them, with the controls
(an untrained network of the same architecture, shuffled partners).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

# ---- linear probe ----------------------------------------------------------------------------


@dataclass
class LinearProbe:
    """Multinomial logistic regression on standardised features."""

    weight: np.ndarray   # (D, C)
    bias: np.ndarray     # (C,)
    mean: np.ndarray     # (D,)
    std: np.ndarray      # (D,)

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, np.float64) - self.mean) / self.std
        return np.argmax(z @ self.weight + self.bias, axis=1)


def fit_linear_probe(x: np.ndarray, y: np.ndarray, n_classes: int, *, l2: float = 1e-3,
                     iterations: int = 100) -> LinearProbe:
    """Fit softmax regression (L-BFGS, L2 ``l2`` on the weights) to ``x`` (N, D), ``y`` (N,)."""
    x = np.asarray(x, np.float64)
    mean = x.mean(0)
    std = x.std(0)
    std = np.where(std > 1e-8, std, 1.0)
    xt = torch.from_numpy((x - mean) / std)
    yt = torch.from_numpy(np.asarray(y, np.int64))
    w = torch.zeros(x.shape[1], n_classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=iterations, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ w + b, yt) + l2 * (w ** 2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return LinearProbe(w.detach().numpy(), b.detach().numpy(), mean, std)


def accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    y = np.asarray(y)
    return float(np.mean(np.asarray(pred) == y)) if y.size else float("nan")


def balanced_accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    """Mean per-class recall over the classes present in ``y``."""
    y, pred = np.asarray(y), np.asarray(pred)
    classes = np.unique(y)
    if classes.size == 0:
        return float("nan")
    return float(np.mean([np.mean(pred[y == c] == c) for c in classes]))


def chance(y: np.ndarray) -> float:
    """Accuracy of always answering the most frequent class."""
    y = np.asarray(y)
    if y.size == 0:
        return float("nan")
    return float(np.bincount(y).max() / y.size)


def _subsample(x: np.ndarray, y: np.ndarray, n: int, rng: np.random.Generator):
    if len(y) > n:
        idx = rng.choice(len(y), n, replace=False)
        return x[idx], y[idx]
    return x, y


def cross_condition_probe(self_x: np.ndarray, self_y: np.ndarray, obs_x: np.ndarray, obs_y: np.ndarray,
                          n_classes: Optional[int] = None, *, max_samples: int = 20000, seed: int = 0,
                          l2: float = 1e-3) -> dict:
    """Decode a label linearly from core states in one condition, test in the other.

    ``self_to_obs``: trained on states while executing (self stream, own labels),
    tested on states while observing (observed stream, partner's labels);
    ``obs_to_self`` the reverse; ``self_to_self`` / ``obs_to_obs`` within a
    condition on a random half split (the ceiling to compare with). ``balanced_*``
    are mean per-class recalls; ``chance_*`` the majority-class rate of the test set.
    Samples with a negative label are ignored.
    """
    rng = np.random.default_rng(seed)
    self_x, self_y = np.asarray(self_x), np.asarray(self_y).astype(np.int64)
    obs_x, obs_y = np.asarray(obs_x), np.asarray(obs_y).astype(np.int64)
    ks, ko = self_y >= 0, obs_y >= 0
    sx, sy = _subsample(self_x[ks], self_y[ks], max_samples, rng)
    ox, oy = _subsample(obs_x[ko], obs_y[ko], max_samples, rng)
    if n_classes is None:
        n_classes = int(max(sy.max(initial=-1), oy.max(initial=-1)) + 1)
    out: dict = {"n_self": int(len(sy)), "n_obs": int(len(oy))}
    if len(sy) < 2 or len(oy) < 2 or n_classes < 2:
        for k in ("self_to_obs", "obs_to_self", "self_to_self", "obs_to_obs"):
            out[k] = out["balanced_" + k] = float("nan")
        out["chance_self"], out["chance_obs"] = chance(sy), chance(oy)
        return out
    p_self = fit_linear_probe(sx, sy, n_classes, l2=l2)
    p_obs = fit_linear_probe(ox, oy, n_classes, l2=l2)
    for name, probe, x, y in (("self_to_obs", p_self, ox, oy), ("obs_to_self", p_obs, sx, sy)):
        pred = probe.predict(x)
        out[name], out["balanced_" + name] = accuracy(pred, y), balanced_accuracy(pred, y)
    for name, x, y in (("self_to_self", sx, sy), ("obs_to_obs", ox, oy)):
        idx = rng.permutation(len(y))
        a, b = idx[: len(y) // 2], idx[len(y) // 2:]
        pred = fit_linear_probe(x[a], y[a], n_classes, l2=l2).predict(x[b])
        out[name], out["balanced_" + name] = accuracy(pred, y[b]), balanced_accuracy(pred, y[b])
    out["chance_self"], out["chance_obs"] = chance(sy), chance(oy)
    return out


# ---- mirror index ----------------------------------------------------------------------------

def mirror_index(self_x: np.ndarray, self_y: np.ndarray, obs_x: np.ndarray, obs_y: np.ndarray, *,
                 baseline: Optional[int] = 0, conditions: Optional[Sequence[int]] = None) -> dict:
    """Cross-condition mirror index after Wyrick (arXiv:2511.01885, CMNI).

    For unit u and action condition c::

        d_self(u,c)  = (mean_{t: self_y=c} x_self[t,u]  - base_self(u)) / sd(u)
        d_other(u,c) = (mean_{t: obs_y=c}  x_obs[t,u]   - base_obs(u))  / sd(u)
        s(u,c)       = min(d_self, d_other) if d_self > 0 and d_other > 0 else 0

    where ``base_*`` is the mean in the ``baseline`` condition of that stream
    (e.g. "wait"; ``None``: the unit's mean over the stream) and ``sd(u)`` the
    unit's standard deviation over both streams. ``cmni`` = mean of s over units
    and conditions (conditions: labels other than the baseline present in both
    streams). ``cmni_signed`` also counts units suppressed in both
    (min(|d_self|, |d_other|) when the signs agree); ``mirror_units`` = the
    fraction of units with s > 0 in at least one condition.
    """
    self_x, obs_x = np.asarray(self_x, np.float64), np.asarray(obs_x, np.float64)
    self_y, obs_y = np.asarray(self_y), np.asarray(obs_y)
    sd = np.concatenate([self_x, obs_x]).std(0)
    sd = np.where(sd > 1e-8, sd, np.inf)  # a constant unit has no modulation

    def base(x, y):
        if baseline is not None and np.any(y == baseline):
            return x[y == baseline].mean(0)
        return x.mean(0)

    b_self, b_obs = base(self_x, self_y), base(obs_x, obs_y)
    if conditions is None:
        conditions = sorted(set(np.unique(self_y[self_y >= 0]).tolist())
                            & set(np.unique(obs_y[obs_y >= 0]).tolist()) - {baseline})
    per, signed, any_mirror = {}, [], np.zeros(self_x.shape[1], bool)
    for c in conditions:
        if not (np.any(self_y == c) and np.any(obs_y == c)):
            continue
        ds = (self_x[self_y == c].mean(0) - b_self) / sd
        do = (obs_x[obs_y == c].mean(0) - b_obs) / sd
        s = np.where((ds > 0) & (do > 0), np.minimum(ds, do), 0.0)
        per[int(c)] = float(s.mean())
        any_mirror |= s > 0
        signed.append(np.where(np.sign(ds) == np.sign(do), np.minimum(np.abs(ds), np.abs(do)), 0.0).mean())
    if not per:
        return {"cmni": 0.0, "cmni_signed": 0.0, "mirror_units": 0.0, "per_condition": {}}
    return {"cmni": float(np.mean(list(per.values()))), "cmni_signed": float(np.mean(signed)),
            "mirror_units": float(any_mirror.mean()), "per_condition": per}


# ---- early recognition -----------------------------------------------------------------------

def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of the runs of True in a 1-D bool array."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.diff(m.astype(np.int8))
    return list(zip(np.nonzero(d == 1)[0].tolist(), np.nonzero(d == -1)[0].tolist()))


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
            ok = e[s:t] <= tolerance
            if not ok[-1]:
                leads.append(0.0)
                continue
            bad = np.nonzero(~ok)[0]
            first = bad[-1] + 1 if bad.size else 0
            leads.append(float(y[s + first]))
    errs = np.concatenate(errs) if errs else np.zeros(0)
    late = np.concatenate(late) if late else np.zeros(0)
    return {"mae_s": float(errs.mean()) if errs.size else float("nan"),
            "mae_last_2s_s": float(late.mean()) if late.size else float("nan"),
            "lead_time_s": float(np.mean(leads)) if leads else float("nan"),
            "tolerance_s": tolerance, "turns": len(leads)}


# ---- motor head ------------------------------------------------------------------------------

def motor_error(pred_q: Sequence[np.ndarray], q: Sequence[np.ndarray], mask: Optional[Sequence[np.ndarray]] = None,
                ) -> dict:
    """Joint-space error of predicted own joint targets against the expert's.

    ``pred_q[i]`` (T, K, D) radians for t+1..t+K, ``q[i]`` (T, D) the recorded
    joints, ``mask[i]`` (T,) ticks to score (e.g. the arm's own turn). Reports
    the mean absolute error per horizon step and overall, the RMS error, and the
    same for the "hold" baseline that predicts q_t for every step ahead.
    """
    abs_k, hold_k, sq = [], [], []
    for i, (p, y) in enumerate(zip(pred_q, q)):
        p, y = np.asarray(p, np.float64), np.asarray(y, np.float64)
        T, K = p.shape[0], p.shape[1]
        m = np.ones(T, bool) if mask is None else np.asarray(mask[i], bool)
        for k in range(1, K + 1):
            valid = m.copy()
            valid[T - k:] = False
            if len(abs_k) < k:
                abs_k.append([]), hold_k.append([])
            if not valid.any():
                continue
            idx = np.nonzero(valid)[0]
            err = p[idx, k - 1] - y[idx + k]
            abs_k[k - 1].append(np.abs(err).ravel())
            sq.append((err ** 2).ravel())
            hold_k[k - 1].append(np.abs(y[idx] - y[idx + k]).ravel())
    per = [float(np.concatenate(a).mean()) if a else float("nan") for a in abs_k]
    hold = [float(np.concatenate(a).mean()) if a else float("nan") for a in hold_k]
    allsq = np.concatenate(sq) if sq else np.zeros(0)
    return {"mae_rad": float(np.nanmean(per)) if per else float("nan"), "mae_rad_per_step": per,
            "rmse_rad": float(np.sqrt(allsq.mean())) if allsq.size else float("nan"),
            "hold_baseline_mae_rad": float(np.nanmean(hold)) if hold else float("nan"),
            "hold_baseline_mae_rad_per_step": hold}


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
