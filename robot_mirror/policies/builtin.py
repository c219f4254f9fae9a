"""The built-in policies and the scripted expert of each task.

:data:`EXPERTS` is the one table from task kind to its scripted expert;
``expert``, ``oracle``, ``random`` and the mirror policy's motion layer all
build experts through :func:`make_expert`.
"""

from __future__ import annotations

from typing import Any, Callable

from robot_mirror.errors import ConfigError
from robot_mirror.policies.hold import HoldPolicy
from robot_mirror.policies.imitation_expert import ImitationExpert, ObservedSlot, OracleSlot, RandomSlot
from robot_mirror.policies.registry import PolicyContext, PolicyEntry, register_policy
from robot_mirror.policies.tower_expert import ScriptedExpert


def _tower_expert(ctx: PolicyContext, *, turn_end_predictor=None, **_) -> ScriptedExpert:
    sc = ctx.scenario
    return ScriptedExpert(ctx.spec, sc.task, sc.control_hz, ctx.kinematics, turn_end_predictor=turn_end_predictor)


def _imitation_expert(ctx: PolicyContext, *, slot_source=None, **_) -> ImitationExpert:
    """Without a ``slot_source``: the true slot in process (``oracle``), else
    the slot read off the leader's placed block (a policy process)."""
    sc = ctx.scenario
    if slot_source is None:
        slot_source = OracleSlot(ctx.oracle) if ctx.oracle is not None else ObservedSlot()
    return ImitationExpert(ctx.spec, sc.task, sc.control_hz, ctx.kinematics, slot_source=slot_source)


EXPERTS: dict[str, Callable[..., Any]] = {"tower": _tower_expert, "imitation": _imitation_expert}


def make_expert(ctx: PolicyContext, **hooks) -> Any:
    """The scripted expert of the scenario's task. ``hooks`` are what a
    smarter policy tells the motion layer: ``turn_end_predictor`` (tower),
    ``slot_source`` (imitation); each expert ignores the other's."""
    return EXPERTS[ctx.scenario.task.kind](ctx, **hooks)


def _oracle(ctx: PolicyContext) -> ScriptedExpert:
    policy = make_expert(ctx)
    policy.wants_partner = True  # attach_partners hands it the partner's plan
    return policy


def _random(ctx: PolicyContext):
    sc = ctx.scenario
    if sc.task.kind != "imitation":
        raise ConfigError(f"{sc.source}: robots.{ctx.spec.name}.policy = 'random' exists for the imitation task "
                          f"only (task.kind = '{sc.task.kind}')")
    # sc.seed only until the rollout hands over the episode seed (seed_episode)
    source = RandomSlot([sc.seed, sc.robot_names.index(ctx.spec.name), 0x51A7])
    return make_expert(ctx, slot_source=source)


register_policy("expert", PolicyEntry(make_expert, "the scripted expert, reactive (imitation follower: the "
                                                   "true slot in process, else read off the placed block)"))
register_policy("oracle", PolicyEntry(_oracle, "the expert that knows its partner's true turn end (the "
                                               "fluency ceiling)", inprocess_only=True))
register_policy("random", PolicyEntry(_random, "imitation: scripted leader, follower choosing a random slot "
                                               "(the floor)"))
register_policy("hold", PolicyEntry(lambda ctx: HoldPolicy(), "holds still and passes its turn"))
register_policy("external", PolicyEntry(None, "your controller over the bus (multi-process only)"))
