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
* gymnasium: ``SingleArmEnv.step`` (``robot_mirror.envs``) of its own world
  with the same bodies, the agent's action "hold at home", the partner
  driven by ``policy: hold`` (so again no policy cost); its observation is
  converted into the declared space every step, as a trainer gets it.
* pettingzoo: ``TurnTakingParallelEnv.step``, both agents "hold at home",
  both observations converted every step.

Within a round the four alternate in short slices (``SLICE`` s, order
reversed every slice), so load from other jobs on a small shared machine
hits all alike; all hold the arms at home, so none disturbs another's
state. Each round gives a ratio X steps/s / raw steps/s for each X.
Headline: ``ratio`` = the median of the per-round env/raw ratios (1.0 = the
environment adds nothing); the steps/s figures are medians over the rounds.
Real-time factor = simulated seconds per wall second.

    python bench/sim_speed.py [--scenario launch/tower.yaml] [--seconds 3]
                              [--rounds 5] [--set KEY=VALUE ...] [--json out.json]

(about ``4 x rounds x seconds`` s).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pybullet as p

from robot_mirror.common.commands import ArmCommand
from robot_mirror.env import TurnTakingEnv
from robot_mirror.config.scenario import load_scenario
from robot_mirror.envs import SingleArmEnv, TurnTakingParallelEnv

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


class Clock:
    """Wall and CPU seconds since start, minus what ran off the clock."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def elapsed(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu

    def pause(self, fn) -> None:
        wall, cpu = self.elapsed()
        fn()
        self.wall, self.cpu = time.perf_counter() - wall, time.process_time() - cpu


def time_loop(step, restart, substeps: int, seconds: float) -> tuple[int, float, float]:
    """Physics steps, wall and CPU seconds of ``step()`` (True at an
    episode's end; then ``restart()`` runs off the clock)."""
    ticks = 0
    clock = Clock()
    while True:
        done = step()
        ticks += 1
        wall, cpu = clock.elapsed()
        if wall >= seconds:
            break
        if done:
            clock.pause(restart)
    return ticks * substeps, wall, cpu


def time_env(env: TurnTakingEnv, seconds: float) -> tuple[int, float, float]:
    """``env.step`` driven by hold commands; its observations are dropped unread."""
    actions = {n: ArmCommand(q_target=env.twin(n).home_q.copy(), gripper=0.0) for n in env.robot_names}

    def step() -> bool:
        _, _, terminated, truncated, _ = env.step(actions)
        return terminated or truncated

    return time_loop(step, lambda: env.reset(seed=SEED), env.substeps, seconds)


def hold_action(arms, name: str) -> dict:
    """A wrapper action that holds ``name`` at home, gripper open."""
    return {"q_target": arms.env.twin(name).home_q.copy(), "gripper": np.array(0.0), "turn": 0}


def gym_timer(scenario_path: str, scenario, overrides: list[str]) -> tuple[SingleArmEnv, object]:
    partner = scenario.robots[1].name
    gym_env = SingleArmEnv(scenario_path, overrides=[*overrides, f"robots.{partner}.policy=hold"])
    gym_env.reset(seed=SEED)
    action = hold_action(gym_env.arms, gym_env.robot)

    def step() -> bool:
        _, _, terminated, truncated, _ = gym_env.step(action)
        return terminated or truncated

    return gym_env, lambda seconds: time_loop(step, lambda: gym_env.reset(seed=SEED), scenario.substeps, seconds)


def pz_timer(scenario_path: str, scenario, overrides: list[str]) -> tuple[TurnTakingParallelEnv, object]:
    par = TurnTakingParallelEnv(scenario_path, overrides=overrides)
    par.reset(seed=SEED)
    actions = {n: hold_action(par.arms, n) for n in par.possible_agents}

    def step() -> bool:
        par.step(actions)
        return not par.agents

    return par, lambda seconds: time_loop(step, lambda: par.reset(seed=SEED), scenario.substeps, seconds)


def time_raw(env: TurnTakingEnv, seconds: float) -> tuple[int, float, float]:
    """Physics steps, wall and CPU seconds of bare PyBullet on the same bodies."""
    c = env.world.client
    substeps = env.substeps
    commands = [(arm.body, *hold_targets(env)[name]) for name, arm in env.arms.items()]
    ticks = 0
    clock = Clock()
    while True:
        for body, joints, targets, forces in commands:
            c.setJointMotorControlArray(body, joints, p.POSITION_CONTROL, targetPositions=targets, forces=forces)
        for _ in range(substeps):
            c.stepSimulation()
        ticks += 1
        wall, cpu = clock.elapsed()
        if wall >= seconds:
            break
    return ticks * substeps, wall, cpu


def measure(env: TurnTakingEnv, timers: dict, seconds: float, rounds: int) -> tuple[dict, dict]:
    """Per round, each timer's physics steps per wall second and per CPU
    second; the timers alternate in slices."""
    rates: dict[str, list[float]] = {label: [] for label in timers}
    cpu_rates: dict[str, list[float]] = {label: [] for label in timers}
    slices = max(1, round(seconds / SLICE))
    for label, fn in timers.items():  # warm up every path once
        fn(0.3)
    for r in range(rounds):
        env.reset(seed=SEED)
        totals = {label: [0, 0.0, 0.0] for label in timers}  # physics steps, wall s, CPU s
        order = list(timers.items())
        for k in range(slices):
            for label, fn in order[::-1] if k % 2 else order:
                for i, x in enumerate(fn(seconds / slices)):
                    totals[label][i] += x
        for label, (steps, wall, cpu) in totals.items():
            rates[label].append(steps / wall)
            cpu_rates[label].append(steps / cpu)
        print(f"round {r + 1}/{rounds}: " + "  ".join(
            f"{label} {rates[label][-1]:6.0f}" for label in timers) + " steps/s  "
              f"env/raw {rates['env'][-1] / rates['raw'][-1]:.3f} (CPU time: "
              f"{cpu_rates['env'][-1] / cpu_rates['raw'][-1]:.3f})", flush=True)
    return rates, cpu_rates


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default=str(ROOT / "launch/tower.yaml"))
    ap.add_argument("--seconds", type=float, default=3.0, help="wall seconds per measurement")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="scenario override, as for robot-mirror launch (e.g. perception.level=perfect)")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = ap.parse_args(argv)

    load_before = os.getloadavg()
    scenario = load_scenario(args.scenario, args.overrides)
    env = TurnTakingEnv(scenario)
    gym_env, time_gym = gym_timer(args.scenario, scenario, args.overrides)
    par, time_pz = pz_timer(args.scenario, scenario, args.overrides)
    try:
        env.reset(seed=SEED)
        timers = {"env": lambda sec: time_env(env, sec), "raw": lambda sec: time_raw(env, sec),
                  "gymnasium": time_gym, "pettingzoo": time_pz}
        rates, cpu_rates = measure(env, timers, args.seconds, args.rounds)
    finally:
        for e in (env, gym_env, par):
            e.close()
    result = summarise(rates, cpu_rates, scenario, args)
    result["load_average_1_5_15_min"] = {"before": [round(x, 2) for x in load_before],
                                         "after": [round(x, 2) for x in os.getloadavg()]}
    for label in timers:
        print(f"{label:10s}: {result[label + '_steps_per_s']:8.0f} physics steps/s  "
              f"(real-time factor {result[label + '_real_time_factor']:.2f})")
    for label in ("gymnasium", "pettingzoo"):
        print(f"ratio {label}/raw: {result[label + '_ratio']:.3f}")
    print(f"ratio env/raw: {result['ratio']:.3f}  (goal >= 0.8; per CPU second: {result['cpu_time']['ratio']:.3f})")
    write_json(args.json, result)
    return 0


