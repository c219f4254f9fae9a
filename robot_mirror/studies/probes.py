"""Is an action coded the same way when done and when seen? Measures on core states.

Pure functions over arrays (core states and labels; definitions and formulas
in docs/mirror.md): a linear probe trained in one condition (executing) and
tested in the other (observing); the per-unit tuning correlation across
actions, executing vs observing, with its permutation nulls; and Wyrick's
cross-condition mirror index (CMNI), which only asks that a unit respond in
both conditions.
"""

from __future__ import annotations

import copy
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


def transfer_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, *,
                   also: tuple[np.ndarray, np.ndarray] | None = None, max_samples: int = 20000, seed: int = 0,
                   l2: float = 1e-3) -> dict:
    """A linear probe fitted in one condition and scored in another, as balanced
    accuracy (mean per-class recall over the classes present in the test set).
    ``probe_self_to_obs`` fits on states while executing (own labels) and tests
    on states while observing (the partner's labels). ``chance`` is 1 / the
    number of test classes: what a constant, or any answer independent of the
    state, scores in balanced accuracy. Negative labels are ignored.
    ``also``: a second test set (x, y) scored by the same fitted probe, as
    ``also_balanced_accuracy`` (subsampled as if it were the only one)."""
    rng = np.random.default_rng(seed)
    train_y = np.asarray(train_y, np.int64)
    kt = train_y >= 0
    tx, ty = _subsample(np.asarray(train_x)[kt], train_y[kt], max_samples, rng)
    tests = {"": (test_x, test_y), **({"also_": also} if also is not None else {})}
    drawn = {k: _labelled(x, y, max_samples, copy.deepcopy(rng)) for k, (x, y) in tests.items()}
    sx, sy = drawn[""]
    classes = np.unique(sy)
    out = {"n_train": int(len(ty)), "n_test": int(len(sy)), "classes": int(classes.size),
           "chance": float(1.0 / classes.size) if classes.size else float("nan")}
    if len(ty) < 2 or np.unique(ty).size < 2:
        return {**out, **{f"{k}balanced_accuracy": float("nan") for k in tests}}
    n_classes = int(max([ty.max(), *(y.max() for _, y in drawn.values() if len(y))]) + 1)
    probe = fit_linear_probe(tx, ty, n_classes, l2=l2)
    for k, (x, y) in drawn.items():
        out[f"{k}balanced_accuracy"] = balanced_accuracy(probe.predict(x), y) if len(y) else float("nan")
    return out


def _labelled(x: np.ndarray, y: np.ndarray, n: int, rng: np.random.Generator):
    """The rows with a label (>= 0), subsampled to at most ``n``."""
    y = np.asarray(y, np.int64)
    keep = y >= 0
    return _subsample(np.asarray(x)[keep], y[keep], n, rng)


# ---- tuning correlation (the classic mirror-neuron criterion) --------------------------------

def class_means(x: np.ndarray, y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """(C, H) mean state per class (rows of classes absent from ``y`` are NaN).
    Sort-and-reduce: O(N H), so a thousand permutations stay cheap."""
    x, y = np.asarray(x, np.float64), np.asarray(y)
    out = np.full((len(classes), x.shape[1]), np.nan)
    keep = np.isin(y, classes)
    if not keep.any():
        return out
    y, x = y[keep], x[keep]
    order = np.argsort(y, kind="stable")
    ys = y[order]
    starts = np.flatnonzero(np.r_[True, ys[1:] != ys[:-1]])
    sums = np.add.reduceat(x[order], starts, axis=0)
    counts = np.diff(np.r_[starts, len(ys)])
    rows = np.searchsorted(classes, ys[starts])
    out[rows] = sums / counts[:, None]
    return out


def unit_correlations(tuning_self: np.ndarray, tuning_obs: np.ndarray) -> np.ndarray:
    """Per unit, the Pearson correlation across actions of its executing and
    observing tuning curves ((C, H) each); NaN for a unit flat in either."""
    a = tuning_self - tuning_self.mean(0)
    b = tuning_obs - tuning_obs.mean(0)
    den = np.sqrt((a ** 2).sum(0) * (b ** 2).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(0) / den
    return np.where(den > 1e-12, r, np.nan)


def tuning_index(self_x, self_y, obs_x, obs_y) -> tuple[float, np.ndarray, np.ndarray]:
    """``mirror_index_corr``: the mean over units of the correlation between a
    unit's tuning to actions while executing and while observing. Actions are
    the classes present in both conditions (negative labels ignored). Returns
    (index, per-unit r, classes)."""
    self_y, obs_y = np.asarray(self_y), np.asarray(obs_y)
    classes = np.intersect1d(np.unique(self_y[self_y >= 0]), np.unique(obs_y[obs_y >= 0]))
    if classes.size < 3:
        return float("nan"), np.full(np.asarray(self_x).shape[1], np.nan), classes
    r = unit_correlations(class_means(self_x, self_y, classes), class_means(obs_x, obs_y, classes))
    return float(np.nanmean(r)) if np.isfinite(r).any() else float("nan"), r, classes


def tuning_nulls(self_x, self_y, obs_x, obs_y, episode_of_obs: np.ndarray, *, permutations: int = 1000,
                 seed: int = 0) -> dict:
    """Permutation p-values of ``mirror_index_corr``.

    - scrambled actions: which observed action goes with which executed action
      is permuted (the observing tuning curves' columns), ``permutations`` times;
    - shuffled partners: the observed states are paired with the labels of a
      circularly shifted timeline (per episode, a random shift), which keeps
      every statistic of both but the moment-to-moment correspondence.

    p = (1 + #{null >= observed}) / (1 + permutations)."""
    rng = np.random.default_rng(seed)
    index, _, classes = tuning_index(self_x, self_y, obs_x, obs_y)
    out = {"permutations": permutations}
    if not np.isfinite(index):
        return {**out, "p_scrambled": float("nan"), "p_shuffled": float("nan"),
                "null_scrambled_mean": float("nan"), "null_shuffled_mean": float("nan")}
    t_self = class_means(self_x, self_y, classes)
    t_obs = class_means(obs_x, obs_y, classes)
    scrambled = np.array([np.nanmean(unit_correlations(t_self, t_obs[rng.permutation(classes.size)]))
                          for _ in range(permutations)])
    obs_y = np.asarray(obs_y)
    episodes = np.asarray(episode_of_obs)
    groups = [np.nonzero(episodes == e)[0] for e in np.unique(episodes)]
    shuffled = []
    for _ in range(permutations):
        y = obs_y.copy()
        for idx in groups:
            y[idx] = np.roll(obs_y[idx], int(rng.integers(1, max(2, idx.size))))
        t = class_means(obs_x, y, classes)
        shuffled.append(np.nanmean(unit_correlations(t_self, t)) if np.isfinite(t).all() else np.nan)
    shuffled = np.asarray(shuffled)
    return {**out, "p_scrambled": float((1 + np.sum(scrambled >= index)) / (1 + permutations)),
            "p_shuffled": float((1 + np.sum(np.nan_to_num(shuffled, nan=-np.inf) >= index)) / (1 + permutations)),
            "null_scrambled_mean": float(np.mean(scrambled)), "null_shuffled_mean": float(np.nanmean(shuffled))}


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
