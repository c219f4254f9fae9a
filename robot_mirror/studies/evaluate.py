"""``robot-mirror evaluate``: is the network a mirror system, and does it help?

For each scenario given (paired with the checkpoint trained on its task):

1. offline, on demonstrations recorded now with unseen seeds: head
   accuracies, the cross-condition probe, the mirror index, early
   recognition and turn-end anticipation, for the trained network and its
   controls (an untrained network, shuffled partners, and the network
   trained without the contrastive term when one is found);
2. cross-embodiment (tower): the same figures with the network watching a
   partner of another make it never saw (zero-shot);
3. online, in process: task success and fluency of ``policy: mirror``
   against the reactive expert (floor) and the expert that knows the true
   turn end (ceiling) for the tower; follower accuracy against the oracle
   follower (ceiling) and a random one (floor) for imitation;
4. inference time per control tick on one thread.

Writes ``OUT/metrics.json`` (headline keys at the top level) and PNG plots.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robot_mirror.config.scenario import Scenario, load_scenario
from robot_mirror.errors import RobotMirrorError
from robot_mirror.files import write_bytes_atomic
from robot_mirror.mirror.checkpoint import Checkpoint, load_checkpoint
from robot_mirror.mirror.dataset import load_demos
from robot_mirror.mirror.features import other_features, self_features
from robot_mirror.policies import Tick, rollout
from robot_mirror.studies.metrics import collect, compare_models, evaluate_model, untrained_like
from robot_mirror.studies.plots import plot_all

ACTIVE_SPEED = 0.1  # rad/s: an arm whose joint speed is above this counts as moving
ABLATION_SUFFIX = "_nocontrastive"


# ---------------------------------------------------------------- online runs
def run_online(scenario: Scenario, policy: str, episodes: int, *, checkpoint: Path | None = None,
               seed: int = 0) -> dict[str, Any]:
    """Run ``episodes`` in process with ``policy`` on both arms; fluency figures."""
    from robot_mirror.env import TurnTakingEnv
    from robot_mirror.policies import build_policies

    for r in scenario.robots:
        r.policy = policy
        if checkpoint is not None:
            r.checkpoint = str(checkpoint)
    env = TurnTakingEnv(scenario)
    try:
        policies = build_policies(env, scenario)
        per_episode = [online_episode(env, policies, seed + i) for i in range(episodes)]
    finally:
        env.close()
    return online_summary(policy, per_episode)


def online_episode(env, policies: dict[str, Any], seed: int) -> dict[str, Any]:
    """One episode (:func:`robot_mirror.policies.rollout`): its summary plus the
    fraction of ticks each arm is idle and both arms move at once."""
    active = {n: 0 for n in env.robot_names}
    counts = {"both": 0, "ticks": 0}

    def on_tick(tick: Tick) -> None:
        moving = {n: float(np.linalg.norm(tick.next_obs[n]["dq"])) > ACTIVE_SPEED for n in env.robot_names}
        for n, m in moving.items():
            active[n] += m
        counts["both"] += all(moving.values())
        counts["ticks"] += 1

    s = rollout(env, policies, seed, on_tick)
    ticks = counts["ticks"]
    s["idle_fraction"] = {n: round(1 - a / ticks, 4) for n, a in active.items()}
    s["concurrent_fraction"] = round(counts["both"] / ticks, 4)
    return s


def online_summary(policy: str, per_episode: list[dict[str, Any]]) -> dict[str, Any]:
    """Success, zone violations and fluency of ``policy`` over its episodes."""
    episodes = len(per_episode)
    gaps = [g for e in per_episode for g in e["handoff_gaps"]]
    out: dict[str, Any] = {
        "policy": policy, "episodes": episodes,
        "success_rate": sum(e["success"] for e in per_episode) / episodes,
        "zone_violations": sum(e["zone_violations"] for e in per_episode),
        "handoff_gaps": gaps,
        "mean_handoff_gap": statistics.fmean(gaps) if gaps else None,
        "mean_sim_seconds": statistics.fmean(e["sim_seconds"] for e in per_episode),
        "idle_fraction": {n: statistics.fmean(e["idle_fraction"][n] for e in per_episode)
                          for n in per_episode[0]["idle_fraction"]},
        "concurrent_fraction": statistics.fmean(e["concurrent_fraction"] for e in per_episode),
    }
    if "imitation_success" in per_episode[0]:
        out["imitation_success"] = statistics.fmean(e["imitation_success"] for e in per_episode)
    return out


# --------------------------------------------------------------- offline part
def record_demos(scenario_path: str, episodes: int, seed: int, out: Path, overrides: list[str]):
    from robot_mirror.studies.demos import run_demos

    scenario = load_scenario(scenario_path, [*overrides, f"seed={seed}"])
    for r in scenario.robots:
        r.policy = "expert"
    run_demos(scenario, episodes=episodes, out=out, progress=False)
    return load_demos(out)


def find_ablation(checkpoint: Checkpoint) -> Path | None:
    candidate = checkpoint.path.with_name(checkpoint.path.stem + ABLATION_SUFFIX + checkpoint.path.suffix)
    return candidate if candidate.is_file() and candidate != checkpoint.path else None


def offline(checkpoint: Checkpoint, demos, ablation: Path | None) -> dict[str, Any]:
    model = checkpoint.model.eval()
    streams = [s for s in demos.streams if s.robot_type in checkpoint.robot_types]
    if not streams:
        raise RobotMirrorError(f"{checkpoint.path}: trained for {checkpoint.robot_types}; none of those robots "
                               f"is in the evaluation scenario")
    kwargs = dict(segments=demos.segments, n_targets=checkpoint.info["n_targets"])
    out = evaluate_model(model, streams, **kwargs)
    models = {"trained": model, "untrained": untrained_like(model)}
    if ablation is not None:
        models["no_contrastive"] = load_checkpoint(ablation).model.eval()
    out["comparison"] = compare_models(models, streams, **kwargs)
    out["ablation_checkpoint"] = str(ablation) if ablation else None
    return out


def motor_endpoint_error(checkpoint: Checkpoint, demos, scenario: Scenario, per_stream: int = 300,
                         seed: int = 0) -> dict[str, Any]:
    """Tool-position error of the motor head's joint targets K ticks ahead
    against where the expert's arm actually was K ticks later (forward
    kinematics on the arm's twin), on the arm's own turns, in metres."""
    from robot_mirror.sim.kinematics import Kinematics
    from robot_mirror.sim.spec import RobotSpec

    streams = [s for s in demos.streams if s.robot_type in checkpoint.robot_types]
    records = collect(checkpoint.model.eval(), streams)
    horizon = checkpoint.model.config.motor_horizon
    rng = np.random.default_rng(seed)
    twins: dict[int, Kinematics] = {}
    errors, hold = [], []
    try:
        for s, r in zip(streams, records):
            if s.robot not in twins:
                twins[s.robot] = Kinematics(RobotSpec.from_config(scenario.robots[s.robot], scenario.base_dir))
            kin = twins[s.robot]
            ticks = np.flatnonzero(s.my_turn[: len(s.q) - horizon])
            for t in rng.choice(ticks, size=min(per_stream, len(ticks)), replace=False) if len(ticks) else []:
                actual = kin.fk(s.q[t + horizon])[:3]
                errors.append(float(np.linalg.norm(kin.fk(r.q_pred[t, horizon - 1])[:3] - actual)))
                hold.append(float(np.linalg.norm(kin.fk(s.q[t])[:3] - actual)))
    finally:
        for kin in twins.values():
            kin.close()
    if not errors:
        return {"horizon_ticks": horizon, "samples": 0}
    return {"horizon_ticks": horizon, "samples": len(errors),
            "mean_m": float(np.mean(errors)), "p90_m": float(np.percentile(errors, 90)),
            "hold_still_mean_m": float(np.mean(hold))}


def inference_ms(checkpoint: Checkpoint, ticks: int = 2000) -> float:
    torch.set_num_threads(1)
    model = checkpoint.model.eval()
    rt = checkpoint.robot_types[0]
    dof = checkpoint.model.config.dof(rt)
    own = torch.from_numpy(self_features(np.zeros(dof), np.zeros(dof), np.float32(0.0)))[None]
    seen = torch.from_numpy(other_features(np.zeros((5, 3)), np.zeros(7), np.float32(0), np.float32(1)))[None]
    state = None
    times = []
    with torch.inference_mode():
        for i in range(ticks + 200):
            t0 = time.perf_counter()
            state = model.step(rt, own, seen, state=state).state
            if i >= 200:
                times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


# ------------------------------------------------------------------ core PCA
def pca_sample(checkpoint: Checkpoint, demos, n: int = 3000, seed: int = 0):
    streams = [s for s in demos.streams if s.robot_type in checkpoint.robot_types]
    records = collect(checkpoint.model.eval(), streams)
    xs, ys, obs = [], [], []
    for s, r in zip(streams, records):
        xs += [r.self_states, r.obs_states[s.observed]]
        ys += [s.segment, s.partner_segment[s.observed]]
        obs += [np.zeros(s.ticks, bool), np.ones(int(s.observed.sum()), bool)]
    x, y, o = np.concatenate(xs), np.concatenate(ys), np.concatenate(obs)
    pick = np.random.default_rng(seed).choice(len(x), size=min(n, len(x)), replace=False)
    return x[pick], y[pick], o[pick], demos.segments


# ---------------------------------------------------------------------- main
def evaluate(checkpoints: list[str], scenarios: list[str], *, episodes: int, out: str | Path,
             seed: int = 0, overrides: list[str] | None = None, online_episodes: int | None = None,
             cross_scenario: str | None = "launch/tower_mixed.yaml", progress: bool = True) -> dict[str, Any]:
    overrides = list(overrides or [])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    loaded = [load_checkpoint(c) for c in checkpoints]
    by_task = {c.info["data"]["task"]: c for c in loaded}
    say = print if progress else (lambda *a, **k: None)
    results: dict[str, Any] = {}
    pca = None
    with tempfile.TemporaryDirectory(prefix="robot_mirror_eval_") as tmp:
        for scenario_path in scenarios:
            scenario = load_scenario(scenario_path, overrides)
            kind = scenario.task.kind
            ckpt = by_task.get(kind)
            if ckpt is None:
                raise RobotMirrorError(f"{scenario_path}: no checkpoint given for task '{kind}' "
                                       f"(checkpoints are for: {', '.join(sorted(by_task))})")
            say(f"[{kind}] recording {episodes} evaluation episode(s) (seeds from {seed})", flush=True)
            demos = record_demos(scenario_path, episodes, seed, Path(tmp) / kind, overrides)
            say(f"[{kind}] offline metrics", flush=True)
            result: dict[str, Any] = {"checkpoint": str(ckpt.path), "scenario": scenario_path,
                                      "offline": offline(ckpt, demos, find_ablation(ckpt))}
            result["motor_endpoint_error"] = motor_endpoint_error(ckpt, demos, scenario, seed=seed)
            if pca is None:
                pca = pca_sample(ckpt, demos, seed=seed)
            if kind == "tower" and cross_scenario:
                say(f"[{kind}] cross-embodiment: watching {cross_scenario}", flush=True)
                result["cross_embodiment"] = cross_embodiment(ckpt, cross_scenario, episodes, seed,
                                                              Path(tmp) / "cross", overrides)
            result["online"] = online_comparison(ckpt, scenario_path, overrides, online_episodes or episodes,
                                                 seed, say)
            results[kind] = result
        ms = inference_ms(loaded[0])
    metrics = headline(results, ms)
    metrics.update({"plots": plot_all(out, results, pca), "per_task": results, "seed": seed, "episodes": episodes})
    text = json.dumps(_finite(metrics), indent=2, default=_json_default, allow_nan=False) + "\n"
    write_bytes_atomic(out / "metrics.json", text.encode())
    return metrics


def cross_embodiment(ckpt: Checkpoint, cross_scenario: str, episodes: int, seed: int, folder: Path,
                     overrides: list[str]) -> dict[str, Any]:
    """Offline figures of the network watching a partner of another make (zero-shot)."""
    cross = record_demos(cross_scenario, episodes, seed, folder, overrides)
    watching = [s for s in cross.streams if s.robot_type in ckpt.robot_types]
    m = evaluate_model(ckpt.model.eval(), watching, segments=cross.segments,
                       n_targets=ckpt.info["n_targets"], controls=False)
    return {
        "scenario": cross_scenario,
        "partner": [r.urdf for r in load_scenario(cross_scenario).robots],
        "probe_segment": m["probe_segment"], "probe_target": m["probe_target"],
        "mirror_index": m["mirror_index"]["cmni"], "heads": m["heads"],
        "early_recognition_at_half": m["early_recognition_at_half"],
    }


def online_comparison(ckpt: Checkpoint, scenario_path: str, overrides: list[str], episodes: int, seed: int,
                      say) -> dict[str, Any]:
    """Online runs of ``policy: mirror`` and of the task's floor and ceiling policies."""
    kind = ckpt.info["data"]["task"]
    runs = {"mirror": "mirror", "floor": "expert" if kind == "tower" else "random",
            "ceiling": "oracle" if kind == "tower" else "expert"}
    online = {}
    for label, policy in runs.items():
        say(f"[{kind}] online: {label} ({policy}), {episodes} episode(s)", flush=True)
        online[label] = run_online(load_scenario(scenario_path, overrides), policy, episodes,
                                   checkpoint=ckpt.path if policy == "mirror" else None, seed=seed)
    return online


