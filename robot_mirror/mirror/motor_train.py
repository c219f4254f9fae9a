"""Fitting the motor readout (``robot-mirror train-motor``).

The mirror core is frozen: its own-stream states over every demonstration
are computed once, and the readout (:class:`~robot_mirror.mirror.motor.MotorHead`)
learns to map them, with the arm's own perception of its work, to the
planner's commands recorded beside them (behaviour cloning; the planner is
the teacher and nothing else). Seeded and CPU only; a minute on 2 cores.

Held-out episodes (a fifth, whole episodes) give the readout's figures
beside their trivial baselines: the waypoint error of the constant (the mean
training command) and the gripper/done accuracy of the majority class.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from robot_mirror.errors import RobotMirrorError
from robot_mirror.files import write_atomic
from robot_mirror.geometry import Frame
from robot_mirror.mirror.checkpoint import load_checkpoint, read_checkpoint
from robot_mirror.mirror.dataset import load_demos, read_npz
from robot_mirror.mirror.model import MirrorNet
from robot_mirror.mirror.motor import (CONTEXT_DIM, CONTEXT_INPUTS, SEGMENT_ACTIVE, SEGMENT_DONE, MotorHead,
                                       motor_context, place_point, reference_of, reference_point)

MOTOR_KEYS = ("motor_state", "motor_waypoint", "motor_speed", "motor_grip")
CONTEXT_KEYS = (*CONTEXT_INPUTS, "motor_block")


@dataclass
class MotorOptions:
    seed: int = 0
    steps: int = 20000  # 4000 underfit: held-out waypoint error 14 mm against 4.7 mm
    batch: int = 1024
    lr: float = 2e-3
    blind: bool = False
    held_out: float = 0.2


def stream_contexts(arrays: dict[str, np.ndarray], robot: int, frame: Frame, tower_xy: np.ndarray,
                    size: float) -> np.ndarray:
    """The readout's input, tick by tick, rebuilt from what the demonstration kept
    (the same :func:`motor_context` the arm runs online, on the landing point
    the planner aimed at; tower recordings without ``motor_place`` rebuild it)."""
    a = {k: arrays[f"r{robot}_{k}"] for k in CONTEXT_KEYS}
    places = arrays.get(f"r{robot}_motor_place")
    out = np.zeros((len(a["motor_block"]), CONTEXT_DIM), np.float32)
    for t in range(len(out)):
        obs = {k: a[k][t] for k in CONTEXT_KEYS}
        block = int(obs["motor_block"])
        if block < 0:
            continue  # no pick-and-place under way: not trained on
        place = places[t] if places is not None else place_point(obs, tower_xy, size, block)
        out[t] = motor_context(obs, frame, block, place)
    return out


def motor_rows(model: MirrorNet, directory: str | Path, first_episode: int = 0) -> list[dict[str, np.ndarray]]:
    """Per stream (episode, robot) of a demonstration folder's successful
    episodes: the frozen core's own-stream states beside the motor input and
    the planner's commands; episodes numbered from ``first_episode`` (several
    folders, one split)."""
    demos = load_demos(directory)
    meta = demos.meta
    if "tower_xy" not in meta or any("base" not in r for r in meta["robots"]):
        raise RobotMirrorError(f"{demos.path / 'meta.json'}: no tower_xy / robot bases; record it again with "
                               "this version's `robot-mirror demos`")
    frames = [Frame(r["base"], math.radians(float(r["yaw_deg"]))) for r in meta["robots"]]
    tower_xy, size = np.asarray(meta["tower_xy"], float), float(meta["block_size"])
    rows, current, arrays = [], -1, {}
    for s in demos.streams:
        if not meta["episodes"][s.episode]["success"]:
            continue  # a teacher that failed (e.g. knocked the tower while perturbed) teaches nothing to copy
        path = demos.path / meta["episodes"][s.episode]["file"]
        if s.episode != current:  # an episode's two streams are adjacent: its file is read once
            current, arrays = s.episode, read_npz(path)
        needed = [f"r{s.robot}_{k}" for k in (*MOTOR_KEYS, *CONTEXT_KEYS)]
        if any(k not in arrays for k in needed):
            raise RobotMirrorError(f"{path}: has no motor arrays (r{s.robot}_motor_*); record it again with "
                                   "this version's `robot-mirror demos`")
        _check_motor_shapes(path, arrays, s.robot, s.ticks)
        with torch.inference_mode():
            out = model(torch.from_numpy(s.own)[None], torch.from_numpy(s.seen)[None])
        row = {k: arrays[f"r{s.robot}_{k}"] for k in MOTOR_KEYS}
        row["motor_context"] = stream_contexts(arrays, s.robot, frames[s.robot], tower_xy, size)
        row["states"] = out.self_states[0].numpy()
        held = arrays[f"r{s.robot}_holding"] == arrays[f"r{s.robot}_motor_block"]
        row["motor_reference"] = np.array([reference_of(demos.segments[k], h) for k, h in zip(s.segment, held)])
        row["episode"] = np.full(s.ticks, first_episode + s.episode)
        rows.append(row)
    return rows


def _check_motor_shapes(path: Path, arrays: dict[str, np.ndarray], robot: int, ticks: int) -> None:
    """One line naming the array, not a broadcasting traceback, for a file whose teacher arrays
    do not have the shapes `robot-mirror demos` writes (``motor_place`` is optional: older tower
    recordings rebuild it)."""
    shapes = {"motor_state": (ticks,), "motor_block": (ticks,), "motor_waypoint": (ticks, 4),
              "motor_speed": (ticks,), "motor_grip": (ticks,), "motor_place": (ticks, 3)}
    for key, shape in shapes.items():
        a = arrays.get(f"r{robot}_{key}")
        if a is not None and tuple(a.shape) != shape:
            raise RobotMirrorError(f"{path}: r{robot}_{key} has shape {tuple(a.shape)}, expected {shape}")


def _stack(rows: list[dict[str, np.ndarray]], episodes: set[int]) -> dict[str, torch.Tensor]:
    keep = [r for r in rows if int(r["episode"][0]) in episodes]
    cat = {k: np.concatenate([r[k] for r in keep])
           for k in ("states", "motor_context", "motor_reference", *MOTOR_KEYS)}
    mask = (cat["motor_state"] == SEGMENT_ACTIVE) | (cat["motor_state"] == SEGMENT_DONE)
    return {k: torch.from_numpy(np.asarray(v[mask])) for k, v in cat.items()}


def offsets(data: dict[str, torch.Tensor]) -> torch.Tensor:
    """The teacher's waypoint as an offset from its reference (base frame) and its yaw change."""
    point = reference_point(data["motor_context"], data["motor_reference"])
    return torch.cat([data["motor_waypoint"][:, :3] - point, data["motor_waypoint"][:, 3:]], 1)


