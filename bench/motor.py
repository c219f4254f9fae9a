"""Does the mirror network move the arm? ``motor: network`` against ``motor: planner``.

Both arms run ``policy: mirror`` on the same unseen seeds, in process
(``build_policies`` + ``rollout``). Conditions, each a checkpoint and a
motor mode:

- ``planner``: the scripted planner moves the arm (the teacher; the ceiling);
- ``network``: the motor readout moves it (``--checkpoint``, fitted with
  ``robot-mirror train-motor``);
- ``network_lesioned``: the same, with the core's mirror units silenced
  (``policy: mirror_lesioned``): does the readout need them?
- ``blind``: a readout fitted with the core state zeroed (``--blind``
  checkpoint): the context-only ablation, the best non-mirror readout of
  the same data.

Per condition: tower successes with the Wilson 95% interval, blocks stacked,
placement error (each counted block's horizontal distance from the tower
axis at the end), the hand-off gap, zone violations, the minimum distance
between the arms and tower disturbances. On the imitation task
(``--scenario launch/imitation.yaml``) the success is the task's own: rounds
whose follower put its block in the right slot within the follow budget,
over all rounds (Wilson over rounds), beside the episodes with every round
on time, the follower's placement error, its follow latency (grant to
release) and the leader's error from its announced slot.

    python bench/motor.py --checkpoint sim_assets/mirror_tower_motor.pt \\
        --blind-checkpoint /tmp/blind.pt [--readout network_seed1=/tmp/seed1.pt ...] \\
        [--seeds 20] [--first-seed 7100] [--workers 2] [--json docs/results/motor.json]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/_common.py; see its docstring
from _common import from_root, pool_figures, run_pool, tower_totals, write_json  # noqa: E402

_ENVS: dict = {}  # per worker process: (scenario, overrides) -> TurnTakingEnv


def conditions(args) -> dict[str, tuple[str, str, str]]:
    """name -> (policy, motor, checkpoint)."""
    out = {"planner": ("mirror", "planner", args.checkpoint),
           "network": ("mirror", "network", args.checkpoint),
           "network_lesioned": ("mirror_lesioned", "network", args.checkpoint)}
    if args.unbounded:  # the same readout without the own-side bound (mirror/motor_expert.py)
        out["network_unbounded"] = ("mirror", "network", args.checkpoint)
    if args.blind_checkpoint:
        out["blind"] = ("mirror", "network", args.blind_checkpoint)
    for item in args.readout:  # more training seeds of the readout
        name, _, path = item.partition("=")
        out[name] = ("mirror", "network", path)
    for item in args.lesioned:  # e.g. the same readout with other units named as its lesion
        name, _, path = item.partition("=")
        out[name] = ("mirror_lesioned", "network", path)
    return {k: v for k, v in out.items() if k in args.only} if args.only else out


def wilson(successes: int, n: int, z: float = 1.96) -> list[float]:
    if n == 0:
        return [math.nan, math.nan]
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 3), round(min(1.0, centre + half), 3)]


def play(job: tuple) -> tuple[str, int, dict]:
    import numpy as np

    import robot_mirror.mirror.policy  # noqa: F401  (registers policy: mirror)
    from robot_mirror.config.scenario import load_scenario
    from robot_mirror.env import TurnTakingEnv
    from robot_mirror.policies import build_policies, rollout

    name, (policy, motor, checkpoint), seed, scenario_file, overrides = job
    key = (scenario_file, tuple(overrides))
    if key not in _ENVS:
        _ENVS[key] = TurnTakingEnv(load_scenario(from_root(scenario_file), list(overrides)))
    env = _ENVS[key]
    for robot in env.scenario.robots:
        robot.policy, robot.motor, robot.checkpoint = policy, motor, str(Path(from_root(checkpoint)))
    last: dict = {}
    policies = build_policies(env, env.scenario)
    experts = [getattr(p, "expert", None) for p in policies.values()]
    if name == "network_unbounded":  # the ablation: the readout without the own-side bound
        for expert in experts:
            if hasattr(expert, "own_side_m"):
                expert.own_side_m = None
    summary = rollout(env, policies, seed, lambda tick: last.__setitem__("obs", tick.next_obs))
    # ticks whose readout waypoint the own-side bound moved back (mirror/motor_expert.py; 0 for the planner)
    summary["own_side_clamps"] = sum(getattr(expert, "own_side_clamps", 0) for expert in experts)
    if env.scenario.task.kind == "tower":
        obs = next(iter(last["obs"].values()))
        tower = np.asarray(env.scenario.task.tower_xy, float)
        summary["placement_errors_m"] = [float(np.hypot(*(np.asarray(b[:2]) - tower)))
                                         for b, placed in zip(obs["blocks"], obs["placed"]) if placed]
    return name, seed, summary


def aggregate(runs: dict[int, dict]) -> dict:
    if runs and "round_results" in next(iter(runs.values())):
        return aggregate_imitation(runs)
    totals = tower_totals(runs)
    seeds = sorted(runs)
    wins, gaps = totals["successes"], [g for s in seeds for g in runs[s]["handoff_gaps"]]
    errors = [e for s in seeds for e in runs[s]["placement_errors_m"]]
    return {
        **totals,
        "success_rate": round(wins / len(seeds), 3) if seeds else None, "success_ci95": wilson(wins, len(seeds)),
        "blocks_stacked_fraction": round(statistics.fmean(runs[s]["blocks_stacked"] / runs[s]["blocks"]
                                                          for s in seeds), 3),
        "placement_error_mm": round(1000 * statistics.fmean(errors), 2) if errors else None,
        "placement_error_mm_max": round(1000 * max(errors), 2) if errors else None,
        "handoff_gap_s": round(statistics.fmean(gaps), 3) if gaps else None,
        "own_side_clamps": sum(runs[s].get("own_side_clamps", 0) for s in seeds),
    }


def aggregate_imitation(runs: dict[int, dict]) -> dict:
    """On-time rounds (the task's success) and how the arms placed and timed them."""
    seeds = sorted(runs)
    rounds = [r for s in seeds for r in runs[s]["round_results"]]
    planned = sum(runs[s]["rounds"] for s in seeds)
    hits = sum(r["success"] for r in rounds)

    def mean(key: str, scale: float = 1.0, where=lambda r: True):
        values = [scale * r[key] for r in rounds if where(r) and r.get(key) is not None]
        return round(statistics.fmean(values), 3) if values else None

    on_time_episodes = [s for s in seeds if sum(r["success"] for r in runs[s]["round_results"]) == runs[s]["rounds"]]
    return {
        "episodes": len(seeds), "rounds": planned, "rounds_played": len(rounds), "successes": hits,
        "success_rate": round(hits / planned, 3) if planned else None, "success_ci95": wilson(hits, planned),
        "episodes_all_on_time": len(on_time_episodes),
        "right_slot": sum(r["placed"] for r in rounds), "late": sum(r["late"] for r in rounds),
        "placement_error_mm": mean("error", 1000, lambda r: r["placed"]),
        "leader_error_mm": mean("leader_error", 1000),
        "follow_latency_s": mean("follow_latency"),
        "zone_violations": sum(runs[s]["zone_violations"] for s in seeds),
        "min_arm_distance": min(runs[s]["min_arm_distance"] for s in seeds),
        "failed_seeds": [s for s in seeds if s not in on_time_episodes],
        "own_side_clamps": sum(runs[s].get("own_side_clamps", 0) for s in seeds),
    }


def print_table(figures: dict[str, dict]) -> None:
    if any("rounds" in a for a in figures.values()):
        print(f"\n{'condition':<18}{'on time':>9}{'ci95':>16}{'all-on-time eps':>16}{'place err mm':>14}"
              f"{'latency s':>10}{'viol':>6}{'min d':>7}{'bound':>7}")
        for name, a in figures.items():
            print(f"{name:<18}{a['successes']:>5}/{a['rounds']:<3}{str(a['success_ci95']):>16}"
                  f"{a['episodes_all_on_time']:>12}/{a['episodes']:<3}{str(a['placement_error_mm']):>14}"
                  f"{str(a['follow_latency_s']):>10}{a['zone_violations']:>6}{a['min_arm_distance']:>7.3f}"
                  f"{a['own_side_clamps']:>7}")
        return
    print(f"\n{'condition':<18}{'success':>9}{'ci95':>16}{'stacked':>9}{'place err mm':>14}{'gap s':>7}"
          f"{'viol':>6}{'min d':>7}{'bound':>7}")
    for name, a in figures.items():
        print(f"{name:<18}{a['successes']:>5}/{a['episodes']:<3}{str(a['success_ci95']):>16}"
              f"{a['blocks_stacked_fraction']:>9}{str(a['placement_error_mm']):>14}{str(a['handoff_gap_s']):>7}"
              f"{a['zone_violations']:>6}{a['min_arm_distance']:>7.3f}{a['own_side_clamps']:>7}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default="sim_assets/mirror_tower_motor.pt",
                    help="a checkpoint with a motor readout (for the scenario's task)")
    ap.add_argument("--blind-checkpoint", help="the same readout fitted with --blind (the ablation)")
    ap.add_argument("--unbounded", action="store_true",
                    help="add network_unbounded: the readout without the own-side bound (the bound's ablation)")
    ap.add_argument("--readout", action="append", default=[], metavar="NAME=PATH",
                    help="another readout (e.g. another training seed) as condition NAME")
    ap.add_argument("--lesioned", action="append", default=[], metavar="NAME=PATH",
                    help="a checkpoint run as mirror_lesioned (e.g. random units as its mirror_units: the control)")
    ap.add_argument("--scenario", default="launch/tower.yaml")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="scenario override")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=7100,
                    help="unseen: demonstrations use 1000+, 2000+, 3000+; development used 5000 and 7000-7015")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--only", nargs="+", help="run only these conditions")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = ap.parse_args(argv)

    chosen = conditions(args)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    jobs = [(name, spec, seed, args.scenario, args.overrides) for name, spec in chosen.items() for seed in seeds]
    results: dict[str, dict[int, dict]] = {name: {} for name in chosen}
    wall = run_pool(play, jobs, args.workers, lambda r: results[r[0]].__setitem__(r[1], r[2]))
    figures = {name: aggregate(results[name]) for name in chosen}
    print_table(figures)
    write_json(args.json, {"scenario": args.scenario, "overrides": args.overrides, "checkpoint": args.checkpoint,
                           "blind_checkpoint": args.blind_checkpoint, "first_seed": args.first_seed,
                           "conditions": {k: list(v) for k, v in chosen.items()}, "figures": figures,
                           **pool_figures(args.seeds, args.workers, wall)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
