"""``policy: mirror`` and ``policy: mirror_lesioned``: MirrorNet in the control loop.

Every tick the network runs once on both streams: the arm's own body (its
keypoints and tool in its own base frame) and its partner as perceived
(``obs['seen_partner_*']``, the same description). What it recognises drives
the arm:

- tower: the predicted time until the partner's turn ends (the turn-end head
  on the observed stream). When that is no longer than the time needed to
  fetch the next block, the arm fetches it during the partner's turn, waits
  at the edge of the shared zone, and goes in the moment the turn is granted
  (the scripted expert's anticipation hook does the motion);
- imitation: as follower, the slot recognised from the leader's motion: the
  target head, trained on the arm's *own* placements only, read on the
  observed stream. The slot label never reaches this policy. (Block poses do:
  they are in every observation, and the scripted motion layer uses them to
  grasp its own block; the recognised slot is the only thing the network
  hands it.)

The network has no per-arm part, so any arm can run any checkpoint.
``mirror_lesioned`` is the same network with its most mirror-like units (the
top ``LESION_K`` by tuning correlation, stored in the checkpoint's metrics as
``mirror_units``) silenced at every tick: the causal control of every
behaviour credited to the mirror.

Inference: one GRU-cell call for both streams, ``torch.inference_mode``,
one thread (bench/mirror_inference.py measures it). The heads run only when
the motion layer asks (the turn-end head during the partner's turn, the
target head for the imitation follower).
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
from robot_mirror.mirror.features import body_features
from robot_mirror.mirror.model import LESION_K
from robot_mirror.mirror.motor import MotorCommand, decode, motor_context
from robot_mirror.mirror.motor_expert import NetworkImitationExpert, NetworkMotorExpert
from robot_mirror.mirror.motor_train import motor_head_of
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
    def __init__(self, ctx: PolicyContext, checkpoint: str | Path | None = None, *, lesioned: bool = False) -> None:
        torch.set_num_threads(1)
        spec, scenario = ctx.spec, ctx.scenario
        path = Path(checkpoint) if checkpoint else resolve_checkpoint(scenario, spec.name)
        self.checkpoint = load_checkpoint(path)
        self.model = self.checkpoint.model.eval()
        self.name = spec.name
        self.frame = scenario.robot(spec.name).base_frame()
        partner = next(r for r in scenario.robot_names if r != spec.name)
        self.partner_frame = scenario.robot(partner).base_frame()
        self.lesion = lesion_mask(self.checkpoint, path) if lesioned else None
        self._embed = plain_embedding(self.model.body_norm, self.model.body_layer)
        # What the network tells each task's motion layer (see module docstring).
        if scenario.robot(spec.name).motor == "network":
            self.expert = self._network_motor(ctx, path)
        else:
            self.expert = make_expert(ctx, turn_end_predictor=self.predicted_turn_end,
                                      slot_source=self.recognised_slot)
        self.reset()

    def reset(self) -> None:
        self.hidden: torch.Tensor | None = None  # (2, H): own stream, observed stream
        self._partner_turn = False
        self.expert.reset()

    def observe(self, obs: dict[str, Any]) -> None:
        """Advance the network by one tick on both streams."""
        own = body_features(self.frame.points_to_local(obs["keypoints"]), self.frame.pose_to_local(obs["ee_pose"]),
                            np.float32(obs["gripper"]), np.float32(1.0))
        seen = body_features(obs["seen_partner_keypoints"], obs["seen_partner_ee_pose"],
                             np.float32(obs["seen_partner_gripper"]), np.float32(obs["partner_observed"]))
        model = self.model
        with torch.inference_mode():
            h = self.hidden if self.hidden is not None else torch.cat(model.initial_state(1), dim=0)
            x = self._embed(torch.from_numpy(np.stack([own, seen])))
            h = model.cell(x, h)
            self.hidden = h * self.lesion if self.lesion is not None else h
        self._partner_turn = bool(obs["holder"]) and not obs["my_turn"]

    def act(self, obs: dict[str, Any]):
        self.observe(obs)
        return self.expert.act(obs)

    def _network_motor(self, ctx: PolicyContext, path: Path) -> NetworkMotorExpert:
        """``motor: network``: the readout moves the arm (mirror/motor_expert.py),
        told what the network recognises as the planner would be."""
        self.motor = required_motor_head(self.checkpoint, path, ctx.spec.name)
        sc = ctx.scenario
        if sc.task.kind == "imitation":
            return NetworkImitationExpert(ctx.spec, sc.task, sc.control_hz, ctx.kinematics,
                                          slot_source=self.recognised_slot, readout=self.motor_command)
        return NetworkMotorExpert(ctx.spec, sc.task, sc.control_hz, ctx.kinematics,
                                  turn_end_predictor=self.predicted_turn_end, readout=self.motor_command)

    def motor_command(self, obs: dict[str, Any], block: int) -> MotorCommand:
        """The motor readout on the own-stream state: where the tool goes next,
        toward where the motion layer says the block lands (the tower top; the
        recognised slot)."""
        place = self.expert.landing_point(obs)
        context = torch.from_numpy(motor_context(obs, self.frame, block, place))
        with torch.inference_mode():
            out = self.motor(self.hidden[0:1], context[None])[0]
            segment = self.model.config.segments[int(torch.argmax(self.model.segment_head(self.hidden[0])))]
        command = decode(self.motor, out, context, obs, self.frame)
        command.segment = segment if segment != "wait" else "reach"
        return command

    # what the network tells the motion layer --------------------------------
    def predicted_turn_end(self, obs: dict[str, Any]) -> float | None:
        if self.hidden is None or not self._partner_turn:
            return None
        with torch.inference_mode():
            turn_end = self.model.turn_end_seconds(self.hidden[1:])
        return max(0.0, float(turn_end[0]))

    def recognised_slot(self, obs: dict[str, Any]) -> int:
        """The task's slot of what the partner is recognised doing. The heads
        name slots in the actor's own frame (``dataset.egocentric_slots``): the
        partner's own slot e is task slot e if its lateral axis runs along the
        slot numbering, else K-1-e (a mirror game is a left-right swapped copy)."""
        n = len(obs["slots"])
        if self.hidden is None:
            return 0
        with torch.inference_mode():
            obs_target = self.model.target_head(self.hidden[1:])
        e = int(torch.argmax(obs_target[0][:n]))
        slots = np.asarray(obs["slots"], float)[:, :2]
        yaw = self.partner_frame.yaw
        lateral = np.array([-np.sin(yaw), np.cos(yaw)])
        return n - 1 - e if n > 1 and float(lateral @ (slots[-1] - slots[0])) < 0 else e

    def labels(self) -> tuple[str, int, int]:
        """(segment, target, block) of what the arm is doing (its motion layer's)."""
        return self.expert.labels()

    def readouts(self) -> dict[str, Any] | None:
        """What the network says now, for viewers (docs/viewer.md): the turn-end
        prediction, the partner's recognised segment/target (own-action heads on the
        observed stream; ``self_*`` on the own stream), and the core's activations
        (own stream, then observed stream)."""
        if self.hidden is None:
            return None
        m = self.model
        with torch.inference_mode():
            seg = torch.softmax(m.segment_head(self.hidden), -1)
            tgt = torch.softmax(m.target_head(self.hidden), -1)
            turn_end = max(0.0, float(m.turn_end_seconds(self.hidden[1:])[0]))
        return {"turn_end_pred_s": turn_end if self._partner_turn else None,
                "segment_probs": seg[1].tolist(), "target_probs": tgt[1].tolist(),
                "self_segment_probs": seg[0].tolist(), "self_target_probs": tgt[0].tolist(),
                "core": self.hidden.reshape(-1).tolist(), "segment_names": list(m.config.segments)}


def lesion_mask(checkpoint, path: Path) -> torch.Tensor:
    """1 everywhere but the checkpoint's ``mirror_units`` (the top ``LESION_K``)."""
    units = checkpoint.metrics.get("mirror_units")
    if not units:
        raise ConfigError(f"{path}: has no 'mirror_units' in its metrics, so it cannot be lesioned; "
                          "retrain it with `robot-mirror train`")
    mask = torch.ones(checkpoint.model.config.hidden)
    mask[torch.as_tensor([int(u) for u in units[:LESION_K]])] = 0.0
    return mask


def plain_embedding(norm: nn.Module, mlp: nn.Sequential) -> Callable[[torch.Tensor], torch.Tensor]:
    """``mlp(norm(x))`` (MirrorNet.embed) as plain tensor
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
    """Fail early, in one line, on a missing or corrupt checkpoint (any arm may
    run it), or one without the motor readout that ``motor: network`` needs."""
    path = resolve_checkpoint(scenario, robot)
    checkpoint = load_checkpoint(path)
    trained_on = (checkpoint.info.get("data") or {}).get("task")
    if trained_on and trained_on != scenario.task.kind:  # its heads name another task's actions
        raise ConfigError(f"{scenario.source}: robots.{robot}.checkpoint '{path.name}' was trained on the "
                          f"'{trained_on}' task, this scenario is '{scenario.task.kind}'; use one trained on it, "
                          f"e.g. {DEFAULT_CHECKPOINTS.get(scenario.task.kind, 'robot-mirror train')}")
    if scenario.robot(robot).motor == "network":
        required_motor_head(checkpoint, path, robot)


def required_motor_head(checkpoint, path: Path, robot: str):
    """The checkpoint's motor readout, which ``motor: network`` needs (one line if absent)."""
    head = motor_head_of(checkpoint)
    if head is None:
        raise ConfigError(f"{path}: has no motor readout, needed by robots.{robot}.motor = network; "
                          "fit one with `robot-mirror train-motor`")
    return head
