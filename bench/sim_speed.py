"""How much does ``TurnTakingEnv`` cost on top of raw PyBullet stepping?

Method. One environment is built from the scenario. Each round starts with
``env.reset(seed)`` and then measures two things for about ``--seconds`` of
wall time each, on the same bodies in the same PyBullet client:

* env: ``env.step`` with "hold" commands (every robot commands its home joint
  targets, gripper open), so no policy cost is included; one step is one
  control tick = ``scenario.substeps`` physics steps, and that is what is
  counted.
* raw: on ``env.world.client`` directly, once per control tick one
  ``setJointMotorControlArray(POSITION_CONTROL)`` per arm with the same
  targets (arm joints at home, fingers open), then ``stepSimulation()``
  ``substeps`` times. Nothing else.

Within a round the two alternate in short slices (``SLICE`` s, order swapped
every slice), so load from other jobs on a small shared machine hits both
alike; both hold the arms at home, so neither disturbs the other's state.
Each round gives a ratio env steps/s / raw steps/s. Headline: ``ratio`` = the
median of the per-round ratios (1.0 = the environment adds nothing); the
steps/s figures are medians over the rounds. Real-time factor = simulated
seconds per wall second.

    python bench/sim_speed.py [--scenario launch/tower.yaml] [--seconds 3]
                              [--rounds 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pybullet as p

from robot_mirror.common.commands import ArmCommand
from robot_mirror.env import TurnTakingEnv
from robot_mirror.config.scenario import load_scenario

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/_common.py; see its docstring
from _common import ROOT, machine_info, package_version, write_json  # noqa: E402

SEED = 0
SLICE = 0.25  # s of one side before switching to the other


def hold_targets(env: TurnTakingEnv) -> dict[str, tuple[list[int], list[float], list[float]]]:
    """Per arm: joint indices, targets and forces of a "hold at home, gripper
    open" command, as the environment itself would send them."""
    out = {}
    for name, arm in env.arms.items():
        home = np.clip(env.twin(name).home_q, arm.lower, arm.upper)
        joints = list(arm.joint_indices) + [j.index for j in arm.finger_joints]
        targets = home.tolist() + [j.upper for j in arm.finger_joints]
        forces = arm.max_force.tolist() + [max(j.max_force, 40.0) for j in arm.finger_joints]
        out[name] = (joints, targets, forces)
    return out


def time_env(env: TurnTakingEnv, seconds: float) -> tuple[int, float]:
    """Physics steps and wall seconds of env.step driven by hold commands."""
    actions = {n: ArmCommand(q_target=env.twin(n).home_q.copy(), gripper=0.0) for n in env.robot_names}
    ticks = 0
    start = time.perf_counter()
    while True:
        _, _, terminated, truncated, _ = env.step(actions)
        ticks += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
        if terminated or truncated:  # time limit reached: start over, off the clock
            pause = time.perf_counter()
            env.reset(seed=SEED)
            start += time.perf_counter() - pause
    return ticks * env.substeps, elapsed


def time_raw(env: TurnTakingEnv, seconds: float) -> tuple[int, float]:
    """Physics steps and wall seconds of bare PyBullet on the same bodies."""
    c = env.world.client
    substeps = env.substeps
    commands = [(arm.body, *hold_targets(env)[name]) for name, arm in env.arms.items()]
    ticks = 0
    start = time.perf_counter()
    while True:
        for body, joints, targets, forces in commands:
            c.setJointMotorControlArray(body, joints, p.POSITION_CONTROL, targetPositions=targets, forces=forces)
        for _ in range(substeps):
            c.stepSimulation()
        ticks += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
    return ticks * substeps, elapsed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default=str(ROOT / "launch/tower.yaml"))
    ap.add_argument("--seconds", type=float, default=3.0, help="wall seconds per measurement")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = ap.parse_args(argv)

    scenario = load_scenario(args.scenario)
    env = TurnTakingEnv(scenario)
    physics_hz = scenario.physics_hz
    env_rates: list[float] = []
    raw_rates: list[float] = []
    try:
        env.reset(seed=SEED)
        time_env(env, 0.3)  # warm up both paths once
        time_raw(env, 0.3)
        slices = max(1, round(args.seconds / SLICE))
        for r in range(args.rounds):
            env.reset(seed=SEED)
            totals = {"env": [0, 0.0], "raw": [0, 0.0]}  # physics steps, wall seconds
            for k in range(slices):
                order = (("env", time_env), ("raw", time_raw))
                for label, fn in order[::-1] if k % 2 else order:
                    steps, wall = fn(env, args.seconds / slices)
                    totals[label][0] += steps
                    totals[label][1] += wall
            env_rates.append(totals["env"][0] / totals["env"][1])
            raw_rates.append(totals["raw"][0] / totals["raw"][1])
            print(f"round {r + 1}/{args.rounds}: env {env_rates[-1]:8.0f} steps/s  raw {raw_rates[-1]:8.0f} "
                  f"steps/s  ratio {env_rates[-1] / raw_rates[-1]:.3f}", flush=True)
    finally:
        env.close()

    env_med = statistics.median(env_rates)
    raw_med = statistics.median(raw_rates)
    ratio = statistics.median(e / r for e, r in zip(env_rates, raw_rates))
    result = {
        "ratio": round(ratio, 4),
        "env_steps_per_s": round(env_med, 1),
        "raw_steps_per_s": round(raw_med, 1),
        "env_real_time_factor": round(env_med / physics_hz, 3),
        "raw_real_time_factor": round(raw_med / physics_hz, 3),
        "env_rounds": [round(x, 1) for x in env_rates],
        "raw_rounds": [round(x, 1) for x in raw_rates],
        "scenario": str(args.scenario),
        "physics_hz": physics_hz,
        "control_hz": scenario.control_hz,
        "substeps": scenario.substeps,
        "seconds_per_measurement": args.seconds,
        "rounds": args.rounds,
        "machine": machine_info({"pybullet": package_version("pybullet")}),
    }
    print(f"env : {env_med:8.0f} physics steps/s  (real-time factor {result['env_real_time_factor']:.2f})")
    print(f"raw : {raw_med:8.0f} physics steps/s  (real-time factor {result['raw_real_time_factor']:.2f})")
    print(f"ratio env/raw: {ratio:.3f}  (goal >= 0.8)")
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
