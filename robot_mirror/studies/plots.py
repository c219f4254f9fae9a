"""The evaluation's figures (PNG, written by ``robot-mirror evaluate``).

Per task the early recognition curve, the tower's handoff gaps per policy,
and a PCA of core states while executing and while observing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def plot_all(out: Path, results: dict[str, Any], pca_data: tuple | None) -> list[str]:
    """Every figure of ``results`` (task -> evaluation result) into ``out``; returns the file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    for task, r in results.items():
        made.append(plot_early_recognition(plt, out, task, r["offline"]["early_recognition"]))
        fl = r.get("online", {})
        if task == "tower" and fl:
            made.append(plot_handoff_gaps(plt, out, fl))
    if pca_data is not None:
        made.append(plot_core_pca(plt, out, *pca_data))
    return made


def _save(plt, fig, out: Path, name: str) -> str:
    fig.tight_layout()
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return name


def plot_early_recognition(plt, out: Path, task: str, er: dict[str, Any]) -> str:
    """Target accuracy against the fraction of the partner's turn observed."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(er["bins"], er["accuracy"], marker="o", label="trained")
    if er.get("chance") is not None:
        ax.axhline(er["chance"], color="grey", ls="--", label="chance")
    ax.set_xlabel("fraction of the partner's turn observed")
    ax.set_ylabel("target accuracy")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"early recognition ({task})")
    ax.legend()
    return _save(plt, fig, out, f"early_recognition_{task}.png")


def plot_handoff_gaps(plt, out: Path, online: dict[str, Any]) -> str:
    """Histogram of the tower's handoff gaps, one per online policy."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, run in online.items():
        if run.get("handoff_gaps"):
            ax.hist(run["handoff_gaps"], bins=20, alpha=0.5, label=name)
    ax.set_xlabel("handoff gap (s)")
    ax.set_ylabel("count")
    ax.set_title("tower handoff gaps")
    ax.legend()
    return _save(plt, fig, out, "handoff_gaps.png")


def plot_core_pca(plt, out: Path, states: np.ndarray, labels: np.ndarray, observed: np.ndarray,
                  segments: list[str]) -> str:
    """Core states on their first two principal components, by segment, executed (o) or observed (x)."""
    centred = states - states.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ vt[:2].T
    fig, ax = plt.subplots(figsize=(6, 5))
    cmap = plt.get_cmap("tab10")
    for k, name in enumerate(segments):
        for obs_flag, marker in ((False, "o"), (True, "x")):
            sel = (labels == k) & (observed == obs_flag)
            if sel.any():
                ax.scatter(xy[sel, 0], xy[sel, 1], s=6, marker=marker, color=cmap(k),
                           label=f"{name} ({'observed' if obs_flag else 'executed'})")
    ax.set_title("core states, PCA (o executed, x observed)")
    ax.legend(fontsize=6, markerscale=2, ncol=2)
    return _save(plt, fig, out, "core_pca.png")
