"""Is an action coded the same way when done and when seen? Measures on core states.

Pure functions over arrays (core states and labels; definitions and formulas
in docs/mirror.md): a linear probe trained in one condition (executing) and
tested in the other (observing), and the cross-condition mirror index.
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
