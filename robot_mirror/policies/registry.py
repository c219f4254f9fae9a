"""The table from policy name to factory, and the functions that use it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

from robot_mirror.common.commands import ArmCommand
from robot_mirror.errors import ConfigError


class Policy(Protocol):
    """What drives an arm. Optional: ``seed_episode(seed)``, called by
    :func:`~robot_mirror.policies.rollout.rollout` after ``reset`` with the
    episode seed, for a policy that draws at random."""

    def reset(self) -> None: ...

    def act(self, obs: dict[str, Any]) -> ArmCommand: ...


@dataclass(frozen=True)
class PolicyContext:
    """Everything a factory may use. ``oracle``: a callable returning the
    task's ground truth (the imitation task's ``true_slot``), offered only in
    process; policies that do not need it ignore it."""

    spec: Any            # sim.spec.RobotSpec
    scenario: Any        # config.scenario.Scenario
    kinematics: Any      # sim.kinematics.Kinematics (the arm's IK twin)
    oracle: Callable[[], int] | None = None


@dataclass(frozen=True)
class PolicyEntry:
    """``factory`` is None for a name that no process of ours drives
    (``external``); ``check(scenario, robot_name)`` fails early, in one line."""

    factory: Callable[[PolicyContext], Policy] | None
    doc: str
    inprocess_only: bool = False
    check: Callable[[Any, str], None] | None = None


REGISTRY: dict[str, PolicyEntry] = {}


def register_policy(name: str, entry: PolicyEntry) -> None:
    REGISTRY[name] = entry


def _entry(kind: str, scenario, robot: str) -> PolicyEntry:
    entry = REGISTRY.get(kind)
    if entry is None:
        raise ConfigError(f"{scenario.source}: robots.{robot}.policy = '{kind}': unknown policy; allowed: "
                          + ", ".join(sorted(REGISTRY)))
    return entry


def make_policy(kind: str, spec, scenario, kinematics, *, oracle=None) -> Policy:
    """Policy ``kind`` (usually ``scenario.robot(spec.name).policy``) for robot ``spec.name``."""
    entry = _entry(kind, scenario, spec.name)
    if entry.factory is None:
        raise ConfigError(f"{scenario.source}: robots.{spec.name}.policy = '{kind}': not available in this mode")
    return entry.factory(PolicyContext(spec, scenario, kinematics, oracle))


def build_policies(env, scenario) -> dict[str, Policy]:
    """Every robot's policy for an in-process run of ``env``; an ``oracle``
    policy is handed its partner's plan (see :func:`attach_partners`)."""
    oracle = getattr(env.task, "true_slot", None)
    policies = {spec.name: make_policy(scenario.robot(spec.name).policy, spec, scenario, env.twin(spec.name),
                                       oracle=oracle) for spec in env.specs}
    attach_partners(policies, scenario)
    return policies


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


def check_policies(scenario, *, inprocess: bool, robot: str | None = None) -> None:
    """Fail early, in one line, on a policy that cannot run: an unknown name,
    an in-process-only policy in a multi-process launch, or what the
    policy's own check refuses (e.g. a missing MirrorNet checkpoint).
    ``robot``: check that robot only (a policy process checks its own)."""
    for cfg in scenario.robots:
        if robot is not None and cfg.name != robot:
            continue
        entry = _entry(cfg.policy, scenario, cfg.name)
        if entry.inprocess_only and not inprocess:
            raise ConfigError(f"{scenario.source}: robots.{cfg.name}.policy = '{cfg.policy}' "
                              "runs only with --inprocess")
        if entry.check is not None:
            entry.check(scenario, cfg.name)
