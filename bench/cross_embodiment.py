"""One mirror network for every body: the cross-embodiment table and leave-one-arm-out.

Records tower demonstrations with unseen seeds (0 .. N-1; training uses 1000
on) for each pair of arms — Panda+Panda, Panda+iiwa, mirror_arm+Panda,
xArm6+Panda and generated zoo arms beside a Panda — at the scenarios' default
perception, and scores every checkpoint given on every (observer, partner)
cell (``robot_mirror.studies.cross_embodiment``). ``--without TYPE=CK`` adds
a leave-one-arm-out network: its figures on the cells holding TYPE, and their
ratio to the first checkpoint's on the same cells.

    python bench/cross_embodiment.py --checkpoint sim_assets/mirror_tower.pt \
        --checkpoint panda_only=sim_assets/mirror_tower_panda_only.pt \
        --without kuka_iiwa/model.urdf=/tmp/no_iiwa.pt --episodes 4 \
        --json docs/results/cross_embodiment.json

The first ``--checkpoint`` is the one the leave-one-out ratios compare with.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/_common.py; see its docstring
from _common import from_root, pairs, write_json  # noqa: E402

_ENVS: dict = {}  # per process: pair name -> TurnTakingEnv


def play(job: tuple[str, str, list[str], str, str, int]) -> tuple[str, str, int, dict]:
    """One tower episode of a pair with ``policy`` on both arms (the mirror runs ``checkpoint``)."""
    import robot_mirror.mirror.policy  # noqa: F401  (registers policy: mirror)
    from robot_mirror.config.scenario import load_scenario
    from robot_mirror.env import TurnTakingEnv
    from robot_mirror.policies import build_policies, rollout

    pair, scenario_path, overrides, label, checkpoint, seed = job
    if pair not in _ENVS:
        _ENVS[pair] = TurnTakingEnv(load_scenario(from_root(scenario_path), overrides))
    env = _ENVS[pair]
    for robot in env.scenario.robots:
        robot.policy = "mirror" if checkpoint else "expert"
        robot.checkpoint = checkpoint or None
    summary = rollout(env, build_policies(env, env.scenario), seed)
    return pair, label, seed, summary


def online(wanted: dict, networks: list[tuple[str, str]], seeds: int, workers: int) -> dict:
    """Tower success, violations, minimum arm distance and hand-off gap per pair,
    for the reactive expert on both arms and for each network on both arms."""
    from _common import run_pool

    variants = [("expert", "")] + [(f"mirror:{name}", path) for name, path in networks]
    jobs = [(pair, sc, ov, label, ck, seed) for pair, (sc, ov) in wanted.items() for label, ck in variants
            for seed in range(seeds)]
    results: dict = {}
    run_pool(play, jobs, workers, lambda r: results.setdefault((r[0], r[1]), {}).__setitem__(r[2], r[3]))
    out: dict = {}
    for (pair, label), eps in sorted(results.items()):
        gaps = [g for e in eps.values() for g in e.get("handoff_gaps", [])]
        out.setdefault(pair, {})[label] = {
            "episodes": len(eps), "success": sum(e["success"] for e in eps.values()) / len(eps),
            "zone_violations": sum(e["zone_violations"] for e in eps.values()),
            "min_arm_distance": min(e["min_arm_distance"] for e in eps.values()),
            "mean_handoff_gap_s": sum(gaps) / len(gaps) if gaps else None,
            "failed_seeds": sorted(s for s, e in eps.items() if not e["success"])}
    return out


def record(name: str, scenario: str, overrides: list[str], episodes: int, seed: int, cache: Path):
    """Demonstrations of one pair (reused from ``cache`` when already there)."""
    from robot_mirror.mirror.dataset import load_demos
    from robot_mirror.studies.evaluate import record_demos

    out = cache / name
    if (out / "meta.json").is_file():
        return load_demos(out)
    return record_demos(from_root(scenario), episodes, seed, out, overrides)


def parse_named(items: list[str]) -> list[tuple[str, str]]:
    named = []
    for i, item in enumerate(items):
        name, sep, path = item.rpartition("=")
        named.append((name if sep else ("shipped" if i == 0 else Path(path).stem), from_root(path)))
    return named


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", action="append", required=True, help="[NAME=]PATH; the first is the reference")
    ap.add_argument("--without", action="append", default=[], help="ARM_TYPE=PATH: a network trained without it")
    ap.add_argument("--episodes", type=int, default=4, help="unseen episodes per pair (half fit, half scored)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--zoo", type=int, nargs="*", default=[3, 5], help="zoo arm indices (generator seed 0)")
    ap.add_argument("--pairs", nargs="*", help="only these pair names")
    ap.add_argument("--online-seeds", type=int, default=0,
                    help="also play N unseen tower episodes per pair: expert, and each --checkpoint on both arms")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--demos-dir", default="runs/cross_embodiment_demos", help="cache of the recorded pairs")
    ap.add_argument("--json", default="docs/results/cross_embodiment.json")
    args = ap.parse_args(argv)
    import torch

    from robot_mirror.mirror.checkpoint import load_checkpoint
    from robot_mirror.studies.cross_embodiment import cross_embodiment_table, leave_one_out_summary

    torch.set_num_threads(1)
    start = time.time()
    cache = Path(from_root(args.demos_dir))
    wanted = pairs(cache / "zoo_urdf", args.zoo)
    wanted = {k: v for k, v in wanted.items() if not args.pairs or k in args.pairs}
    demos = {name: record(name, sc, ov, args.episodes, args.seed, cache) for name, (sc, ov) in wanted.items()}
    networks, without = parse_named(args.checkpoint), parse_named(args.without)
    tables, trained = {}, {}
    for name, path in networks + [(f"without:{t}", p) for t, p in without]:
        ck = load_checkpoint(path)
        trained[name] = {"path": path, "trained_on": ck.robot_types, "sources": ck.info["data"].get("sources")}
        tables[name] = cross_embodiment_table(ck.model.eval(), demos, seed=args.seed)
        print(f"{name}: {len(tables[name])} cells", flush=True)
    reference = networks[0][0]
    played = online(wanted, networks, args.online_seeds, args.workers) if args.online_seeds else {}
    loo = [leave_one_out_summary(t, tables[f"without:{t}"], tables[reference]) for t, _ in without]
    write_json(Path(from_root(args.json)), {
        "cross_embodiment": tables, "leave_one_out": loo, "online": played, "online_seeds": args.online_seeds,
        "checkpoints": trained, "reference": reference,
        "pairs": {k: {"scenario": sc, "overrides": ov, "seeds": [e["seed"] for e in demos[k].meta["episodes"]]}
                  for k, (sc, ov) in wanted.items()},
        "episodes_per_pair": args.episodes, "perception": "default (the scenarios' level)",
        "wall_seconds": round(time.time() - start, 1)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
