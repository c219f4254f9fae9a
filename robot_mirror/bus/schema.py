"""Message kinds of the robot_mirror bus, declared as data.

The registry below is the single source of truth for what each message kind
carries. The codec (:mod:`robot_mirror.bus.codec`) interprets it on both the
encode and the decode side, and ``docs/protocol.md`` describes the same
tables for people writing clients in other languages. Keeping the schema as
plain frozen dataclasses (instead of one hand-written validator per kind)
means adding a field is a one-line change that both directions pick up, and a
test can check that the document mentions every field.

Conventions used throughout:

* lengths in metres, angles in radians, times in seconds;
* a pose is 7 numbers ``x, y, z, qx, qy, qz, qw`` (position then unit
  quaternion in scalar-last order, the PyBullet convention);
* everything is in the world frame except what a robot perceives of its
  partner (``obs`` arrays ``seen_partner_*``), which is in the observer's
  base frame.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Tuple, Union

from robot_mirror.common.observation import OBSERVATION

#: Wire schema version. A receiver rejects any message whose ``v`` differs.
SCHEMA_VERSION = 1

#: Upper bound on the sum of all frame lengths of one message (8 MiB).
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
#: Upper bound on the number of array frames in one message.
MAX_ARRAYS = 64
#: Upper bound on the length of the msgpack header frame (64 KiB).
MAX_HEADER_BYTES = 64 * 1024
#: Upper bound on the number of dimensions of one array.
MAX_NDIM = 8

#: The only dtype strings allowed on the wire (numpy ``dtype.str`` spelling).
#: All multi-byte types are little-endian; ``|b1`` bytes must be 0 or 1.
ALLOWED_DTYPES: Tuple[str, ...] = ("<f8", "<f4", "<i4", "<i8", "|u1", "|b1")
#: Float dtypes, the only ones that can hold non-finite values.
FLOAT_DTYPES: Tuple[str, ...] = ("<f8", "<f4")

#: Robot names are used inside topics ("obs.<robot>") and array names
#: ("<robot>/q"), so they must not contain "." or "/".
ROBOT_NAME_RE = r"[A-Za-z0-9_-]{1,32}"
#: A topic is printable ASCII without spaces; it is also a ZeroMQ SUB prefix.
TOPIC_RE = r"[A-Za-z0-9_.-]{1,64}"
#: An array name; "/" separates a robot prefix from the per-robot name.
ARRAY_NAME_RE = r"[A-Za-z0-9_./-]{1,128}"

ROBOT_OR_EMPTY_RE = rf"(?:{ROBOT_NAME_RE})?"

#: A shape-pattern element: an exact size, ``None`` (any size) or a symbol
#: (any size, but equal for every array of the same scope using the symbol;
#: the scope of a ``*/...`` array is its robot prefix).
Dim = Union[int, str, None]

F64: Tuple[str, ...] = ("<f8",)
FLOAT_IN: Tuple[str, ...] = ("<f8", "<f4")


@dataclass(frozen=True)
class FieldSpec:
    """One entry of a message's ``fields`` map.

    ``types`` holds Python types as decoded by msgpack. ``int`` never matches
    ``bool`` (msgpack keeps them apart); ``float`` also accepts ``int`` so
    that C clients may send ``1`` for ``1.0``; floats must be finite.
    """

    types: Tuple[type, ...]
    doc: str = ""
    unit: str = ""
    choices: Optional[Tuple[Any, ...]] = None
    lo: Optional[float] = None
    hi: Optional[float] = None
    #: For ``list`` fields: the allowed type(s) of each item.
    items: Optional[Tuple[type, ...]] = None
    #: Regex (full match) for ``str`` values, or for each ``str`` list item.
    pattern: Optional[str] = None


@dataclass(frozen=True)
class ArraySpec:
    """One array a message kind may carry.

    ``name`` is either exact ("q") or a per-robot pattern "*/suffix" where
    "*" stands for one robot name listed in the kind's ``robots_field``.
    """

    name: str
    dtypes: Tuple[str, ...]
    shape: Tuple[Dim, ...]
    doc: str = ""
    unit: str = ""
    required: bool = True
    allow_nonfinite: bool = False
    #: ``(field, value)``: the array is only allowed (and, if ``required``,
    #: only required) when ``fields[field] == value``.
    when: Optional[Tuple[str, Any]] = None

    @property
    def is_pattern(self) -> bool:
        """True for "*/suffix" names expanded once per robot."""
        return self.name.startswith("*/")

    @property
    def suffix(self) -> str:
        """The part after "*/" of a pattern name."""
        return self.name[2:]


@dataclass(frozen=True)
class KindSpec:
    """A message kind: who sends it, on which topic, with what content."""

    name: str
    doc: str
    sender: str
    #: Expected topic; "{robot}" is replaced by the header's ``robot``.
    topic: str
    #: True when the header's ``robot`` must name a robot (not "").
    robot_required: bool
    fields: Mapping[str, FieldSpec]
    arrays: Tuple[ArraySpec, ...] = ()
    #: Name of a list-of-robot-names field that "*/..." arrays expand over.
    robots_field: Optional[str] = None

    def topic_for(self, robot: str) -> str:
        """The topic a message of this kind about ``robot`` must carry."""
        return self.topic.replace("{robot}", robot)


def _f(types: Union[type, Tuple[type, ...]], doc: str = "", **kw: Any) -> FieldSpec:
    """Short constructor so the registry below stays readable."""
    return FieldSpec(types if isinstance(types, tuple) else (types,), doc, **kw)


ROBOT_NAME_FIELD_DOC = "robot name, or \"\" for nobody"

HELLO = KindSpec(
    name="hello",
    doc="A node or external controller announces that it is up and ready to "
    "receive; repeated until a `ready` answers it.",
    sender="any node / controller -> supervisor or sim",
    topic="hello",
    robot_required=False,
    fields={
        "node": _f(str, "unique node name, e.g. \"policy.left\"", pattern=r".{1,64}"),
        "pid": _f(int, "operating-system process id of the sender (0 if n/a)", lo=0),
    },
)

HEARTBEAT = KindSpec(
    name="heartbeat",
    doc="Periodic liveness signal.",
    sender="any node -> supervisor",
    topic="heartbeat",
    robot_required=False,
    fields={
        "node": _f(str, "unique node name", pattern=r".{1,64}"),
        "state": _f(str, "free-form life-cycle state, e.g. \"starting\", "
                    "\"running\", \"stopping\""),
        "drops": _f(int, "malformed messages this node has dropped so far", lo=0),
    },
)

STOP = KindSpec(
    name="stop",
    doc="Asks every receiver to shut down cleanly.",
    sender="supervisor (or any node on a fatal error) -> all",
    topic="stop",
    robot_required=False,
    fields={"reason": _f(str, "human-readable reason, one line")},
)

STATE = KindSpec(
    name="state",
    doc="Ground-truth simulator state, once per control tick (header `tick`, "
    "`t_sim`). World frame (z up); one set of `<robot>/...` arrays per robot in "
    "`robots`. In lock-step mode the same tick may be re-sent until every "
    "policy has answered it; receivers must treat a repeat as the same tick.",
    sender="sim -> all",
    topic="state",
    robot_required=False,
    robots_field="robots",
    fields={
        "robots": _f(list, "names of the robots in this message (non-empty, unique)",
                     items=(str,), pattern=ROBOT_NAME_RE),
        "holder": _f(str, ROBOT_NAME_FIELD_DOC + ": who holds the turn",
                     pattern=ROBOT_OR_EMPTY_RE),
        "episode": _f(int, "episode counter, starts at 0", lo=0),
        "seed": _f(int, "seed of this episode (perception noise is drawn from it)", lo=0),
        "arms": _f(dict, "per robot: {holding: block index or -1, in_zone: bool, "
                   "gripper: closure 0..1}"),
        "task": _f(dict, "per robot: the task's part of its observation (plain "
                   "values and lists; e.g. tower: my_blocks, placed, tower_count, tower_xy)"),
        "events": _f(list, "events of this tick: maps with at least t (s), type, robot",
                     items=(dict,)),
        "done": _f(bool, "the episode ended at this tick"),
    },
    arrays=(
        ArraySpec("*/q", F64, ("dof",), "joint positions of the arm", "rad"),
        ArraySpec("*/dq", F64, ("dof",), "joint velocities of the arm", "rad/s"),
        ArraySpec("*/ee_pose", F64, (7,), "tool pose, world frame", "m, quaternion xyzw"),
        ArraySpec("*/keypoints", F64, (5, 3), "base, two points along the arm, last link, "
                  "tool point; world frame", "m"),
        ArraySpec("blocks", F64, ("blocks", 7), "pose of each block, world frame", "m, quaternion xyzw"),
    ),
)

OBS = KindSpec(
    name="obs",
    doc="What one arm's policy gets to see this tick (header `tick`). Own "
    "quantities are exact and in the world frame; the partner comes from "
    "perception, in the observer's base frame, with the scenario's noise, "
    "delay and drops. Task-specific arrays (e.g. `my_blocks`, `placed`, "
    "`slots`) follow the required ones; scalars are in `scalars`.",
    sender="perception -> the policy of `robot`",
    topic="obs.{robot}",
    robot_required=True,
    fields={
        "holder": _f(str, ROBOT_NAME_FIELD_DOC + ": who holds the turn",
                     pattern=ROBOT_OR_EMPTY_RE),
        "observed": _f(bool, "false when this tick's view of the partner was "
                       "dropped; the seen_partner_* arrays then repeat the last view"),
        "episode": _f(int, "episode counter, starts at 0", lo=0),
        "scalars": _f(dict, "every scalar of the observation: t (s), gripper (0..1), "
                      "holding (block index, -1), in_zone, partner_in_zone, my_turn, done, "
                      "seen_partner_gripper, task scalars (e.g. tower_count, role)"),
    },
    # The one declaration of the observation (common/observation.py).
    arrays=tuple(ArraySpec(f.name, F64, f.shape, f.doc, f.unit)
                 for f in OBSERVATION if f.shape is not None),
)

CMD = KindSpec(
    name="cmd",
    doc="A command for one arm. Exactly one target array, chosen by `mode`; "
    "all values finite. The sim answers every cmd with a `reply`.",
    sender="policy / external controller -> sim",
    topic="cmd",
    robot_required=True,
    fields={
        "mode": _f(str, "\"joint\": track q_target; \"ee\": track ee_pose via IK",
                   choices=("joint", "ee")),
        "gripper": _f(float, "gripper target, 0 = open, 1 = closed", unit="1", lo=0.0, hi=1.0),
        "turn": _f(str, "\"\" = no change, \"request\" = ask for the turn, "
                   "\"release\" = give it back", choices=("", "request", "release")),
    },
    arrays=(
        ArraySpec("q_target", FLOAT_IN, ("dof",), "joint position targets", "rad",
                  when=("mode", "joint")),
        ArraySpec("ee_pose", FLOAT_IN, (7,), "tool-pose target, world frame (the sim solves IK)",
                  "m, quaternion xyzw", when=("mode", "ee")),
    ),
)

REPLY_CODES: Tuple[str, ...] = (
    "ok", "clamped", "refused_zone", "not_owner", "bad_message", "unknown_robot", "busy", "stale",
)

REPLY = KindSpec(
    name="reply",
    doc="The sim's answer to one `cmd` (codes and their conditions: docs/protocol.md §2.9).",
    sender="sim -> the controller that sent the cmd",
    topic="reply",
    robot_required=True,
    fields={
        "ok": _f(bool, "true when the command was applied (possibly clamped)"),
        "code": _f(str, "outcome code, see the reply-code table", choices=REPLY_CODES),
        "message": _f(str, "human-readable detail, one line (may be \"\")"),
        "clamped": _f(int, "number of joint targets clamped to their limits", lo=0),
        "ack": _f(int, "header seq of the cmd answered, -1 if it could not be decoded", lo=-1),
    },
)

TURN = KindSpec(
    name="turn",
    doc="Turn arbitration: who may act on the shared task from header `tick` "
    "on. Published by the arbiter on every decision (and as the answer to a "
    "`turn_query`).",
    sender="arbiter -> all",
    topic="turn",
    robot_required=False,
    fields={
        "holder": _f(str, ROBOT_NAME_FIELD_DOC + ": who holds the turn after this event",
                     pattern=ROBOT_OR_EMPTY_RE),
        "event": _f(str, "\"grant\", \"release\", \"reclaim\" (taken back by the "
                    "arbiter, e.g. timeout) or \"none\" (no change)",
                    choices=("grant", "release", "reclaim", "none")),
        "reason": _f(str, "human-readable reason, one line (may be \"\")"),
        "episode": _f(int, "episode counter", lo=0),
        "events": _f(list, "every turn event of this decision: maps {t, kind, robot, reason}",
                     items=(dict,)),
        "next": _f(str, "robot next in turn order", pattern=ROBOT_OR_EMPTY_RE),
    },
)

TURN_QUERY = KindSpec(
    name="turn_query",
    doc="The sim's per-tick question to the arbiter (header `tick`, `t_sim`): "
    "who holds the turn now, given who still has work, who asked to release "
    "or take it, and when each robot last sent a command.",
    sender="sim -> arbiter",
    topic="turn_query",
    robot_required=False,
    fields={
        "episode": _f(int, "episode counter", lo=0),
        "has_work": _f(dict, "robot -> bool: the task still has something for it to do"),
        "release": _f(list, "robots that sent turn=\"release\" since the last query",
                      items=(str,), pattern=ROBOT_NAME_RE),
        "request": _f(list, "robots that sent turn=\"request\" since the last query",
                      items=(str,), pattern=ROBOT_NAME_RE),
        "last_heard": _f(dict, "robot -> sim time (s) of its last accepted command"),
        "holder": _f(str, "holder as last decided (lets a restarted arbiter resume)",
                     pattern=ROBOT_OR_EMPTY_RE),
        "next": _f(str, "robot next in turn order as last decided", pattern=ROBOT_OR_EMPTY_RE),
    },
)

EPISODE = KindSpec(
    name="episode",
    doc="Sent by the sim to the supervisor when an episode ends: its summary "
    "(see docs/summary.md for the keys) as UTF-8 JSON in the `summary` array "
    "frame, so the header stays small however long the episode was.",
    sender="sim -> supervisor",
    topic="episode",
    robot_required=False,
    fields={
        "index": _f(int, "episode counter", lo=0),
        "last": _f(bool, "no episode follows"),
    },
    arrays=(
        ArraySpec("summary", ("|u1",), (None,), "the episode's summary object, UTF-8 JSON", "bytes"),
    ),
)

#: All message kinds by name.
KINDS: Mapping[str, KindSpec] = {
    k.name: k for k in (HELLO, HEARTBEAT, STOP, STATE, OBS, CMD, REPLY, TURN, TURN_QUERY, EPISODE)
}


@dataclass(frozen=True)
class CompiledKind:
    """Lookup tables derived once from a :class:`KindSpec` for fast matching."""

    spec: KindSpec
    exact: Mapping[str, ArraySpec]
    by_suffix: Mapping[str, ArraySpec]
    patterns: Mapping[str, "re.Pattern[str]"] = field(default_factory=dict)


def compile_kind(spec: KindSpec) -> CompiledKind:
    """Split a kind's arrays into exact names and "*/suffix" patterns."""
    exact = {a.name: a for a in spec.arrays if not a.is_pattern}
    by_suffix = {a.suffix: a for a in spec.arrays if a.is_pattern}
    patterns = {
        name: re.compile(f.pattern)
        for name, f in spec.fields.items()
        if f.pattern is not None
    }
    return CompiledKind(spec, exact, by_suffix, patterns)


#: Compiled registry, used by the codec.
COMPILED: Mapping[str, CompiledKind] = {name: compile_kind(k) for name, k in KINDS.items()}