def summarise(rates: dict[str, list[float]], cpu_rates: dict[str, list[float]], scenario, args) -> dict:
    """The JSON figures: medians over rounds, per-round ratios' medians;
    ``cpu_time``: the same per CPU second of this process (what other jobs
    on a shared machine disturb least)."""
    med = {label: statistics.median(r) for label, r in rates.items()}
    ratio = lambda label: statistics.median(x / r for x, r in zip(rates[label], rates["raw"]))
    result: dict = {"ratio": round(ratio("env"), 4)}
    for label in ("gymnasium", "pettingzoo"):
        result[label + "_ratio"] = round(ratio(label), 4)
    for label in rates:
        result[label + "_steps_per_s"] = round(med[label], 1)
        result[label + "_control_ticks_per_s"] = round(med[label] / scenario.substeps, 1)
        result[label + "_real_time_factor"] = round(med[label] / scenario.physics_hz, 3)
    for label in rates:
        result[label + "_rounds"] = [round(x, 1) for x in rates[label]]
    cpu_ratio = lambda label: statistics.median(x / r for x, r in zip(cpu_rates[label], cpu_rates["raw"]))
    result["cpu_time"] = {
        "ratio": round(cpu_ratio("env"), 4),
        **{label + "_ratio": round(cpu_ratio(label), 4) for label in ("gymnasium", "pettingzoo")},
        **{label + "_steps_per_cpu_s": round(statistics.median(r), 1) for label, r in cpu_rates.items()},
    }
    result.update({
        "scenario": str(args.scenario),
        "overrides": list(args.overrides),
        "perception": {"noise_std": scenario.perception.noise_std, "delay_ticks": scenario.perception.delay_ticks,
                       "drop_rate": scenario.perception.drop_rate},
        "physics_hz": scenario.physics_hz,
        "control_hz": scenario.control_hz,
        "substeps": scenario.substeps,
        "seconds_per_measurement": args.seconds,
        "rounds": args.rounds,
        "machine": machine_info({"pybullet": package_version("pybullet"), "gymnasium": package_version("gymnasium"),
                                 "pettingzoo": package_version("pettingzoo")}),
    })
    return result


if __name__ == "__main__":
    sys.exit(main())
