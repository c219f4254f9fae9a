"""The one mapping between bus messages and the project's plain objects.

Every node and the external-controller client convert through here and
nowhere else: ``state`` <-> :class:`WorldState`, ``obs`` <-> observation
dict, ``cmd`` <-> :class:`ArmCommand`, ``turn_query`` <-> :class:`TurnQuery`
and ``turn`` <-> :class:`TurnDecision`. Pure numpy and msgpack: importing
it never loads a physics engine, so perception and policy processes stay
light. The field-by-field contract is ``bus/schema.py`` (docs/protocol.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from robot_mirror.bus.codec import Message, encode
from robot_mirror.common.commands import ArmCommand
from robot_mirror.common.observation import ArmState, WorldState
from robot_mirror.common.turns import TurnEvent

_ARRAY_DTYPES = {"f": np.float64, "b": np.bool_, "i": np.int64, "u": np.int64}
_ARM_ARRAYS = ("q", "dq", "ee_pose", "keypoints")


# ------------------------------------------------------------------ state
def encode_state(state: WorldState, seq: int) -> list:
    arrays = {"blocks": state.blocks}
    arms = {}
    for name, arm in state.arms.items():
        for key in _ARM_ARRAYS:
            arrays[f"{name}/{key}"] = getattr(arm, key)
        arms[name] = {"holding": int(arm.holding), "in_zone": bool(arm.in_zone), "gripper": float(arm.gripper)}
    # encode() turns numpy values inside the maps into plain msgpack values.
    return encode("state", "state", seq=seq, t_sim=state.t, tick=state.tick, fields={
        "robots": list(state.arms), "holder": state.holder, "episode": state.episode, "seed": state.seed,
        "arms": arms, "task": state.task_obs, "events": state.events, "done": state.done,
    }, arrays=arrays, validate=False)


def decode_state(msg: Message) -> WorldState:
    arms = {}
    for name in msg.fields["robots"]:
        info = msg.fields["arms"][name]
        arrays = {key: np.array(msg.arrays[f"{name}/{key}"]) for key in _ARM_ARRAYS}
        arms[name] = ArmState(**arrays, gripper=float(info["gripper"]), holding=int(info["holding"]),
                              in_zone=bool(info["in_zone"]))
    return WorldState(t=msg.t_sim, tick=msg.tick, episode=msg.fields["episode"], seed=msg.fields["seed"],
                      holder=msg.fields["holder"], arms=arms, blocks=np.array(msg.arrays["blocks"]),
                      task_obs=msg.fields["task"], events=msg.fields["events"], done=msg.fields["done"])


# -------------------------------------------------------------------- obs
def encode_obs(robot: str, obs: dict[str, Any], *, tick: int, episode: int, seq: int) -> list:
    arrays, scalars = {}, {}
    for key, value in obs.items():
        if isinstance(value, np.ndarray):
            arrays[key] = value.astype(_ARRAY_DTYPES.get(value.dtype.kind, np.float64), copy=False)
        elif isinstance(value, np.generic):
            scalars[key] = value.item()
        else:
            scalars[key] = value
    return encode(f"obs.{robot}", "obs", robot=robot, seq=seq, t_sim=float(obs["t"]), tick=tick, fields={
        "holder": obs["holder"], "observed": bool(obs["partner_observed"]), "episode": episode,
        "scalars": scalars,
    }, arrays=arrays, validate=False)


def decode_obs(msg: Message) -> dict[str, Any]:
    """The observation dictionary a policy works on (arrays copied, writable)."""
    obs: dict[str, Any] = dict(msg.fields["scalars"])
    for key, value in msg.arrays.items():
        obs[key] = np.array(value)
    obs["holder"] = msg.fields["holder"]
    obs["partner_observed"] = msg.fields["observed"]
    return obs


# -------------------------------------------------------------------- cmd
def encode_cmd(robot: str, command: ArmCommand, *, seq: int, tick: int, t_sim: float = 0.0,
               validate: bool = True) -> list:
    """A ``cmd``: mode ``ee`` when the command carries a tool pose, else ``joint``."""
    if command.ee_pose is not None:
        mode, arrays = "ee", {"ee_pose": np.asarray(command.ee_pose, dtype=float)}
    else:
        mode, arrays = "joint", {"q_target": command.q_target}
    return encode("cmd", "cmd", robot=robot, seq=seq, tick=tick, t_sim=t_sim,
                  fields={"mode": mode, "gripper": float(command.gripper), "turn": command.turn},
                  arrays=arrays, validate=validate)


def decode_cmd(msg: Message) -> ArmCommand:
    """The command as sent (targets copied as float64; the sim clamps and solves IK)."""
    fields = msg.fields
    key = "ee_pose" if fields["mode"] == "ee" else "q_target"
    target = np.array(msg.arrays[key], dtype=float)
    return ArmCommand(**{key: target}, gripper=float(fields["gripper"]), turn=fields["turn"])


# ------------------------------------------------------------------- turn
@dataclass
class TurnQuery:
    """The sim's question to the arbiter: everything the turn rules need."""

    episode: int
    has_work: dict[str, bool]
    releases: list[str]
    requests: list[str]
    last_heard: dict[str, float]
    holder: str
    next_robot: str


@dataclass
class TurnDecision:
    """The arbiter's answer: the events of this decision and the new token state."""

    episode: int
    holder: str
    next_robot: str
    events: list[TurnEvent]


def encode_turn_query(query: TurnQuery, *, seq: int, tick: int, t_sim: float) -> list:
    return encode("turn_query", "turn_query", seq=seq, tick=tick, t_sim=t_sim, fields={
        "episode": query.episode, "has_work": {k: bool(v) for k, v in query.has_work.items()},
        "release": sorted(query.releases), "request": sorted(query.requests),
        "last_heard": {k: float(v) for k, v in query.last_heard.items()},
        "holder": query.holder, "next": query.next_robot,
    })


def decode_turn_query(msg: Message) -> TurnQuery:
    f = msg.fields
    return TurnQuery(episode=f["episode"], has_work=dict(f["has_work"]), releases=list(f["release"]),
                     requests=list(f["request"]), last_heard=dict(f["last_heard"]), holder=f["holder"],
                     next_robot=f["next"])


def encode_turn(decision: TurnDecision, *, seq: int, tick: int, t_sim: float) -> list:
    events = decision.events
    return encode("turn", "turn", seq=seq, tick=tick, t_sim=t_sim, fields={
        "holder": decision.holder, "event": events[-1].kind if events else "none",
        "reason": events[-1].reason if events else "", "episode": decision.episode,
        "events": [{"t": e.t, "kind": e.kind, "robot": e.robot, "reason": e.reason} for e in events],
        "next": decision.next_robot,
    }, validate=False)


def decode_turn(msg: Message) -> TurnDecision:
    f = msg.fields
    events = [TurnEvent(e["t"], e["kind"], e["robot"], e.get("reason", "")) for e in f["events"]]
    return TurnDecision(episode=f["episode"], holder=f["holder"], next_robot=f["next"], events=events)
