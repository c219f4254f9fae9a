"""How often does the scripted expert finish the tower?

For each shipped tower scenario, with every robot's policy set to
``expert``, runs the scripted expert (policies from
``robot_mirror.policies.build_policies``, the episode loop
``robot_mirror.policies.rollout``, as ``tests/test_env.py::run_episode``)
on seeds ``0 .. N-1``, in a multiprocessing pool. Every seed is one task;
each worker builds one ``TurnTakingEnv`` per scenario the first time it
needs it and reuses it (``reset(seed)`` rebuilds the world, so results do
not depend on which worker ran a seed). Prints one row per scenario: episodes, successes,
success rate, mean turn duration, mean hand-off gap, total zone violations,
mean simulated seconds per episode. Headline: ``ratio`` = the lowest
success rate over the scenarios.

    python bench/expert_success.py [--seeds 50] [--workers 2]
                                   [--scenarios launch/tower.yaml ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/_common.py; see its docstring
from _common import from_root, pool_figures, run_episode, run_pool, write_json  # noqa: E402

SCENARIOS = ["launch/tower.yaml", "launch/tower_mixed.yaml", "launch/tower_custom.yaml"]

_ENVS: dict = {}  # per worker process: scenario path -> TurnTakingEnv


def _env(path: str):
    from robot_mirror.env import TurnTakingEnv
    from robot_mirror.config.scenario import load_scenario

    if path not in _ENVS:
        scenario = load_scenario(path)
        for robot in scenario.robots:  # the scripted expert, whatever the scenario's default
            robot.policy = "expert"
        _ENVS[path] = TurnTakingEnv(scenario)
    return _ENVS[path]


def _task(job: tuple[str, int]) -> tuple[str, int, dict]:
    path, seed = job
    return path, seed, run_episode(_env(path), seed)


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def aggregate(summaries: dict[int, dict]) -> dict:
    seeds = sorted(summaries)
    ok = [s for s in seeds if summaries[s]["success"]]
    return {
        "episodes": len(seeds),
        "successes": len(ok),
        "success_rate": round(len(ok) / len(seeds), 4) if seeds else 0.0,
        "mean_turn_duration": _mean([d for s in seeds for d in summaries[s]["turn_durations"]]),
        "mean_handoff_gap": _mean([g for s in seeds for g in summaries[s]["handoff_gaps"]]),
        "zone_violations": sum(summaries[s]["zone_violations"] for s in seeds),
        "mean_sim_seconds": _mean([summaries[s]["sim_seconds"] for s in seeds]),
        "failed_seeds": [s for s in seeds if not summaries[s]["success"]],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=50, help="episodes per scenario (seeds 0..N-1)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scenarios", nargs="+", default=SCENARIOS)
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = ap.parse_args(argv)

    paths = [from_root(p) for p in args.scenarios]
    jobs = [(path, seed) for path in paths for seed in range(args.seeds)]
    results: dict[str, dict[int, dict]] = {path: {} for path in paths}

    def keep(result: tuple[str, int, dict]) -> None:
        path, seed, summary = result
        results[path][seed] = summary
        if not summary["success"]:
            print(f"  FAILED {Path(path).name} seed {seed}: {summary['blocks_stacked']}/{summary['blocks']}"
                  f" stacked, {summary['sim_seconds']} s simulated", flush=True)

    wall = run_pool(_task, jobs, args.workers, keep)

    per_scenario = {Path(path).name: aggregate(results[path]) for path in paths}
    failed = [
        {"scenario": Path(path).name, "seed": seed, "blocks_stacked": s["blocks_stacked"],
         "turns": s["turns"], "sim_seconds": s["sim_seconds"]}
        for path in paths for seed, s in sorted(results[path].items()) if not s["success"]
    ]
    fmt = lambda x, spec: "-" if x is None else format(x, spec)
    print(f"\n{'scenario':<20}{'episodes':>9}{'success':>9}{'rate':>8}{'turn [s]':>10}"
          f"{'handoff [s]':>13}{'violations':>12}{'sim [s]':>9}")
    for name, a in per_scenario.items():
        print(f"{name:<20}{a['episodes']:>9}{a['successes']:>9}{a['success_rate']:>8.0%}"
              f"{fmt(a['mean_turn_duration'], '.2f'):>10}{fmt(a['mean_handoff_gap'], '.2f'):>13}"
              f"{a['zone_violations']:>12}{fmt(a['mean_sim_seconds'], '.1f'):>9}")
    ratio = min(a["success_rate"] for a in per_scenario.values())
    print(f"\nminimum success rate: {ratio:.0%}   failed: "
          + (", ".join(f"{f['scenario']}#{f['seed']}" for f in failed) or "none")
          + f"   ({wall:.0f} s wall, {args.workers} workers)")

    write_json(args.json, {
        "ratio": ratio,
        "scenarios": per_scenario,
        "failed": failed,
        **pool_figures(args.seeds, args.workers, wall),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
