"""Record expert demonstrations for the mirror network (``robot-mirror demos``).

Runs a scenario's policies in process (``TurnTakingEnv`` + ``make_policy``;
in the imitation task the expert follower gets the task's true slot) and
writes, per episode, one compressed NPZ with each robot's own state, what it
saw of its partner, and its own action labels, tick by tick; then
``meta.json``, last and atomically. Format ``robot_mirror.demos/2``,
documented key by key in ``docs/demos.md``.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from robot_mirror.errors import RobotMirrorError
from robot_mirror.files import write_bytes_atomic
from robot_mirror.mirror.dataset import DEMOS_FORMAT, SEGMENTS, episodes_sha256
from robot_mirror.mirror.motor import INACTIVE, motor_teacher
from robot_mirror.policies import Tick, rollout
from robot_mirror.policies.drift import SetpointDrift

SCRIPTED = ("expert", "oracle", "random")  # policies whose labels come from a script

META = "meta.json"


def episode_file(index: int) -> str:
    return f"episode_{index:04d}.npz"


def n_targets(task_config) -> int:
    """How many distinct ``target`` labels the task has (its config says)."""
    return int(task_config.n_targets)


def _labels(policy) -> tuple[int, int, int]:
    """(segment index, target, block) of what ``policy`` is doing now."""
    labels = getattr(policy, "labels", None)
    if labels is None:
        return 0, -1, -1
    segment, target, block = labels()
    index = SEGMENTS.index(segment) if segment in SEGMENTS else 0
    return index, int(target), int(block)


def partner_turn_end_in(holder_is_partner: np.ndarray, partner_ends: list[int], final_tick: int,
                        control_hz: int) -> np.ndarray:
    """Per tick: seconds until the partner's current turn ends, NaN when the
    partner does not hold the turn. ``partner_ends`` are the ticks of the
    partner's ``turn_end`` events; a turn still held when the episode ended
    counts as ending at ``final_tick`` (censored)."""
    ticks = np.arange(len(holder_is_partner))
    ends = np.asarray(sorted(partner_ends) + [final_tick], dtype=np.int64)  # every row tick < final_tick
    end_tick = ends[np.searchsorted(ends, ticks, side="right")]  # first end strictly after the tick
    out = (end_tick - ticks).astype(np.float64) / control_hz
    out[~holder_is_partner] = np.nan
    return out.astype(np.float32)


ROW_KEYS = ("q", "dq", "gripper", "ee_pose", "own_ee_pose", "own_keypoints", "seen_partner_keypoints", "seen_partner_ee_pose",
            "seen_partner_gripper", "partner_observed", "segment", "target", "block", "my_turn", "holder",
            "blocks", "placed", "tower_count", "holding", "motor_block", "motor_state", "motor_waypoint",
            "motor_speed", "motor_grip", "motor_place")


def _append_row(rows: dict[str, list], obs: dict[str, Any], policy, frame) -> None:
    """One tick of one robot: what it observed before acting, and its labels
    (and its planner's motor command, the motor readout's teacher) after."""
    segment, target, block = _labels(policy)
    _append_motor(rows, obs, getattr(policy, "expert", policy), frame)
    for key in ("q", "dq", "gripper", "ee_pose", "seen_partner_keypoints", "seen_partner_ee_pose",
                "seen_partner_gripper", "partner_observed", "my_turn", "holder"):
        rows[key].append(obs[key])
    rows["own_keypoints"].append(frame.points_to_local(obs["keypoints"]))
    rows["own_ee_pose"].append(frame.pose_to_local(obs["ee_pose"]))
    rows["segment"].append(segment)
    rows["target"].append(target)
    rows["block"].append(block)


def _append_motor(rows: dict[str, list], obs: dict[str, Any], expert, frame) -> None:
    """The motor readout's teacher and what its input is rebuilt from
    (robot_mirror.mirror.motor; the input itself is computed when training,
    so it can change without recording again)."""
    if hasattr(expert, "plan"):
        state, waypoint, speed, grip = motor_teacher(expert, obs, frame)
        block = -1 if expert.block is None else int(expert.block)
        place = expert.landing_point(obs) if state != INACTIVE else np.full(3, np.nan)
    else:  # not a scripted planner: nothing to teach
        state, waypoint, speed, grip, block = INACTIVE, np.full(4, np.nan), float("nan"), 0.0, -1
        place = np.full(3, np.nan)
    n = len(obs["blocks"])
    rows["blocks"].append(obs["blocks"])
    rows["placed"].append(obs.get("placed", np.zeros(n, bool)))
    rows["tower_count"].append(obs.get("tower_count", 0))
    rows["holding"].append(obs["holding"])
    rows["motor_block"].append(block)
    rows["motor_state"].append(state)
    rows["motor_waypoint"].append(waypoint)
    rows["motor_speed"].append(speed)
    rows["motor_grip"].append(grip)
    rows["motor_place"].append(place)


def _robot_arrays(rows: dict[str, list], prefix: str, partner: str, partner_ends: list[int], final_tick: int,
                  control_hz: int) -> dict[str, np.ndarray]:
    """One robot's NPZ arrays (keys ``prefix`` + name) from its rows."""
    out = {}
    for key in ("q", "dq", "gripper", "ee_pose", "own_ee_pose", "own_keypoints", "seen_partner_keypoints",
                "seen_partner_ee_pose", "seen_partner_gripper"):
        out[prefix + key] = np.asarray(rows[key], dtype=np.float32)
    out[prefix + "partner_observed"] = np.asarray(rows["partner_observed"], dtype=bool)
    for key in ("segment", "target", "block", "motor_state", "motor_block", "holding", "tower_count"):
        out[prefix + key] = np.asarray(rows[key], dtype=np.int8)
    for key in ("blocks", "motor_waypoint", "motor_speed", "motor_grip", "motor_place"):
        out[prefix + key] = np.asarray(rows[key], dtype=np.float32)
    out[prefix + "placed"] = np.asarray(rows["placed"], dtype=bool)
    out[prefix + "my_turn"] = np.asarray(rows["my_turn"], dtype=bool)
    holder_is_partner = np.asarray([h == partner for h in rows["holder"]], dtype=bool)
    out[prefix + "partner_turn_end_in"] = partner_turn_end_in(holder_is_partner, partner_ends, final_tick,
                                                              control_hz)
    return out


