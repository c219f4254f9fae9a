"""One network, many bodies: how well does it recognise an arm of another make?

For each pair of arms (a scenario plus ``--set`` overrides), demonstrations
are recorded with unseen seeds and split as in ``robot-mirror evaluate``
(even episodes fit the probes and the public heuristics, odd ones are
scored). Every scored stream is one *observer* watching one *partner*, so
one pair of arms of two makes gives two cells of the table, one per
direction, keyed ``"OBSERVER|PARTNER"`` by arm type (``robot_type_of``):

* ``probe_self_to_obs`` — a linear probe fit on the *own* (self-stream)
  states and read on the observed states (balanced accuracy, beside its
  chance);
* ``partner_named`` / ``own_named`` — the own-action heads on the observed
  stream (the partner's action, never a training target) and on the own
  stream;
* ``partner_named_majority`` — the constant beside it: the partner's most
  frequent action in the fitting episodes, scored on the same ticks;
* ``early_recognition_at_half`` — the partner's target within the first half
  of its turn, beside the best public heuristic;
* ``turn_end_mae_s`` — the network's turn-end estimate, beside the public
  heuristic's (mean previous turn).

``leave_one_out`` compares a network trained without one arm type on the
cells that contain it with the same cells of the network trained on all.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from robot_mirror.studies.metrics import action_labels
from robot_mirror.studies.scorecard import scorecard

CELL_KEYS = ("probe_self_to_obs", "probe_self_to_obs_chance", "partner_named", "partner_named_majority",
             "own_named", "early_recognition_at_half", "early_recognition_at_half_public_heuristic", "turn_end_mae_s",
             "turn_end_mae_s_public_heuristic", "ticks")


def split_streams(demos) -> tuple[list, list]:
    """(fit, scored) streams: even episodes fit, odd episodes are scored."""
    n = demos.n_episodes
    fit_eps, test_eps = list(range(0, n, 2)), list(range(1, n, 2)) or [0]
    return demos.streams_of(fit_eps), demos.streams_of(test_eps)


def cells_of(streams: list) -> dict[str, list]:
    """Scored streams grouped by ``"OBSERVER|PARTNER"`` arm types."""
    by_episode: dict[int, dict[int, str]] = defaultdict(dict)
    for s in streams:
        by_episode[s.episode][s.robot] = s.robot_type
    cells: dict[str, list] = defaultdict(list)
    for s in streams:
        partner = by_episode[s.episode].get(1 - s.robot, "?")
        cells[f"{s.robot_type}|{partner}"].append(s)
    return dict(cells)


def partner_labels(streams: list, n_targets: int) -> np.ndarray:
    """The partner's moving actions on the ticks it was seen (what ``partner_named`` scores)."""
    ys = [action_labels(s.partner_segment, s.partner_target, n_targets)[s.observed] for s in streams]
    y = np.concatenate(ys) if ys else np.zeros(0, np.int64)
    return y[y >= 0]


def majority_baseline(fit: list, scored: list, n_targets: int) -> float | None:
    """Accuracy of always naming the partner's most frequent action in ``fit``."""
    fit_y, y = partner_labels(fit, n_targets), partner_labels(scored, n_targets)
    if not fit_y.size or not y.size:
        return None
    return float(np.mean(y == np.bincount(fit_y).argmax()))


def cell_figures(model, fit: list, scored: list, hz: float, seed: int = 0) -> dict[str, Any]:
    """The table's figures for one cell (see the module docstring)."""
    card = scorecard(model, fit, scored, hz=hz, permutations=50, seed=seed, controls=False, lesion=False)
    te = card["turn_end"]
    out = {"probe_self_to_obs": card["probe_self_to_obs"],
           "probe_self_to_obs_chance": card["probe_self_to_obs_chance"],
           "partner_named": card["heads"]["partner"], "own_named": card["heads"]["own"],
           "partner_named_majority": majority_baseline(fit, scored, model.config.n_targets),
           "early_recognition_at_half": card["early_recognition_at_half"],
           "early_recognition_at_half_public_heuristic": card["early_recognition_at_half_public_heuristic"],
           "turn_end_mae_s": te["mirror"]["mae_s"], "turn_end_mae_s_public_heuristic": te["public_heuristic"]["mae_s"],
           "ticks": card["ticks"]}
    return {k: (None if v is None or (isinstance(v, float) and not np.isfinite(v)) else v) for k, v in out.items()}


def cross_embodiment_table(model, demo_sets: dict[str, Any], seed: int = 0) -> dict[str, dict]:
    """``{"OBSERVER|PARTNER": figures}`` over every pair's demonstrations (``{pair name: DemoSet}``)."""
    table: dict[str, dict] = {}
    for pair, demos in demo_sets.items():
        fit, scored = split_streams(demos)
        for cell, streams in cells_of(scored).items():
            figures = cell_figures(model, fit, streams, demos.control_hz, seed)
            table[cell] = {"pair": pair, **figures}
    return table


def leave_one_out_summary(held_out_type: str, table_without: dict[str, dict],
                          table_all: dict[str, dict]) -> dict[str, Any]:
    """Figures on the cells that contain ``held_out_type`` (as observer or as
    partner) for the network trained without it, and their ratio to the
    network trained with every arm (same cells, same episodes)."""
    cells = [c for c in table_without if held_out_type in c.split("|")]
    out: dict[str, Any] = {"held_out": held_out_type, "cells": {}}
    for cell in cells:
        w, a = table_without[cell], table_all.get(cell, {})
        row = {k: w.get(k) for k in CELL_KEYS}
        for k in ("probe_self_to_obs", "partner_named", "early_recognition_at_half"):
            if w.get(k) is not None and a.get(k):
                row[f"{k}_ratio_to_trained"] = float(w[k] / a[k])
        out["cells"][cell] = row
    ratios = [r["probe_self_to_obs_ratio_to_trained"] for r in out["cells"].values()
              if "probe_self_to_obs_ratio_to_trained" in r]
    out["probe_ratio_mean"] = float(np.mean(ratios)) if ratios else None
    return out