def _losses(head: MotorHead, data: dict[str, torch.Tensor], idx: torch.Tensor) -> torch.Tensor:
    out = head(data["states"][idx], data["motor_context"][idx])
    active = data["motor_state"][idx] == SEGMENT_ACTIVE
    done = (data["motor_state"][idx] == SEGMENT_DONE).float()
    loss = F.binary_cross_entropy_with_logits(out[:, 9], done)
    if bool(active.any()):
        part = {k: v[idx][active] for k, v in data.items()}
        o = out[active]
        loss = loss + F.cross_entropy(o[:, 0:3], part["motor_reference"].long())
        target = offsets(part) / head.out_scale
        loss = loss + F.smooth_l1_loss(o[:, 3:7], target, beta=0.05)
        loss = loss + F.binary_cross_entropy_with_logits(o[:, 8], part["motor_grip"].clamp(0, 1))
        speed = part["motor_speed"]
        moving = ~torch.isnan(speed)
        if bool(moving.any()):
            loss = loss + 10.0 * F.mse_loss(o[:, 7][moving], speed[moving])
    return loss


def scores(head: MotorHead, data: dict[str, torch.Tensor], constant: torch.Tensor) -> dict[str, float]:
    """Held-out figures with their trivial baselines."""
    with torch.inference_mode():
        out = head(data["states"], data["motor_context"])
    active = data["motor_state"] == SEGMENT_ACTIVE
    done = data["motor_state"] == SEGMENT_DONE
    wp = data["motor_waypoint"][active]
    pred = head.waypoint(out[active], data["motor_context"][active])
    grip = data["motor_grip"][active] > 0.5
    error = (pred[:, :3] - wp[:, :3]).norm(dim=1)
    return {
        "waypoint_mae_m": float(error.mean()),
        "waypoint_p90_m": float(torch.quantile(error, 0.9)),
        "waypoint_mae_m_constant": float((constant[:3] - wp[:, :3]).norm(dim=1).mean()),
        "reference_accuracy": float((out[active, 0:3].argmax(-1) == data["motor_reference"][active]).float().mean()),
        "yaw_mae_rad": float((pred[:, 3] - wp[:, 3]).abs().mean()),
        "grip_accuracy": float(((out[active, 8] > 0) == grip).float().mean()),
        "grip_accuracy_majority": float(max(grip.float().mean(), 1 - grip.float().mean())),
        "done_accuracy": float(((out[:, 9] > 0) == done).float().mean()),
        "done_accuracy_majority": float(max(done.float().mean(), 1 - done.float().mean())),
        "ticks": int(active.sum() + done.sum()),
    }