def record_episode(env, policies: dict[str, Any], seed: int) -> tuple[dict[str, np.ndarray], int, bool]:
    """Run one episode (:func:`robot_mirror.policies.rollout`); return the NPZ
    arrays, its length in ticks and success."""
    names = env.robot_names
    frames = {s.name: s.base_frame() for s in env.specs}
    rows: dict[str, dict[str, list]] = {n: {k: [] for k in ROW_KEYS} for n in names}
    times: list[float] = []
    turn_ends: dict[str, list[int]] = {n: [] for n in names}

    def on_tick(tick: Tick) -> None:
        times.append(tick.obs[names[0]]["t"])  # the time the actions were chosen at
        for name in names:
            _append_row(rows[name], tick.obs[name], policies[name], frames[name])
        for event in tick.info["events"]:
            if event["type"] == "turn_end":
                turn_ends[event["robot"]].append(env.tick)  # env.tick is already the next tick

    rollout(env, policies, seed, on_tick)
    out: dict[str, np.ndarray] = {"t": np.asarray(times, dtype=np.float32)}
    for i, name in enumerate(names):
        partner = names[1 - i]
        out.update(_robot_arrays(rows[name], f"r{i}_", partner, turn_ends[partner], env.tick,
                                 env.scenario.control_hz))
    return out, len(times), bool(env.task.success)


