"""The one mapping between bus messages and the project's plain objects.

Every node and the external-controller client convert through here and
nowhere else: ``state`` <-> :class:`WorldState`, ``obs`` <-> observation
dict, ``cmd`` <-> :class:`ArmCommand`, ``turn_query`` <-> :class:`TurnQuery`
``turn`` <-> :class:`TurnDecision` and ``episode`` <-> summary dict. Every
decoder checks each field its receiver uses beyond what the schema can say
(types inside maps, a unit quaternion, a sane position) and raises the
codec's :class:`MalformedMessage`, so a receive loop drops, counts and (on
``cmd``) answers a bad message instead of crashing or hanging in physics.
Pure numpy and msgpack: importing
it never loads a physics engine, so perception and policy processes stay
light. The field-by-field contract is ``bus/schema.py`` (docs/protocol.md).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Sequence

import msgpack
import numpy as np

from robot_mirror.bus.codec import MalformedMessage, Message, encode
from robot_mirror.bus.schema import MAX_HEADER_BYTES, MAX_MESSAGE_BYTES
from robot_mirror.bus.validate import short
from robot_mirror.common.commands import ArmCommand
from robot_mirror.common.observation import ArmState, WorldState
from robot_mirror.common.turns import TurnEvent

_ARRAY_DTYPES = {"f": np.float64, "b": np.bool_, "i": np.int64, "u": np.int64}
_ARM_ARRAYS = ("q", "dq", "ee_pose", "keypoints")
_INT64_MAX = 2**63 - 1

#: A cmd ``ee_pose`` quaternion must have norm 1 within this (it is then
#: normalised); a zero or tiny quaternion would make IK meaningless (PyBullet
#: never returns from it).
QUAT_TOLERANCE = 0.01
#: A cmd ``ee_pose`` position farther than this from the world origin on any
#: axis (m) is no target on a table; PyBullet's IK never returns on ~1e308.
WORKSPACE_LIMIT = 5.0


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


def decode_cmd(msg: Message, dof: int | None = None) -> ArmCommand:
    """The command as sent (targets copied as float64; the sim clamps and solves IK).

    Checked here, before anything reaches physics or IK: ``q_target`` has
    ``dof`` values (when given), an ``ee_pose`` quaternion has norm 1 within
    :data:`QUAT_TOLERANCE` (it is returned normalised) and its position lies
    within :data:`WORKSPACE_LIMIT` m of the origin. Raises
    :class:`MalformedMessage` (reason ``shape`` or ``field_value``) whose
    detail names the field and the value."""
    fields = msg.fields
    key = "ee_pose" if fields["mode"] == "ee" else "q_target"
    target = np.array(msg.arrays[key], dtype=float)
    if not np.all(np.isfinite(target)):  # the schema checks this too; IK must never see one
        raise MalformedMessage("nonfinite", f"field {key} = {short(target.tolist())}: NaN or infinity")
    if key == "q_target" and dof is not None and target.shape != (dof,):
        raise MalformedMessage("shape", f"field q_target has {target.size} value(s) "
                               f"{short(target.tolist())}; the arm has {dof} joints")
    if key == "ee_pose":
        target = _checked_pose(target)
    return ArmCommand(**{key: target}, gripper=float(fields["gripper"]), turn=fields["turn"])


def _checked_pose(pose: np.ndarray) -> np.ndarray:
    """A pose target fit for IK: sane position, unit quaternion (normalised)."""
    if pose.shape != (7,):
        raise MalformedMessage("shape", f"field ee_pose has shape {list(pose.shape)}, not [7]")
    far = np.abs(pose[:3]) > WORKSPACE_LIMIT
    if far.any():
        axis = "xyz"[int(np.argmax(far))]
        raise MalformedMessage("field_value", f"field ee_pose position {short(pose[:3].tolist())}: "
                               f"|{axis}| > {WORKSPACE_LIMIT} m, outside any workspace")
    norm = float(np.linalg.norm(pose[3:]))
    if abs(norm - 1.0) > QUAT_TOLERANCE:
        raise MalformedMessage("field_value", f"field ee_pose quaternion {short(pose[3:].tolist())} has norm "
                               f"{norm:.4g}; it must be 1 within {QUAT_TOLERANCE}")
    pose[3:] /= norm
    return pose


def peek_header(frames: Sequence[Any]) -> tuple[int, str]:
    """The header ``seq`` (-1 if unknown) and ``robot`` ("" if unknown) of a
    message that failed to decode.

    A ``bad_message`` reply then tells the sender which command it answers
    whenever the header itself was readable. Reads only frame 1 (bounded)."""
    if not isinstance(frames, (list, tuple)) or len(frames) < 2:
        return -1, ""
    try:
        head = frames[1]
        raw = bytes(getattr(head, "buffer", head))
        if len(raw) > MAX_HEADER_BYTES:
            return -1
        header = msgpack.unpackb(raw, raw=False, strict_map_key=True)
    except Exception:  # any garbage: the seq is simply unknown
        return -1, ""
    if not isinstance(header, dict):
        return -1, ""
    seq, robot = header.get("seq"), header.get("robot")
    return (seq if type(seq) is int and 0 <= seq <= _INT64_MAX else -1,
            robot if isinstance(robot, str) else "")


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
    """The query, every map checked item by item (the schema checks only
    that ``has_work`` and ``last_heard`` are maps)."""
    f = msg.fields
    has_work = _robot_map(f["has_work"], "has_work", lambda v: isinstance(v, bool), "a bool")
    last_heard = _robot_map(f["last_heard"], "last_heard", _is_finite_number, "a finite number of seconds")
    return TurnQuery(episode=f["episode"], has_work=has_work, releases=list(f["release"]),
                     requests=list(f["request"]), last_heard={k: float(v) for k, v in last_heard.items()},
                     holder=f["holder"], next_robot=f["next"])


def _is_finite_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and abs(value) < 1e300)


def _robot_map(value: dict, name: str, ok, want: str) -> dict:
    for key, item in value.items():
        if not isinstance(key, str) or not ok(item):
            raise MalformedMessage("field_value", f"field {name}[{short(key, 40)}] = {short(item, 40)}: "
                                   f"want robot name -> {want}")
    return dict(value)


def encode_turn(decision: TurnDecision, *, seq: int, tick: int, t_sim: float) -> list:
    events = decision.events
    return encode("turn", "turn", seq=seq, tick=tick, t_sim=t_sim, fields={
        "holder": decision.holder, "event": events[-1].kind if events else "none",
        "reason": events[-1].reason if events else "", "episode": decision.episode,
        "events": [{"t": e.t, "kind": e.kind, "robot": e.robot, "reason": e.reason} for e in events],
        "next": decision.next_robot,
    }, validate=False)


def decode_turn(msg: Message) -> TurnDecision:
    """The decision, each event checked (kind, robot, finite time)."""
    f = msg.fields
    events = []
    for e in f["events"]:
        if (e.get("kind") not in ("grant", "release", "reclaim") or not isinstance(e.get("robot"), str)
                or not _is_finite_number(e.get("t")) or not isinstance(e.get("reason", ""), str)):
            raise MalformedMessage("field_value", f"field events item {short(e)}: want "
                                   "{t: seconds, kind: grant|release|reclaim, robot: str, reason: str}")
        events.append(TurnEvent(float(e["t"]), e["kind"], e["robot"], e.get("reason", "")))
    return TurnDecision(episode=f["episode"], holder=f["holder"], next_robot=f["next"], events=events)


# ---------------------------------------------------------------- episode
#: Lists a summary may drop to fit in one message (they can grow with turns).
_TRIMMABLE = ("turn_durations", "handoff_gaps", "round_results")


def encode_episode(index: int, summary: dict[str, Any], last: bool, *, seq: int) -> list:
    """An ``episode``: the summary travels as UTF-8 JSON in the ``summary``
    array frame (``|u1``), never as one header that grows with the episode.
    A summary over the message limit loses its per-turn lists
    (``"trimmed": [...]`` says which) rather than the run."""
    body = json.dumps(summary, allow_nan=False, default=_json_default).encode()
    if len(body) > MAX_MESSAGE_BYTES // 2:
        trimmed = [k for k in _TRIMMABLE if k in summary]
        summary = {k: v for k, v in summary.items() if k not in trimmed} | {"trimmed": trimmed}
        body = json.dumps(summary, allow_nan=False, default=_json_default).encode()
    return encode("episode", "episode", seq=seq, fields={"index": index, "last": last},
                  arrays={"summary": np.frombuffer(body, dtype=np.uint8)})


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON")


def decode_episode(msg: Message) -> dict[str, Any]:
    """The episode summary of an ``episode`` message (a JSON object)."""
    try:
        summary = json.loads(bytes(msg.arrays["summary"]).decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError included
        raise MalformedMessage("field_value", f"array summary is not UTF-8 JSON ({exc})") from None
    if not isinstance(summary, dict):
        raise MalformedMessage("field_value", f"array summary holds a {type(summary).__name__}, not an object")
    return summary
