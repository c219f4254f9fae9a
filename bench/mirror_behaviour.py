"""Does the mirror network matter? Policy variants on the same unseen seeds.

Runs ``robot_mirror.studies.behaviour.compare``: each policy name given is
applied to both robots of the scenario (``--set robots.NAME.policy=...``),
at one perception level (``--perception``: ``perfect``, ``default`` =
1.5 cm noise / 4 ticks delay / 10 % drops, ``stress`` = 3 cm / 10 / 30 %),
in process, on seeds ``--seed .. --seed+N-1`` (below 1000). Prints per
variant the headline (tower: mean hand-off gap per episode, s, lower is
better; imitation: on-time success rate per episode, higher is better) with
its 95 % bootstrap interval, success rate, zone violations and wall seconds
per episode, then ``mirror_advantage`` (mirror minus the best non-oracle
baseline, paired over seeds). ``ratio`` in the JSON = the mirror advantage's
mean (null without a ``mirror`` variant).

    python bench/mirror_behaviour.py --scenario launch/imitation.yaml
        [--policies constant heuristic oracle mirror] [--perception default]
        [--episodes 6] [--seed 0] [--workers 1] [--set KEY=VALUE ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/_common.py; see its docstring
from _common import BenchError, machine_info, scenario_path, write_json  # noqa: E402

DEFAULT_POLICIES = ["constant", "heuristic", "oracle", "mirror"]


def _interval(h: dict) -> str:
    if h["mean"] is None:
        return "-"
    lo, hi = h["ci95"]
    return f"{h['mean']:.3f} [{lo:.3f}, {hi:.3f}]"


def report(result: dict) -> None:
    print(f"\n{result['task']}: {result['headline']} ({result['better']} is better), "
          f"perception {result['perception']['level']}, seeds {result['seeds'][0]}..{result['seeds'][-1]}")
    print(f"{'variant':<18}{'headline mean [95% CI]':<30}{'success':>9}{'violations':>12}{'wall/ep [s]':>13}")
    for name, v in result["variants"].items():
        print(f"{name:<18}{_interval(v['headline']):<30}{v['success_rate']:>9.0%}{v['zone_violations']:>12}"
              f"{v['wall_seconds_per_episode']:>13.1f}")
    adv = result["mirror_advantage"]
    if adv is not None:
        print(f"\nmirror_advantage (mirror - {adv['baseline']}, paired over {adv['n']} seeds): {_interval(adv)}")


def main(argv: list[str] | None = None) -> int:
    from robot_mirror.errors import RobotMirrorError
    from robot_mirror.studies.behaviour import PERCEPTION_LEVELS, compare

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--policies", nargs="+", default=DEFAULT_POLICIES)
    ap.add_argument("--perception", choices=list(PERCEPTION_LEVELS), default="default")
    ap.add_argument("--episodes", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0, help="first seed (all below 1000)")
    ap.add_argument("--workers", type=int, choices=(1, 2), default=1)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = ap.parse_args(argv)

    def progress(n, total, variant, seed, rec) -> None:
        print(f"  {n}/{total} {variant} seed {seed}: {rec['wall_seconds']:.1f} s wall", flush=True)

    try:
        result = compare(scenario_path(args.scenario), args.policies, episodes=args.episodes, seed=args.seed,
                         perception=args.perception, overrides=args.overrides, workers=args.workers,
                         progress=progress)
    except (BenchError, RobotMirrorError) as exc:
        print(f"robot-mirror: error: {exc}", file=sys.stderr)
        return 2
    report(result)
    adv = result["mirror_advantage"]
    result["scenario"] = args.scenario
    write_json(args.json, {"ratio": None if adv is None else adv["mean"], **result,
                           "machine": machine_info(processor=False)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
