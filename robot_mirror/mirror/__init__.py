"""MirrorNet: the model, its data and its training, and ``policy: mirror``.

Importing this package registers ``mirror`` in the policy registry. The
network's modules (and torch) load only when a mirror policy is built or
checked, so processes that never run one stay light.
"""

from __future__ import annotations

from robot_mirror.policies import PolicyEntry, register_policy


def _make(ctx):
    from robot_mirror.mirror.policy import MirrorPolicy

    return MirrorPolicy(ctx)


def _make_lesioned(ctx):
    from robot_mirror.mirror.policy import MirrorPolicy

    return MirrorPolicy(ctx, lesioned=True)


def _check(scenario, robot: str) -> None:
    from robot_mirror.mirror.policy import check_mirror_policy

    check_mirror_policy(scenario, robot)


register_policy("mirror", PolicyEntry(_make, "MirrorNet (checkpoint:, default the shipped one for the task)",
                                      check=_check))
register_policy("mirror_lesioned", PolicyEntry(_make_lesioned, "MirrorNet with its top mirror units silenced "
                                                              "(the causal control)", check=_check))
