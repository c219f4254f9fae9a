"""``policy: mirror``: MirrorNet in the control loop.

Every tick the network runs once on both streams: the arm's own joints and
its partner as perceived (``obs['seen_partner_*']``, observer frame). What
it recognises drives the arm:

- tower: the predicted time until the partner's turn ends. When that is no
  longer than the time needed to fetch the next block, the arm fetches it
  during the partner's turn, waits at the edge of the shared zone, and goes
  in the moment the turn is granted (the scripted expert's anticipation
  hook does the motion);
- imitation: as follower, the slot recognised from the leader's motion: the
  target head on the observed stream when the follower's turn begins (the
  recurrent state has integrated the leader's whole move; summing per-tick
  beliefs over the turn did worse, 8/12 against 12/12 rounds in a trial).
  The slot label never reaches this policy, and neither does any block
  pose: the recognised slot is handed to the arm's IK planner.

Inference: one GRU-cell call for both streams, ``torch.inference_mode``,
one thread (bench/mirror_inference.py measures it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from robot_mirror.errors import ConfigError
from robot_mirror.mirror.checkpoint import load_checkpoint
from robot_mirror.mirror.features import other_features, robot_type_of, self_features
from robot_mirror.policies import PolicyContext
from robot_mirror.policies.builtin import make_expert
from robot_mirror.sim.assets import PROJECT_ROOT

DEFAULT_CHECKPOINTS = {
    "tower": "sim_assets/mirror_tower.pt",
    "imitation": "sim_assets/mirror_imitation.pt",
}


def resolve_checkpoint(scenario, robot: str) -> Path:
    configured = scenario.robot(robot).checkpoint
    kind = scenario.task.kind
    name = configured or DEFAULT_CHECKPOINTS.get(kind)
    if name is None:
        raise ConfigError(f"{scenario.source}: robots.{robot}.checkpoint is required for task '{kind}'")
    for base in (scenario.base_dir, PROJECT_ROOT, Path.cwd()):
        path = (base / name).resolve()
        if path.is_file():
            return path
    where = f"robots.{robot}.checkpoint" if configured else f"the shipped checkpoint for '{kind}'"
    raise ConfigError(f"{scenario.source}: {where} '{name}' not found")


class MirrorPolicy:
    def __init__(self, ctx: PolicyContext, checkpoint: str | Path | None = None) -> None:
        torch.set_num_threads(1)
        spec, scenario = ctx.spec, ctx.scenario
        self.robot_type = robot_type_of(scenario.robot(spec.name).urdf)
        path = Path(checkpoint) if checkpoint else resolve_checkpoint(scenario, spec.name)
        self.checkpoint = load_checkpoint(path, robot_type=self.robot_type)
        self.model = self.checkpoint.model.eval()
        self.name = spec.name
        # What the network tells each task's motion layer (see module docstring).
        self.expert = make_expert(ctx, turn_end_predictor=self.predicted_turn_end,
                                  slot_source=self.recognised_slot)
        self.reset()

    def reset(self) -> None:
        self.state = None
        self.last = None
        self._partner_turn = False
        self.expert.reset()

    def observe(self, obs: dict[str, Any]) -> None:
        """Advance the network by one tick on both streams."""
        own = torch.from_numpy(self_features(obs["q"], obs["dq"], np.float32(obs["gripper"])))[None]
        seen = torch.from_numpy(other_features(obs["seen_partner_keypoints"], obs["seen_partner_ee_pose"],
                                               np.float32(obs["seen_partner_gripper"]),
                                               np.float32(obs["partner_observed"])))[None]
        with torch.inference_mode():
            self.last = self.model.step(self.robot_type, own, seen, state=self.state)
        self.state = self.last.state
        self._partner_turn = bool(obs["holder"]) and not obs["my_turn"]

    def act(self, obs: dict[str, Any]):
        self.observe(obs)
        return self.expert.act(obs)

    # what the network tells the motion layer --------------------------------
    def predicted_turn_end(self, obs: dict[str, Any]) -> float | None:
        if self.last is None or not self._partner_turn:
            return None
        return max(0.0, float(self.last.turn_end[0]))

    def recognised_slot(self, obs: dict[str, Any]) -> int:
        n = len(obs["slots"])
        return int(torch.argmax(self.last.obs_target[0][:n]))


def check_mirror_policy(scenario, robot: str) -> None:
    """Fail early, in one line, on a missing, corrupt or wrong-robot checkpoint."""
    load_checkpoint(resolve_checkpoint(scenario, robot), robot_type=robot_type_of(scenario.robot(robot).urdf))
