"""Does an arm wait safely next to any partner?

For each pair (Panda + iiwa, the project's mirror_arm + Panda, an xArm6 with
suction + Panda, a generated zoo arm + Panda: seed s plays zoo arm s mod 6,
so the patterns of ``robot_mirror.sim.zoo`` take turns) and each policy on the Panda (``expert``; ``oracle``, which
knows its partner's true turn end; ``mirror``, the network's prediction;
``constant``, the expert told the partner's turn ends now, so it fetches its
block the moment the partner's turn begins), plays seeds ``0 .. N-1`` in
process (``build_policies`` + ``rollout``); the partner runs the scripted
expert. Reports, per pair and policy: successes, zone violations, the
minimum distance between the arms, and tower disturbances (tower blocks
moved while unheld). Goal: 0 violations and a minimum distance of at least
``MIN_DISTANCE`` everywhere (``ok`` in the JSON).

    python bench/safe_waiting.py [--seeds 20] [--workers 2] [--blocks 6] [--json docs/results/safe_waiting.json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/_common.py; see its docstring
from _common import XARM, from_root, pool_figures, run_pool, tower_totals, write_json  # noqa: E402

MIN_DISTANCE = 0.05  # m between the two arms, at every sample
PAIRS = {  # name -> (scenario, overrides, robot whose policy varies)
    "panda+iiwa": ("launch/tower_mixed.yaml", [], "panda"),
    "mirror_arm+panda": ("launch/tower_custom.yaml", [], "panda"),
    "xarm6+panda": ("launch/tower_custom.yaml", XARM, "panda"),
    "zoo+panda": ("launch/tower_custom.yaml", None, "panda"),  # None: a zoo arm per seed (_zoo_overrides)
}
ZOO_ARMS = 6  # generated arms the zoo pair cycles through (one of each pattern)
POLICIES = ["expert", "oracle", "mirror", "constant"]

_ENVS: dict = {}  # per worker process: (pair, blocks, zoo arm) -> TurnTakingEnv
_ZOO: list = []   # per worker process: the generated arms, written once


def _zoo_overrides(index: int) -> list[str]:
    """Generated zoo arm ``index`` (seed 0) in the mirror_arm's place."""
    import tempfile

    from robot_mirror.sim.zoo import generate

    if not _ZOO:
        _ZOO.extend(generate(ZOO_ARMS, tempfile.mkdtemp(prefix="safe_waiting_zoo_"), seed=0))
    arm = _ZOO[index % len(_ZOO)]
    return [f"robots.mirror.urdf={arm.urdf}", f"robots.mirror.gripper={arm.gripper}"]


def _env(pair: str, blocks: int, seed: int = 0):
    from robot_mirror.config.scenario import load_scenario
    from robot_mirror.env import TurnTakingEnv

    path, overrides, _ = PAIRS[pair]
    arm = seed % ZOO_ARMS if overrides is None else 0
    if (pair, blocks, arm) not in _ENVS:
        overrides = _zoo_overrides(arm) if overrides is None else overrides
        scenario = load_scenario(from_root(path), [*overrides, f"task.blocks={blocks}"])
        for robot in scenario.robots:
            robot.policy = "expert"
        _ENVS[pair, blocks, arm] = TurnTakingEnv(scenario)
    return _ENVS[pair, blocks, arm]


def play(pair: str, policy: str, seed: int, blocks: int = 6) -> dict:
    """One episode of ``pair`` with ``policy`` on the pair's varied robot."""
    import robot_mirror.mirror.policy  # noqa: F401  (registers policy: mirror)
    from robot_mirror.policies import build_policies, rollout

    env = _env(pair, blocks, seed)
    robot = PAIRS[pair][2]
    env.scenario.robot(robot).policy = "expert" if policy == "constant" else policy
    policies = build_policies(env, env.scenario)
    if policy == "constant":
        policies[robot].turn_end_predictor = lambda obs: 0.0
    return rollout(env, policies, seed)


def _task(job: tuple[str, str, int, int]) -> tuple[str, str, int, dict]:
    pair, policy, seed, blocks = job
    return pair, policy, seed, play(pair, policy, seed, blocks)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=20, help="episodes per pair and policy (seeds 0..N-1)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--blocks", type=int, default=6)
    ap.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    ap.add_argument("--policies", nargs="+", default=POLICIES, choices=POLICIES)
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = ap.parse_args(argv)

    jobs = [(pair, pol, seed, args.blocks) for pair in args.pairs for pol in args.policies
            for seed in range(args.seeds)]
    results: dict[tuple[str, str], dict[int, dict]] = {(pair, pol): {} for pair in args.pairs
                                                       for pol in args.policies}
    wall = run_pool(_task, jobs, args.workers, lambda r: results[r[0], r[1]].__setitem__(r[2], r[3]))

    figures = {pair: {pol: tower_totals(results[pair, pol]) for pol in args.policies} for pair in args.pairs}
    print(f"\n{'pair':<18}{'policy':<10}{'success':>9}{'violations':>12}{'min dist [m]':>14}{'disturbed':>11}")
    for pair, row in figures.items():
        for pol, a in row.items():
            print(f"{pair:<18}{pol:<10}{a['successes']:>5}/{a['episodes']:<3}{a['zone_violations']:>12}"
                  f"{a['min_arm_distance']:>14.3f}{a['tower_disturbances']:>11}")
    cells = [a for row in figures.values() for a in row.values()]
    ok = all(a["zone_violations"] == 0 and a["min_arm_distance"] >= MIN_DISTANCE for a in cells)
    print(f"\nsafe waiting: {'yes' if ok else 'NO'} (0 violations, arms >= {MIN_DISTANCE} m apart)")
    write_json(args.json, {
        "ok": ok,
        "min_distance_goal": MIN_DISTANCE,
        "blocks": args.blocks,
        "pairs": figures,
        **pool_figures(args.seeds, args.workers, wall),
    })
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
