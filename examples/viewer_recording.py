"""Record the viewer's data for one in-process tower episode driven by the
mirror network, readouts included (the recording behind docs/viewer.png).

    .venv/bin/python examples/viewer_recording.py --out runs/viewer.rrd
    rerun runs/viewer.rrd        # or: rerun runs/viewer.rrd --web-viewer

``launch --inprocess --rrd FILE`` records the same, with the readouts of
every policy that has ``readouts()`` (docs/viewer.md). Until MirrorPolicy
has that method, this script gives it a stand-in computed from the
network's own heads, with the expert inside it as ``labels()``.
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
SEGMENTS = ["wait", "reach", "grasp", "carry", "place", "retreat"]


def standin_readouts(policy):
    """The readouts contract from a MirrorPolicy's state (a stand-in)."""
    import torch

    def readouts():
        h = policy.hidden
        if h is None:
            return None
        model = policy.model
        with torch.inference_mode():
            seen = h[1:]
            seg = torch.softmax(model.segment_head(seen), -1)[0]
            tgt = torch.softmax(model.target_head(seen), -1)[0]
            pred = max(0.0, float(model.turn_end_seconds(seen)[0])) if policy._partner_turn else None
        return {"turn_end_pred_s": pred, "segment_probs": seg.tolist(), "target_probs": tgt.tolist(),
                "core": h.flatten().tolist(), "segment_names": SEGMENTS}

    return readouts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/viewer.rrd", help="recording file to write")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    scenario = load_scenario(ROOT / "launch/tower.yaml", ["task.blocks=2", f"seed={args.seed}"])
    env = TurnTakingEnv(scenario)
    policies = build_policies(env, scenario)
    for policy in policies.values():
        if not hasattr(policy, "readouts"):
            policy.readouts = standin_readouts(policy)
        if not hasattr(policy, "labels") and hasattr(policy, "expert"):
            policy.labels = policy.expert.labels
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
