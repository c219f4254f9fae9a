"""Copy the benchmarks' figures into ``docs/results/metrics.json``.

``robot-mirror evaluate`` writes ``metrics.json`` (the scorecard per task and
perception level). The figures of the motor and body benchmarks belong
beside it, at the default perception level, and are copied here, from their
own JSON, under ``tasks.tower`` (and ``tasks.imitation``):

- ``motor`` from ``docs/results/motor.json`` (bench/motor.py):
  ``motor_network_success`` and ``motor_planner_success`` with their 95%
  intervals, every condition's row (the lesion, the blind readout, the
  readout's training seeds), and the placement error and hand-off gap;
  ``motor_stress`` the same from ``docs/results/motor_stress.json`` (the
  same benchmark at ``--set perception.level=stress``);
- ``cross_embodiment`` and ``leave_one_out`` from
  ``docs/results/cross_embodiment.json`` (bench/cross_embodiment.py): the
  multi-body network's (observer, partner) cells, each held-out arm's cells
  with their ratios to the trained network, and the online towers per pair;
- ``motor`` under ``tasks.imitation`` from ``docs/results/motor_imitation.json``
  (bench/motor.py on ``launch/imitation.yaml``: rounds on time), with the
  rows of ``motor_imitation_controls.json`` beside it when present, and
  ``motor_stress`` from ``motor_imitation_stress.json`` (the same at
  ``--set perception.level=stress``);
- ``motor_bodies`` from ``docs/results/motor_bodies.json``
  (bench/motor_bodies.py): the multi-body readout against the planner per
  pair of arms, trained and never-trained bodies pooled apart, and from
  ``docs/results/motor_bodies_seeds.json`` more readout training seeds on
  the unseen arms (``readout_seeds``).

The issue's headline keys are also written at the top level:
``motor_network_success`` / ``motor_planner_success`` per task (the Panda
pair; imitation: the fraction of rounds on time), and
``unseen_arm_success`` (the pairs with an arm the multi-body network never
saw: both arms ``policy: mirror``, per motor mode).

Nothing is measured here; run it after either benchmark.

    python bench/merge_metrics.py [--metrics docs/results/metrics.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What is kept of each condition's row (bench/motor.py's ``aggregate``).
ROW_KEYS = ("success_rate", "success_ci95", "blocks_stacked_fraction", "placement_error_mm", "handoff_gap_s",
            "zone_violations", "min_arm_distance", "tower_disturbances", "own_side_clamps")
# The same for the imitation rows (rounds on time, bench/motor.py's ``aggregate_imitation``).
IMITATION_ROW_KEYS = ("success_rate", "success_ci95", "rounds", "episodes_all_on_time", "placement_error_mm",
                      "leader_error_mm", "follow_latency_s", "zone_violations", "min_arm_distance", "own_side_clamps")


def condition_rows(figures: dict[str, dict]) -> dict[str, dict]:
    """Each condition's kept figures: ROW_KEYS for a tower row, IMITATION_ROW_KEYS for a mirror-game one
    (``own_side_clamps`` only in rows measured since the readout's own-side bound)."""
    return {name: {k: row[k] for k in (IMITATION_ROW_KEYS if "rounds" in row else ROW_KEYS) if k in row}
            for name, row in figures.items()}


def shown(path: Path) -> str:
    """``path`` as the merged file names it: relative to the project when inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def motor_summary(motor: dict, source: str) -> dict:
    figures = motor["figures"]
    network, planner = figures["network"], figures["planner"]
    return {
        "source": f"{source} (bench/motor.py)", "overrides": motor.get("overrides", []),
        "motor_network_success": network["success_rate"], "motor_network_success_ci95": network["success_ci95"],
        "motor_planner_success": planner["success_rate"], "motor_planner_success_ci95": planner["success_ci95"],
        "goal": 0.9, "goal_met": network["success_ci95"][0] >= 0.9,
        "episodes": network["episodes"], "first_seed": motor["first_seed"],
        "conditions": condition_rows(figures),
    }


def cross_summary(cross: dict) -> dict:
    reference = cross["reference"]
    return {
        "source": "docs/results/cross_embodiment.json (bench/cross_embodiment.py)",
        "checkpoint": cross["checkpoints"][reference],
        "perception": cross["perception"],
        "cells": cross["cross_embodiment"][reference],
        "online": cross["online"],
        "leave_one_out": cross["leave_one_out"],
    }


def bodies_summary(bodies: dict, source: str) -> dict:
    return {
        "source": f"{source} (bench/motor_bodies.py)", "checkpoint": bodies["checkpoint"],
        "trained_on": bodies["trained_on"], "first_seed": bodies["first_seed"], "seeds": bodies["seeds"],
        "pairs": {p: {"unseen": v["unseen"], "conditions": condition_rows(v["figures"])}
                  for p, v in bodies["pairs"].items()},
        "trained": bodies["trained"], "unseen": bodies["unseen"],
    }


def headline(metrics: dict) -> None:
    """The top-level keys the issue names, read from what was merged under ``tasks``."""
    tower = metrics["tasks"]["tower"]
    motors = {task: metrics["tasks"][task].get("motor", {}) for task in ("tower", "imitation")}
    for mode in ("network", "planner"):
        metrics[f"motor_{mode}_success"] = {task: m.get(f"motor_{mode}_success") for task, m in motors.items()}
    unseen = (tower.get("motor_bodies") or {}).get("unseen") or {}
    metrics["unseen_arm_success"] = {
        "source": "tasks.tower.motor_bodies.unseen",
        **{f"motor_{name}": {k: row[k] for k in ("success_rate", "success_ci95", "episodes", "zone_violations",
                                                 "min_arm_distance")}
           for name, row in unseen.items()},
        "pairs": next(iter(unseen.values()), {}).get("pairs", []),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--metrics", type=Path, default=ROOT / "docs/results/metrics.json")
    ap.add_argument("--motor", type=Path, default=ROOT / "docs/results/motor.json")
    ap.add_argument("--motor-stress", type=Path, default=ROOT / "docs/results/motor_stress.json")
    ap.add_argument("--motor-imitation", type=Path, default=ROOT / "docs/results/motor_imitation.json")
    ap.add_argument("--motor-imitation-stress", type=Path, default=ROOT / "docs/results/motor_imitation_stress.json")
    ap.add_argument("--cross", type=Path, default=ROOT / "docs/results/cross_embodiment.json")
    ap.add_argument("--bodies", type=Path, default=ROOT / "docs/results/motor_bodies.json")
    ap.add_argument("--bodies-seeds", type=Path, default=ROOT / "docs/results/motor_bodies_seeds.json")
    args = ap.parse_args(argv)
    metrics = json.loads(args.metrics.read_text())
    tower = metrics["tasks"]["tower"]
    for key, path in (("motor", args.motor), ("motor_stress", args.motor_stress)):
        if path.is_file():
            tower[key] = motor_summary(json.loads(path.read_text()), shown(path))
    if args.motor_imitation.is_file():
        imitation = motor_summary(json.loads(args.motor_imitation.read_text()), shown(args.motor_imitation))
        controls = args.motor_imitation.with_name(args.motor_imitation.stem + "_controls.json")
        if controls.is_file():  # the constant and random-lesion rows, run apart on the same seeds
            imitation["conditions"].update(condition_rows(json.loads(controls.read_text())["figures"]))
            imitation["source"] += f" and {shown(controls)}"
        metrics["tasks"]["imitation"]["motor"] = imitation
    if args.motor_imitation_stress.is_file():
        metrics["tasks"]["imitation"]["motor_stress"] = motor_summary(
            json.loads(args.motor_imitation_stress.read_text()), shown(args.motor_imitation_stress))
    if args.cross.is_file():
        cross = cross_summary(json.loads(args.cross.read_text()))
        tower["leave_one_out"] = cross.pop("leave_one_out")
        tower["cross_embodiment"] = cross
    if args.bodies.is_file():
        tower["motor_bodies"] = bodies_summary(json.loads(args.bodies.read_text()), shown(args.bodies))
        if args.bodies_seeds.is_file():
            tower["motor_bodies"]["readout_seeds"] = json.loads(args.bodies_seeds.read_text())["unseen"]
    headline(metrics)
    args.metrics.write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"wrote {args.metrics}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
