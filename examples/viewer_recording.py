"""Record the viewer's data for one in-process tower episode driven by the
mirror network, readouts included (the recording behind docs/viewer.png).

    .venv/bin/python examples/viewer_recording.py --out runs/viewer.rrd
    rerun runs/viewer.rrd        # or: rerun runs/viewer.rrd --web-viewer

``launch --inprocess --rrd FILE`` records the same, with the readouts of
every policy that has ``readouts()`` (MirrorPolicy has; docs/viewer.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import robot_mirror.mirror  # noqa: F401  (registers policy: mirror)
from robot_mirror.config.scenario import load_scenario
from robot_mirror.env import TurnTakingEnv
from robot_mirror.policies import build_policies, rollout
from robot_mirror.viewer.config import ViewerConfig
from robot_mirror.viewer.logger import Viewer, inprocess_hook

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/viewer.rrd", help="recording file to write")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    scenario = load_scenario(ROOT / "launch/tower.yaml", ["task.blocks=2", f"seed={args.seed}"])
    env = TurnTakingEnv(scenario)
    policies = build_policies(env, scenario)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    viewer = Viewer(scenario, ViewerConfig(rrd=args.out, camera_every=30))
    try:
        summary = rollout(env, policies, scenario.seed, inprocess_hook(viewer, env, policies))
    finally:
        viewer.close()
        env.close()
    print(f"{summary['sim_seconds']} s simulated, success {summary['success']} -> {args.out}")


if __name__ == "__main__":
    main()
