"""The motor readout on every body: ``motor: network`` against ``motor: planner`` per pair of arms.

Both arms of each pair run ``policy: mirror`` with one checkpoint (a
multi-body core with a motor readout fitted on several bodies) on the same
unseen seeds; each arm moves by the scripted planner (``planner``, the
teacher: the ceiling) or by the readout (``network``). Pairs are
``_common.pairs``: the trained bodies (Panda, iiwa, mirror_arm, zoo010) and
arms the checkpoint never saw (xArm6, generated zoo arms); a pair is
``unseen`` when one of its arm types is not in the checkpoint's
``robot_types``. Per pair and condition the figures of ``bench/motor.py``
(success with its Wilson interval, placement error, hand-off gap, zone
violations, minimum arm distance). ``unseen`` sums the unseen pairs.

    python bench/motor_bodies.py --checkpoint sim_assets/mirror_tower_multi_motor.pt \\
        [--blind-checkpoint B.pt] [--readout NAME=PATH ...] [--pairs panda+iiwa ...] \\
        [--seeds 20] [--first-seed 7100] [--workers 2] [--json docs/results/motor_bodies.json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/_common.py; see its docstring
from _common import from_root, pairs, pool_figures, run_pool, write_json  # noqa: E402
from motor import aggregate, play, wilson  # noqa: E402
from motor import conditions as motor_conditions  # noqa: E402

TRAINED_ZOO, UNSEEN_ZOO = [10], [3, 5]  # generator seed 0: zoo010 is in the multi-body data; 3 and 5 are not


def conditions(args) -> dict[str, tuple[str, str, str]]:
    """name -> (policy, motor, checkpoint): bench/motor.py's, without its lesion (per body, the
    planner, the readout, the blind readout and more readouts)."""
    return {k: v for k, v in motor_conditions(args).items() if k != "network_lesioned"}


def arm_types(scenario: str, overrides: list[str]) -> list[str]:
    from robot_mirror.config.scenario import load_scenario
    from robot_mirror.mirror.features import robot_type_of

    return [robot_type_of(r.urdf) for r in load_scenario(from_root(scenario), overrides).robots]


def pooled(per_pair: dict[str, dict], names: list[str], condition: str) -> dict:
    """Successes and safety over several pairs of one condition."""
    rows = [per_pair[p][condition] for p in names]
    wins, n = sum(r["successes"] for r in rows), sum(r["episodes"] for r in rows)
    return {"pairs": names, "episodes": n, "successes": wins, "success_rate": round(wins / n, 3) if n else None,
            "success_ci95": wilson(wins, n), "zone_violations": sum(r["zone_violations"] for r in rows),
            "min_arm_distance": min(r["min_arm_distance"] for r in rows)}


def print_table(per_pair: dict[str, dict]) -> None:
    print(f"\n{'pair':<28}{'condition':<10}{'success':>9}{'place mm':>10}{'gap s':>7}{'viol':>6}{'min d':>7}"
          f"{'bound':>7}")
    for pair, figures in per_pair.items():
        for name, a in figures.items():
            print(f"{pair:<28}{name:<10}{a['successes']:>5}/{a['episodes']:<3}{str(a['placement_error_mm']):>10}"
                  f"{str(a['handoff_gap_s']):>7}{a['zone_violations']:>6}{a['min_arm_distance']:>7.3f}"
                  f"{a['own_side_clamps']:>7}")


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", default="sim_assets/mirror_tower_multi_motor.pt",
                    help="a multi-body tower checkpoint with a motor readout")
    ap.add_argument("--blind-checkpoint", help="the same readout fitted with --blind (the ablation)")
    ap.add_argument("--unbounded", action="store_true",
                    help="add network_unbounded: the readout without the own-side bound (the bound's ablation)")
    ap.add_argument("--readout", action="append", default=[], metavar="NAME=PATH", help="another readout")
    ap.add_argument("--pairs", nargs="*", help="only these pair names")
    ap.add_argument("--only", nargs="+", help="run only these conditions")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="override for every pair")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=7100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--zoo-dir", default="runs/zoo",
                    help="where the zoo arms are written (types read zoo/NAME.urdf, as in the training data)")
    ap.add_argument("--json", type=Path, default=None)
    ap.set_defaults(lesioned=[])  # (motor.conditions reads it; no lesion runs here)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    from robot_mirror.mirror.checkpoint import load_checkpoint

    trained = set(load_checkpoint(from_root(args.checkpoint)).robot_types)
    wanted = pairs(Path(from_root(args.zoo_dir)), TRAINED_ZOO + UNSEEN_ZOO)
    wanted = {k: (sc, ov + args.overrides) for k, (sc, ov) in wanted.items() if not args.pairs or k in args.pairs}
    types = {k: arm_types(sc, ov) for k, (sc, ov) in wanted.items()}
    chosen = conditions(args)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    jobs = [(f"{pair}|{name}", spec, seed, sc, ov) for pair, (sc, ov) in wanted.items()
            for name, spec in chosen.items() for seed in seeds]
    results: dict[str, dict[int, dict]] = {}
    wall = run_pool(play, jobs, args.workers, lambda r: results.setdefault(r[0], {}).__setitem__(r[1], r[2]))
    per_pair = {pair: {name: aggregate(results[f"{pair}|{name}"]) for name in chosen} for pair in wanted}
    unseen = [p for p in wanted if any(t not in trained for t in types[p])]
    seen = [p for p in wanted if p not in unseen]
    print_table(per_pair)
    write_json(args.json, {
        "checkpoint": args.checkpoint, "trained_on": sorted(trained), "first_seed": args.first_seed,
        "conditions": {k: list(v) for k, v in chosen.items()},
        "pairs": {p: {"scenario": sc, "overrides": ov, "arm_types": types[p], "unseen": p in unseen,
                      "figures": per_pair[p]} for p, (sc, ov) in wanted.items()},
        "unseen": {name: pooled(per_pair, unseen, name) for name in chosen} if unseen else None,
        "trained": {name: pooled(per_pair, seen, name) for name in chosen} if seen else None,
        **pool_figures(args.seeds, args.workers, wall)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