def fit_motor(model: MirrorNet, data_dirs: Sequence[str | Path], options: MotorOptions) -> tuple[MotorHead, dict]:
    torch.manual_seed(options.seed)
    rows: list[dict[str, np.ndarray]] = []
    for directory in data_dirs:
        rows += motor_rows(model, directory, first_episode=1 + max((int(r["episode"][0]) for r in rows), default=-1))
    if not rows:
        raise RobotMirrorError(f"--data {' '.join(map(str, data_dirs))}: no successful episode to learn from")
    episodes = sorted({int(r["episode"][0]) for r in rows})
    order = np.random.default_rng(options.seed).permutation(episodes)
    k = max(1, int(round(len(episodes) * options.held_out))) if len(episodes) > 1 else 0
    held, train = set(int(e) for e in order[:k]), set(int(e) for e in order[k:])
    tr, te = _stack(rows, train), _stack(rows, held or train)
    head = MotorHead(model.config.hidden, blind=options.blind)
    head.ctx_mean.copy_(tr["motor_context"].mean(0))
    head.ctx_std.copy_(tr["motor_context"].std(0).clamp_min(0.02))
    active = tr["motor_state"] == SEGMENT_ACTIVE
    head.out_scale.copy_(offsets({k: v[active] for k, v in tr.items()}).std(0).clamp_min(0.005))
    optimiser = torch.optim.Adam(head.parameters(), lr=options.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, options.steps)
    generator = torch.Generator().manual_seed(options.seed)
    n = int(tr["states"].shape[0])
    started = time.perf_counter()
    for _ in range(options.steps):
        idx = torch.randint(0, n, (options.batch,), generator=generator)
        loss = _losses(head, tr, idx)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
    head.eval()
    metrics = scores(head, te, tr["motor_waypoint"][active].mean(0))
    metrics.update(train_seconds=time.perf_counter() - started, seed=options.seed, blind=options.blind,
                   held_out_episodes=len(held), train_episodes=len(train), steps=options.steps,
                   data=[str(Path(d)) for d in data_dirs])
    return head, metrics


def train_motor(checkpoint: str | Path, data_dirs: Sequence[str | Path], out: str | Path,
                options: MotorOptions) -> dict:
    """Fit the readout on ``checkpoint``'s frozen core and write the checkpoint
    with it (entry ``motor``) to ``out``; returns the readout's metrics."""
    model = load_checkpoint(checkpoint).model
    head, metrics = fit_motor(model, data_dirs, options)
    blob = read_checkpoint(checkpoint)
    blob["motor"] = {**head.to_blob(), "metrics": metrics}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, lambda tmp: torch.save(blob, tmp))
    return metrics


def motor_head_of(checkpoint) -> MotorHead | None:
    """The checkpoint's motor readout, or None when it was never fitted."""
    blob = checkpoint.info.get("motor")
    if not blob:
        return None
    try:
        return MotorHead.from_blob(blob)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise RobotMirrorError(f"{checkpoint.path}: corrupt motor readout ({exc})") from None
