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
one thread (bench/mirror_inference.py measures it). Every tick advances only
the recurrent state; the heads run when the motion layer asks (the turn-end
head only during the partner's turn, when prefetching is considered; the
target head only for the imitation follower). They are the same operations
on the same state as :meth:`MirrorNet.step`, so the answers are identical;
the motor, segment and prediction heads, which no policy reads, never run.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

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
        key = self.model.type_key(self.robot_type)
        self._embed_self = plain_embedding(self.model.self_norm[key], self.model.self_adapters[key])
        self._embed_other = plain_embedding(self.model.other_norm, self.model.other_adapter)
        # What the network tells each task's motion layer (see module docstring).
        self.expert = make_expert(ctx, turn_end_predictor=self.predicted_turn_end,
                                  slot_source=self.recognised_slot)
        self.reset()

    def reset(self) -> None:
        self.hidden: torch.Tensor | None = None  # (2, H): own stream, observed stream
        self._partner_turn = False
        self.expert.reset()

    def observe(self, obs: dict[str, Any]) -> None:
        """Advance the network by one tick on both streams."""
        own = torch.from_numpy(self_features(obs["q"], obs["dq"], np.float32(obs["gripper"])))[None]
        seen = torch.from_numpy(other_features(obs["seen_partner_keypoints"], obs["seen_partner_ee_pose"],
                                               np.float32(obs["seen_partner_gripper"]),
                                               np.float32(obs["partner_observed"])))[None]
        model = self.model
        with torch.inference_mode():
            h = self.hidden if self.hidden is not None else torch.cat(model.initial_state(1), dim=0)
            x = torch.cat([self._embed_self(own), self._embed_other(seen)], dim=0)
            core = model.core
            self.hidden = torch.gru_cell(x, h, core.weight_ih_l0, core.weight_hh_l0, core.bias_ih_l0,
                                         core.bias_hh_l0)
        self._partner_turn = bool(obs["holder"]) and not obs["my_turn"]

    def act(self, obs: dict[str, Any]):
        self.observe(obs)
        return self.expert.act(obs)

    # what the network tells the motion layer --------------------------------
    def predicted_turn_end(self, obs: dict[str, Any]) -> float | None:
        if self.hidden is None or not self._partner_turn:
            return None
        with torch.inference_mode():
            turn_end = self.model.turn_end_seconds(self.hidden[1:])
        return max(0.0, float(turn_end[0]))

    def recognised_slot(self, obs: dict[str, Any]) -> int:
        n = len(obs["slots"])
        with torch.inference_mode():
            obs_target = self.model.target_head(self.hidden)[1:]  # both rows, as MirrorNet.step runs it
        return int(torch.argmax(obs_target[0][:n]))


def plain_embedding(norm: nn.Module, mlp: nn.Sequential) -> Callable[[torch.Tensor], torch.Tensor]:
    """``mlp(norm(x))`` (MirrorNet.embed_self / embed_other) as plain tensor
    calls: the same kernels on the same weights, so the same numbers, without
    nn.Module's per-call dispatch, which cost as much as the arithmetic on
    these tiny layers. tests/test_mirror_policy.py holds it to MirrorNet.step."""
    mean, std = norm.mean, norm.std
    layers: list[Callable[[torch.Tensor], torch.Tensor]] = []
    for module in mlp:
        if type(module) is nn.Linear:
            layers.append(partial(F.linear, weight=module.weight, bias=module.bias))
        elif type(module) is nn.Tanh:
            layers.append(torch.tanh)
        else:
            layers.append(module)

    def run(x: torch.Tensor) -> torch.Tensor:
        x = torch.nan_to_num((x - mean) / std, nan=0.0, posinf=0.0, neginf=0.0)
        for layer in layers:
            x = layer(x)
        return x
    return run


def check_mirror_policy(scenario, robot: str) -> None:
    """Fail early, in one line, on a missing, corrupt or wrong-robot checkpoint."""
    load_checkpoint(resolve_checkpoint(scenario, robot), robot_type=robot_type_of(scenario.robot(robot).urdf))
