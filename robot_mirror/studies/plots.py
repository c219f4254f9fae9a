"""The evaluation's figures (PNG, written by ``robot-mirror evaluate``).

Per task and perception level: the early recognition curve of the partner's
target beside the public heuristic, and the online headline metric of every
policy variant with its 95% CI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_all(out: Path, tasks: dict[str, Any]) -> list[str]:
    """Every figure of ``tasks`` (task -> level -> result) into ``out``; returns the file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    for task, result in tasks.items():
        for level in ("default", "stress"):
            r = result.get(level)
            if not r:
                continue
            made.append(plot_early_recognition(plt, out, task, level, r))
            if r.get("baselines"):
                made.append(plot_baselines(plt, out, task, level, r["baselines"]))
    return made


def _save(plt, fig, out: Path, name: str) -> str:
    fig.tight_layout()
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    return name


def plot_early_recognition(plt, out: Path, task: str, level: str, r: dict[str, Any]) -> str:
    """Partner-target accuracy against the fraction of its turn observed."""
    er = r["early_recognition_curve"]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(er["bins"], er["accuracy"], marker="o", label="mirror (own-action head, observed stream)")
    ax.axhline(r["early_recognition_at_half_public_heuristic"], color="tab:orange", ls="--",
               label="public heuristic, first half")
    ax.set_xlabel("fraction of the partner's turn observed")
    ax.set_ylabel("target accuracy")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"early recognition ({task}, {level} perception)")
    ax.legend(fontsize=7)
    return _save(plt, fig, out, f"early_recognition_{task}_{level}.png")


def plot_baselines(plt, out: Path, task: str, level: str, b: dict[str, Any]) -> str:
    """The headline metric per variant, mean and 95% CI."""
    heads = {n: v["headline"] for n, v in b["variants"].items() if v["headline"]["mean"] is not None}
    names = list(heads)
    means = [heads[n]["mean"] for n in names]
    lo = [heads[n]["mean"] - heads[n]["ci95"][0] for n in names]
    hi = [heads[n]["ci95"][1] - heads[n]["mean"] for n in names]
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    ax.bar(names, means, yerr=[lo, hi], capsize=4, color="tab:blue")
    ax.set_ylabel(f"{b['headline']} ({b['better']} is better)")
    ax.set_title(f"{task}, {level} perception ({len(b['seeds'])} episodes)")
    ax.tick_params(axis="x", labelsize=7)
    return _save(plt, fig, out, f"baselines_{task}_{level}.png")