def prepare_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise RobotMirrorError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and ((out / META).exists() or any(out.glob("episode_*.npz"))):
        raise RobotMirrorError(f"--out {out}: already holds demonstrations; choose a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)


def run_demos(scenario, *, episodes: int, out: str | Path, progress: bool = True,
              motor_noise: float = 0.0) -> dict[str, Any]:
    """Record ``episodes`` episodes (seeds ``scenario.seed + i``) into ``out``;
    returns the meta data written to ``out/meta.json``. ``motor_noise`` (m):
    the scripted arms' tool setpoints are perturbed (DART,
    :mod:`robot_mirror.policies.drift`) so the motor readout's teacher also
    labels states off its own path."""
    from tqdm import tqdm

    from robot_mirror.env import TurnTakingEnv
    from robot_mirror.policies import build_policies

    if episodes < 1:
        raise RobotMirrorError(f"--episodes {episodes}: must be at least 1")
    out = Path(out)
    prepare_out(out)
    for robot in scenario.robots:  # demonstrations come from the scripted expert (or its variants)
        if robot.policy not in SCRIPTED:
            robot.policy = "expert"
    env = TurnTakingEnv(scenario)
    try:
        policies = build_policies(env, scenario)
        drifts = add_drift(policies, motor_noise, 1.0 / scenario.control_hz)
        robots = [{"name": s.name, "urdf": scenario.robot(s.name).urdf, "dof": int(env.twin(s.name).dof),
                   "gripper": env.twin(s.name).arm.gripper_kind, "base": list(scenario.robot(s.name).base),
                   "yaw_deg": float(scenario.robot(s.name).yaw_deg)} for s in env.specs]
        listed: list[dict[str, Any]] = []
        bar = tqdm(range(episodes), desc=f"demos {scenario.name}", unit="episode", disable=not progress)
        for i in bar:
            seed = scenario.seed + i
            for k, drift in enumerate(drifts):
                drift.seed(seed, k)
            arrays, ticks, success = record_episode(env, policies, seed)
            listed.append({"file": write_episode(out, i, arrays), "seed": seed, "ticks": ticks, "success": success})
            bar.set_postfix(ticks=ticks, success=success)
        bar.close()
    finally:
        env.close()
    meta = make_meta(scenario, robots, listed, episodes_sha256(out, [e["file"] for e in listed]), motor_noise)
    write_bytes_atomic(out / META, (json.dumps(meta, indent=2) + "\n").encode())
    return meta


def add_drift(policies: dict[str, Any], std: float, dt: float) -> list[SetpointDrift]:
    """Give every scripted arm that moves by tool setpoints a drift of ``std``
    (none when 0); the drifts, in robot order."""
    if std == 0.0:
        return []
    drifts = []
    for policy in policies.values():
        expert = getattr(policy, "expert", policy)
        if hasattr(expert, "drift"):
            expert.drift = SetpointDrift(std, dt)
            drifts.append(expert.drift)
    return drifts


def write_episode(out: Path, index: int, arrays: dict[str, np.ndarray]) -> str:
    """Write episode ``index``'s arrays as a compressed NPZ in ``out``; returns its file name."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    name = episode_file(index)
    write_bytes_atomic(out / name, buffer.getvalue())
    return name


def make_meta(scenario, robots: list[dict[str, Any]], listed: list[dict[str, Any]], sha256: str,
              motor_noise: float = 0.0) -> dict[str, Any]:
    """``meta.json`` of a demonstration folder (docs/demos.md)."""
    p = scenario.perception
    return {
        "format": DEMOS_FORMAT,
        "scenario": scenario.name,
        "scenario_file": scenario.source,
        "task": scenario.task.kind,
        "control_hz": int(scenario.control_hz),
        "robots": robots,
        "segments": list(SEGMENTS),
        "n_targets": n_targets(scenario.task),
        "block_size": float(scenario.task.block_size),
        "tower_xy": [float(v) for v in getattr(scenario.task, "tower_xy", (0.0, 0.0))],
        "perception": {"noise_std": p.noise_std, "delay_ticks": p.delay_ticks, "drop_rate": p.drop_rate},
        "motor_noise": float(motor_noise),
        "episodes": listed,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "sha256": sha256,
    }
