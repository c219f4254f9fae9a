"""Synthetic demonstrations: a small ``robot_mirror.demos/2`` folder without a simulator.

:func:`write_synthetic_demos` writes two toy arms taking turns, in exactly the
format :func:`robot_mirror.mirror.dataset.load_demos` reads (tests,
benchmarks, trying the trainer without a simulator).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from pathlib import Path
from typing import Optional

import numpy as np

from robot_mirror.geometry import quat_mul
from robot_mirror.mirror.dataset import DEMOS_FORMAT, SEGMENTS, episodes_sha256

BASES = [(np.array([-0.6, 0.0, 0.0]), 0.0), (np.array([0.6, 0.0, 0.0]), math.pi)]  # (position, yaw) per arm


def _quat_mul_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`robot_mirror.geometry.quat_mul` over the last axis of (..., 4) arrays."""
    return np.moveaxis(quat_mul(np.moveaxis(a, -1, 0), np.moveaxis(b, -1, 0)), 0, -1)


def _yaw_quat(yaw: float) -> np.ndarray:
    return np.array([0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)])


def _yaw_matrix(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _toy_fk(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A smooth made-up arm: (T, dof) -> keypoints (T, 5, 3), tool quaternion (T, 4), own base frame."""
    T, d = q.shape
    yaw = q[:, 0]
    pitch = np.cumsum(np.stack([q[:, i % d] if i < d else np.zeros(T) for i in range(1, 5)], 1), 1)
    lengths = np.array([0.3, 0.3, 0.2, 0.1])
    kp = np.zeros((T, 5, 3))
    kp[:, 0, 2] = 0.3
    for i in range(4):
        step = np.stack([np.cos(pitch[:, i]) * np.cos(yaw), np.cos(pitch[:, i]) * np.sin(yaw),
                         np.sin(pitch[:, i])], -1) * lengths[i]
        kp[:, i + 1] = kp[:, i] + step
    quat = np.stack([np.zeros(T), np.sin(pitch[:, -1] / 2), np.zeros(T), np.cos(pitch[:, -1] / 2)], -1)
    quat = _quat_mul_rows(np.stack([np.zeros(T), np.zeros(T), np.sin(yaw / 2), np.cos(yaw / 2)], -1), quat)
    return kp, quat


def _plan(rng: np.random.Generator, turns: int, n_targets: int, seg_ticks: tuple[int, int]) -> list:
    """[(actor, target, [(segment, ticks)])]: turn i by robot (first + i) % 2 at
    target i % n_targets, each after a short gap (actor -1)."""
    first = int(rng.integers(0, 2))
    plan = []
    for i in range(turns):
        plan.append((-1, -1, [(0, int(rng.integers(2, 5)))]))
        plan.append(((first + i) % 2, i % n_targets,
                     [(k, int(rng.integers(*seg_ticks))) for k in range(1, len(SEGMENTS))]))
    plan.append((-1, -1, [(0, 3)]))
    return plan


def _goal(waypoints: np.ndarray, k: int, target: int) -> np.ndarray:
    """Where segment ``k`` towards ``target`` ends (the last segment returns home)."""
    return waypoints[k, target] if k != len(SEGMENTS) - 1 else np.zeros(waypoints.shape[-1])


def _play_plan(plan: list, dofs: tuple[int, int], waypoints: np.ndarray) -> dict[str, list]:
    """Joint paths and labels per robot (lists indexed by robot), and per tick
    the tick the current turn ends (-1 in gaps)."""
    T = sum(n for _, _, ss in plan for _, n in ss)
    a = {"q": [np.zeros((T, d)) for d in dofs], "grip": [np.zeros(T) for _ in dofs],
         "seg": [np.zeros(T, np.int8) for _ in dofs], "tgt": [np.full(T, -1, np.int8) for _ in dofs],
         "block": [np.full(T, -1, np.int8) for _ in dofs], "turn": [np.zeros(T, bool) for _ in dofs],
         "turn_end_tick": np.full(T, -1)}
    t0 = 0
    for ti, (actor, target, ss) in enumerate(plan):
        n_turn = sum(n for _, n in ss)
        if actor >= 0:
            a["turn_end_tick"][t0:t0 + n_turn] = t0 + n_turn
        prev = np.zeros(waypoints.shape[-1])
        for k, n in ss:
            if actor >= 0:
                _move(a, actor, dofs[actor], t0, n, k, target, ti // 2, prev, _goal(waypoints, k, target))
                prev = _goal(waypoints, k, target).copy()
            t0 += n
    return a


def _move(a: dict, r: int, dof: int, t0: int, n: int, k: int, target: int, block: int,
          prev: np.ndarray, goal: np.ndarray) -> None:
    """Robot ``r`` moves smoothly from ``prev`` to ``goal`` over ticks [t0, t0+n) in segment ``k``."""
    s = np.linspace(0, 1, n + 1)[1:]
    s = s * s * (3 - 2 * s)
    path = prev[None] + (goal - prev)[None] * s[:, None]
    a["q"][r][t0:t0 + n] = path[:, :dof]
    a["seg"][r][t0:t0 + n] = k
    a["tgt"][r][t0:t0 + n] = target
    a["block"][r][t0:t0 + n] = block
    a["turn"][r][t0:t0 + n] = True
    a["grip"][r][t0:t0 + n] = {2: np.linspace(0, 1, n), 3: 1.0,  # 0 open, 1 closed
                               4: np.linspace(1, 0, n)}.get(k, 0.0)


def _own_arrays(rng: np.random.Generator, a: dict, r: int, control_hz: int,
                data: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Robot ``r``'s own arrays into ``data``; returns its world keypoints and tool quaternion."""
    a["q"][r] = a["q"][r] + rng.normal(0, 0.002, a["q"][r].shape)
    q = a["q"][r]
    kp, quat = _toy_fk(q)
    base, yaw = BASES[r]
    world_kp = kp @ _yaw_matrix(yaw).T + base
    world_quat = _quat_mul_rows(np.broadcast_to(_yaw_quat(yaw), quat.shape), quat)
    p = f"r{r}_"
    data[p + "q"] = q.astype(np.float32)
    data[p + "dq"] = (np.gradient(q, axis=0) * control_hz).astype(np.float32)
    data[p + "gripper"] = a["grip"][r].astype(np.float32)
    data[p + "ee_pose"] = np.concatenate([world_kp[:, -1], world_quat], 1).astype(np.float32)
    data[p + "own_keypoints"] = kp.astype(np.float32)
    data[p + "own_ee_pose"] = np.concatenate([kp[:, -1], quat], 1).astype(np.float32)
    data[p + "segment"] = a["seg"][r]
    data[p + "target"] = a["tgt"][r]
    data[p + "block"] = a["block"][r]
    data[p + "my_turn"] = a["turn"][r]
    return world_kp, world_quat


def _seen_arrays(rng: np.random.Generator, a: dict, r: int, world_kp: np.ndarray, world_quat: np.ndarray,
                 noise: float, drop_rate: float, control_hz: int, data: dict[str, np.ndarray]) -> None:
    """What robot ``r`` saw of its partner (world pose ``world_kp``/``world_quat``),
    in its own base frame, with noise and drops (a drop keeps the last view)."""
    o = 1 - r
    T = len(world_kp)
    base, yaw = BASES[r]
    seen_kp = (world_kp - base) @ _yaw_matrix(yaw) + rng.normal(0, noise, world_kp.shape)
    seen_q = _quat_mul_rows(np.broadcast_to(_yaw_quat(-yaw), world_quat.shape), world_quat)
    seen_g = a["grip"][o].copy()
    observed = rng.random(T) >= drop_rate
    observed[0] = True
    for t in range(1, T):
        if not observed[t]:
            seen_kp[t], seen_q[t], seen_g[t] = seen_kp[t - 1], seen_q[t - 1], seen_g[t - 1]
    p = f"r{r}_"
    data[p + "seen_partner_keypoints"] = seen_kp.astype(np.float32)
    data[p + "seen_partner_ee_pose"] = np.concatenate([seen_kp[:, -1], seen_q], 1).astype(np.float32)
    data[p + "seen_partner_gripper"] = seen_g.astype(np.float32)
    data[p + "partner_observed"] = observed
    end = np.where(a["turn"][o], (a["turn_end_tick"] - np.arange(T)) / control_hz, np.nan)
    data[p + "partner_turn_end_in"] = end.astype(np.float32)


def _episode(rng: np.random.Generator, *, turns: int, n_targets: int, seg_ticks: tuple[int, int],
             dofs: tuple[int, int], waypoints: np.ndarray, control_hz: int, noise: float,
             drop_rate: float) -> dict[str, np.ndarray]:
    """The NPZ arrays of one synthetic episode."""
    a = _play_plan(_plan(rng, turns, n_targets, seg_ticks), dofs, waypoints)
    T = len(a["turn_end_tick"])
    data: dict[str, np.ndarray] = {"t": (np.arange(T) / control_hz).astype(np.float32)}
    world = [_own_arrays(rng, a, r, control_hz, data) for r in (0, 1)]
    for r in (0, 1):
        _seen_arrays(rng, a, r, *world[1 - r], noise, drop_rate, control_hz, data)
    return data


def write_synthetic_demos(out: str | Path, *, episodes: int = 4, turns: int = 4, dof: int = 4,
                          n_targets: int = 3, control_hz: int = 20, seed: int = 0,
                          urdfs: tuple[str, str] = ("synthetic/arm.urdf", "synthetic/arm.urdf"),
                          dofs: Optional[tuple[int, int]] = None, noise: float = 0.005,
                          drop_rate: float = 0.05, seg_ticks: tuple[int, int] = (5, 9)) -> Path:
    """Write a tiny ``robot_mirror.demos/2`` folder of two toy arms taking turns.

    Turn *i* is taken by robot (first + i) % 2 and aims at target i % n_targets;
    the acting arm goes through reach, grasp, carry, place, retreat, each a
    smooth move towards a waypoint fixed per (segment, target), while the other
    waits at home and sees it (in its own base frame, with noise and drops).
    The waypoints are the same for both arms, so executed and observed actions
    with the same label look alike in task space: a network can mirror them.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dofs = tuple(dofs) if dofs is not None else (dof, dof)
    waypoints = np.random.default_rng(1234).uniform(-1.0, 1.0, (len(SEGMENTS), n_targets, max(dofs))) * 0.8
    files, ep_meta = [], []
    for e in range(episodes):
        data = _episode(np.random.default_rng(seed * 1000 + e), turns=turns, n_targets=n_targets,
                        seg_ticks=seg_ticks, dofs=dofs, waypoints=waypoints, control_hz=control_hz,
                        noise=noise, drop_rate=drop_rate)
        name = f"episode_{e:04d}.npz"
        np.savez_compressed(out / name, **data)
        files.append(name)
        ep_meta.append({"file": name, "seed": seed * 1000 + e, "ticks": len(data["t"]), "success": True})
    meta = {
        "format": DEMOS_FORMAT, "scenario": "synthetic", "task": "tower", "control_hz": control_hz,
        "robots": [{"name": n, "urdf": u, "dof": d, "gripper": "fingers"}
                   for n, u, d in zip(("left", "right"), urdfs, dofs)],
        "segments": list(SEGMENTS), "n_targets": n_targets,
        "perception": {"noise_std": noise, "delay_ticks": 0, "drop_rate": drop_rate},
        "episodes": ep_meta, "created": _dt.datetime.now().isoformat(timespec="seconds"),
        "sha256": episodes_sha256(out, files),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out
