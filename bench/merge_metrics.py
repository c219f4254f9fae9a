"""Copy the benchmarks' tower figures into ``docs/results/metrics.json``.

``robot-mirror evaluate`` writes ``metrics.json`` (the scorecard per task and
perception level). The figures of two benchmarks belong beside it, at the
default perception level, and are copied here, from their own JSON, under
``tasks.tower``:

- ``motor`` from ``docs/results/motor.json`` (bench/motor.py):
  ``motor_network_success`` and ``motor_planner_success`` with their 95%
  intervals, every condition's row (the lesion, the blind readout, the
  readout's training seeds), and the placement error and hand-off gap;
  ``motor_stress`` the same from ``docs/results/motor_stress.json`` (the
  same benchmark at ``--set perception.level=stress``);
- ``cross_embodiment`` and ``leave_one_out`` from
  ``docs/results/cross_embodiment.json`` (bench/cross_embodiment.py): the
  multi-body network's (observer, partner) cells, each held-out arm's cells
  with their ratios to the trained network, and the online towers per pair.

Nothing is measured here; run it after either benchmark.

    python bench/merge_metrics.py [--metrics docs/results/metrics.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def motor_summary(motor: dict, source: str) -> dict:
    figures = motor["figures"]
    network, planner = figures["network"], figures["planner"]
    return {
        "source": f"{source} (bench/motor.py)", "overrides": motor.get("overrides", []),
        "motor_network_success": network["success_rate"], "motor_network_success_ci95": network["success_ci95"],
        "motor_planner_success": planner["success_rate"], "motor_planner_success_ci95": planner["success_ci95"],
        "goal": 0.9, "goal_met": network["success_ci95"][0] >= 0.9,
        "episodes": network["episodes"], "first_seed": motor["first_seed"],
        "conditions": {name: {k: row[k] for k in ("success_rate", "success_ci95", "blocks_stacked_fraction",
                                                  "placement_error_mm", "handoff_gap_s", "zone_violations",
                                                  "min_arm_distance", "tower_disturbances")}
                       for name, row in figures.items()},
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--metrics", type=Path, default=ROOT / "docs/results/metrics.json")
    ap.add_argument("--motor", type=Path, default=ROOT / "docs/results/motor.json")
    ap.add_argument("--motor-stress", type=Path, default=ROOT / "docs/results/motor_stress.json")
    ap.add_argument("--cross", type=Path, default=ROOT / "docs/results/cross_embodiment.json")
    args = ap.parse_args(argv)
    metrics = json.loads(args.metrics.read_text())
    tower = metrics["tasks"]["tower"]
    for key, path in (("motor", args.motor), ("motor_stress", args.motor_stress)):
        if path.is_file():
            name = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
            tower[key] = motor_summary(json.loads(path.read_text()), name)
    if args.cross.is_file():
        cross = cross_summary(json.loads(args.cross.read_text()))
        tower["leave_one_out"] = cross.pop("leave_one_out")
        tower["cross_embodiment"] = cross
    args.metrics.write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"wrote {args.metrics}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
