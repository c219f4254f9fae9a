"""Imitation (mirror game) baselines: the ceiling and the floor a learned
follower is measured between.

Runs ``launch/imitation.yaml`` in process (``TurnTakingEnv``,
``robot_mirror.policies.build_policies`` and ``rollout``, as
``robot-mirror launch --inprocess``)
on seeds ``0 .. N-1`` twice: with ``policy: expert`` on both arms (scripted
leader + oracle follower, which is handed the task's true slot through
``task.true_slot``) and with ``policy: random`` (scripted leader + a follower
that picks a uniformly random slot, seeded). Every seed is one task in a
multiprocessing pool; each worker builds one ``TurnTakingEnv`` per
configuration and reuses it. Imitation success = rounds in which the
follower's block ended within ``slot_tolerance`` of the right slot and was
released within ``task.follow_budget`` s of the follower's turn starting,
over all rounds played (each episode plays ``task.rounds`` rounds, roles alternating).
Also reported: how often the leader hit its announced slot, episodes that
played every round, zone violations, simulated seconds per episode.
Headline: ``ratio`` = the oracle follower's imitation success (the ceiling;
the random floor is about ``1 / slots``).

    python bench/imitation_baselines.py [--seeds 20] [--workers 2]
                                        [--scenario launch/imitation.yaml] [--set KEY=VALUE ...]
                                        [--json out.json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/_common.py; see its docstring
from _common import from_root, pool_figures, run_episode, run_pool, write_json  # noqa: E402

FOLLOWERS = {"oracle": "expert", "random": "random"}  # baseline -> scenario policy

_ENVS: dict = {}  # per worker: (scenario, policy, overrides) -> TurnTakingEnv


def _env(path: str, policy: str, overrides: tuple[str, ...]):
    from robot_mirror.env import TurnTakingEnv
    from robot_mirror.config.scenario import load_scenario

    key = (path, policy, overrides)
    if key not in _ENVS:
        sc = load_scenario(path, [*overrides, *(f"robots.{n}.policy={policy}" for n in _names(path))])
        _ENVS[key] = TurnTakingEnv(sc)
    return _ENVS[key]


def _names(path: str) -> list[str]:
    from robot_mirror.config.scenario import load_scenario

    return load_scenario(path).robot_names


def _task(job):
    baseline, path, overrides, seed = job
    return baseline, seed, run_episode(_env(path, FOLLOWERS[baseline], overrides), seed)


def aggregate(summaries: dict[int, dict]) -> dict:
    seeds = sorted(summaries)
    rounds = [r for s in seeds for r in summaries[s]["round_results"]]
    planned = sum(summaries[s]["rounds"] for s in seeds)
    hits = sum(r["success"] for r in rounds)
    return {
        "episodes": len(seeds),
        "rounds_planned": planned,
        "rounds_played": len(rounds),
        "imitation_successes": hits,
        "imitation_success": round(hits / planned, 4) if planned else 0.0,
        "leader_on_target": round(sum(r["leader_slot"] == r["slot"] for r in rounds) / len(rounds), 4)
        if rounds else None,
        "episodes_all_rounds_played": sum(summaries[s]["success"] for s in seeds),
        "zone_violations": sum(summaries[s]["zone_violations"] for s in seeds),
        "mean_sim_seconds": round(statistics.fmean(summaries[s]["sim_seconds"] for s in seeds), 2),
        "mean_follower_error_m": round(statistics.fmean(r["error"] for r in rounds), 4) if rounds else None,
        "incomplete_seeds": [s for s in seeds if not summaries[s]["success"]],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=20, help="episodes per baseline (seeds 0..N-1)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scenario", default="launch/imitation.yaml")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = ap.parse_args(argv)

    path = from_root(args.scenario)
    overrides = tuple(args.overrides)
    jobs = [(b, path, overrides, seed) for b in FOLLOWERS for seed in range(args.seeds)]
    results: dict[str, dict[int, dict]] = {b: {} for b in FOLLOWERS}

    def keep(result: tuple[str, int, dict]) -> None:
        baseline, seed, summary = result
        results[baseline][seed] = summary

    wall = run_pool(_task, jobs, args.workers, keep)
    figures = {b: aggregate(results[b]) for b in FOLLOWERS}

    print(f"\n{'follower':<10}{'episodes':>9}{'rounds':>8}{'right':>7}{'success':>9}{'leader ok':>11}"
          f"{'violations':>12}{'sim [s]':>9}")
    for b, a in figures.items():
        leader = "-" if a["leader_on_target"] is None else f"{a['leader_on_target']:.0%}"
        print(f"{b:<10}{a['episodes']:>9}{a['rounds_played']:>8}{a['imitation_successes']:>7}"
              f"{a['imitation_success']:>9.1%}{leader:>11}{a['zone_violations']:>12}{a['mean_sim_seconds']:>9.1f}")
    ratio = figures["oracle"]["imitation_success"]
    print(f"\noracle (ceiling) {ratio:.1%}   random (floor) {figures['random']['imitation_success']:.1%}"
          f"   ({wall:.0f} s wall, {args.workers} workers)")
    write_json(args.json, {
        "ratio": ratio,
        "baselines": figures,
        "scenario": args.scenario,
        "overrides": list(overrides),
        **pool_figures(args.seeds, args.workers, wall),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
