"""Build the policy named in a scenario for one robot (in-process use; the
policy node builds the same objects in its own process)."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from robot_mirror.commands import ArmCommand
from robot_mirror.errors import ConfigError


class Policy(Protocol):
    def reset(self) -> None: ...

    def act(self, obs: dict[str, Any]) -> ArmCommand: ...


class HoldPolicy:
    """Holds the arm where it is and never asks for anything (a test stand-in)."""

    def __init__(self) -> None:
        self.q: np.ndarray | None = None

    def reset(self) -> None:
        self.q = None

    def act(self, obs: dict[str, Any]) -> ArmCommand:
        if self.q is None:
            self.q = np.asarray(obs["q"], float).copy()
        return ArmCommand(q_target=self.q.copy(), gripper=0.0, turn="release" if obs["my_turn"] else "")


def make_policy(kind: str, spec, scenario, kinematics, *, oracle=None) -> Policy:
    """``oracle``: a callable returning the task's ground truth (the imitation
    task's ``true_slot``), offered only in process; policies that do not need
    it ignore it.

    Imitation task: ``expert`` = scripted leader + a follower that places at
    the true slot (``oracle``; without one, e.g. in a policy process, it reads
    the slot off the leader's placed block); ``random`` = scripted leader + a
    follower that picks a uniformly random slot (the chance floor)."""
    if scenario.task.kind == "imitation" and kind in ("expert", "random"):
        from robot_mirror.sim.imitation_expert import ImitationExpert, ObservedSlot, OracleSlot, RandomSlot

        if kind == "random":
            source = RandomSlot([scenario.seed, scenario.robot_names.index(spec.name), 0x51A7])
        else:
            source = OracleSlot(oracle) if oracle is not None else ObservedSlot()
        return ImitationExpert(spec, scenario.task, scenario.control_hz, kinematics, slot_source=source)
    if kind in ("expert", "oracle"):
        from robot_mirror.sim.expert import ScriptedExpert

        policy = ScriptedExpert(spec, scenario.task, scenario.control_hz, kinematics)
        policy.wants_partner = kind == "oracle"
        return policy
    if kind == "mirror":
        from robot_mirror.mirror.policy import MirrorPolicy

        return MirrorPolicy(spec, scenario, kinematics)
    if kind == "hold":
        return HoldPolicy()
    raise ConfigError(
        f"{scenario.source}: robots.{spec.name}.policy = '{kind}': not available in this mode"
    )


def attach_partners(policies: dict[str, Policy], scenario) -> None:
    """In process only: give each ``oracle`` policy its partner's plan as the
    true turn end (the ceiling of the fluency comparison). Raises for an
    oracle whose partner is not a scripted expert."""
    for name, policy in policies.items():
        if not getattr(policy, "wants_partner", False):
            continue
        partner_name = next(n for n in policies if n != name)
        partner = policies[partner_name]
        if not hasattr(partner, "time_to_release"):
            raise ConfigError(f"{scenario.source}: robots.{name}.policy = 'oracle' needs a scripted partner "
                              f"(robots.{partner_name}.policy is not one)")
        policy.turn_end_predictor = (
            lambda obs, p=partner, n=partner_name: p.time_to_release() if obs["holder"] == n else None)


def build_policies(env, scenario) -> dict[str, Policy]:
    """Every robot's policy for an in-process run of ``env`` (the runner, the
    demonstration recorder and the evaluation all build them here)."""
    oracle = getattr(env.task, "true_slot", None)
    policies = {
        spec.name: make_policy(scenario.robot(spec.name).policy, spec, scenario, env.twin(spec.name), oracle=oracle)
        for spec in env.specs
    }
    attach_partners(policies, scenario)
    return policies


def play_episode(env, policies: dict[str, Policy], seed: int) -> dict:
    """Play one in-process episode of ``env`` with ``policies`` (robot name ->
    policy): reset the environment with ``seed``, reset every policy, step
    until the episode is terminated or truncated; returns
    ``env.episode_summary()``."""
    obs, _ = env.reset(seed=seed)
    for policy in policies.values():
        policy.reset()
    done = False
    while not done:
        obs, _, terminated, truncated, _ = env.step({n: p.act(obs[n]) for n, p in policies.items()})
        done = terminated or truncated
    return env.episode_summary()


def check_policies(scenario, *, inprocess: bool) -> None:
    """Fail early, in one line, on a policy that cannot run: a missing,
    corrupt or wrong-robot MirrorNet checkpoint, or an in-process-only
    policy in a multi-process launch."""
    for robot in scenario.robots:
        if robot.policy == "oracle" and not inprocess:
            raise ConfigError(f"{scenario.source}: robots.{robot.name}.policy = 'oracle' reads the partner's plan "
                              "and runs only with --inprocess")
        if robot.policy == "mirror":
            from robot_mirror.mirror.checkpoint import load_checkpoint
            from robot_mirror.mirror.dataset import robot_type_of
            from robot_mirror.mirror.policy import resolve_checkpoint

            load_checkpoint(resolve_checkpoint(scenario, robot.name), robot_type=robot_type_of(robot.urdf))
