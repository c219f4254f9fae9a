"""Per-episode summary figures of in-process runs, for before/after checks of
speed work that must not change behaviour.

Runs launch/tower.yaml (mirror on both arms) and launch/tower_mixed.yaml
(expert on both arms) for seeds 0 and 1 and writes every summary figure but
the wall-clock ones to a JSON file; two such files from two commits must be
identical. Usage (from the repository root):

    python bench/policy_equivalence.py out.json
"""

from __future__ import annotations

import json
import sys
import time

import robot_mirror.mirror  # noqa: F401  (registers policy: mirror)
from robot_mirror.config.scenario import load_scenario
from robot_mirror.env import TurnTakingEnv
from robot_mirror.policies import build_policies, rollout

RUNS = (("launch/tower.yaml", []),
        ("launch/tower_mixed.yaml", ["robots.panda.policy=expert", "robots.iiwa.policy=expert"]))


def main(out_path: str) -> None:
    out = {}
    for path, overrides in RUNS:
        scenario = load_scenario(path, overrides)
        env = TurnTakingEnv(scenario)
        policies = build_policies(env, scenario)
        for seed in (0, 1):
            start = time.perf_counter()
            summary = rollout(env, policies, seed)
            print(f"{path} seed {seed}: real-time factor {summary['real_time_factor']}, "
                  f"{time.perf_counter() - start:.1f} s", flush=True)
            summary.pop("wall_seconds")
            summary.pop("real_time_factor")
            out[f"{path}:{seed}"] = summary
        env.close()
    with open(out_path, "w") as fh:
        json.dump(out, fh, indent=1, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1])