def headline(results: dict[str, Any], ms: float) -> dict[str, Any]:
    def comp(task, model, key):
        c = results.get(task, {}).get("offline", {}).get("comparison", {}).get(model)
        return None if c is None else c[key]

    task = "tower" if "tower" in results else next(iter(results))
    tower = results.get("tower", {}).get("online", {})
    imitation = results.get("imitation", {}).get("online", {})
    gap = lambda run: run.get("mean_handoff_gap") if run else None  # noqa: E731
    ratio = (gap(tower.get("mirror")) / gap(tower.get("floor"))
             if gap(tower.get("mirror")) is not None and gap(tower.get("floor")) else None)
    er = [r["offline"]["early_recognition_at_half"] for r in results.values()]
    return {
        "cross_condition_probe": comp(task, "trained", "probe_segment_self_to_obs"),
        "cross_condition_probe_untrained": comp(task, "untrained", "probe_segment_self_to_obs"),
        "cross_condition_probe_no_contrastive": comp(task, "no_contrastive", "probe_segment_self_to_obs"),
        "mirror_index": comp(task, "trained", "cmni"),
        "mirror_index_untrained": comp(task, "untrained", "cmni"),
        "mirror_index_no_contrastive": comp(task, "no_contrastive", "cmni"),
        "early_recognition_at_half": min(er) if er else None,
        "imitation_success": imitation.get("mirror", {}).get("imitation_success"),
        "imitation_success_ceiling": imitation.get("ceiling", {}).get("imitation_success"),
        "imitation_success_floor": imitation.get("floor", {}).get("imitation_success"),
        "tower_success": tower.get("mirror", {}).get("success_rate"),
        "handoff_gap_ratio": ratio,
        "handoff_gap_ratio_ceiling": (gap(tower.get("ceiling")) / gap(tower.get("floor"))
                                      if gap(tower.get("ceiling")) is not None and gap(tower.get("floor")) else None),
        "zone_violations": sum(r.get("mirror", {}).get("zone_violations", 0) for r in (tower, imitation)),
        "inference_ms_per_tick": ms,
        "motor_endpoint_error_m": results[task].get("motor_endpoint_error", {}).get("mean_m"),
        "measured_tasks": sorted(results),
    }


def _finite(x):
    """NaN (an empty bin, say) becomes null: metrics.json stays strict JSON."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    if isinstance(x, (float, np.floating)) and not np.isfinite(x):
        return None
    return x


def _json_default(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(type(x).__name__)
