"""Policies: what drives an arm, found by the name a scenario gives it.

A registry maps each ``policy:`` name to a factory (and, for names that
need one, an early check). The scripted experts, ``hold`` and ``random``
register here (the ``constant`` and ``heuristic`` baselines in :mod:`~robot_mirror.policies.baselines`); ``mirror`` registers itself from :mod:`robot_mirror.mirror`,
so this layer never imports the network. The in-process runner, the policy
process, the studies and the tests all build policies through
:func:`make_policy` / :func:`build_policies` and play them with
:func:`robot_mirror.policies.rollout.rollout`.
"""

from __future__ import annotations

from robot_mirror.policies.registry import (
    REGISTRY,
    Policy,
    PolicyContext,
    PolicyEntry,
    build_policies,
    check_policies,
    make_policy,
    register_policy,
)
from robot_mirror.policies.rollout import Tick, rollout
from robot_mirror.policies import builtin as _builtin  # noqa: F401  (registers the built-in policies)
from robot_mirror.policies import baselines as _baselines  # noqa: F401  (registers constant, heuristic)

__all__ = ["REGISTRY", "Policy", "PolicyContext", "PolicyEntry", "Tick", "build_policies", "check_policies",
           "make_policy", "register_policy", "rollout"]
