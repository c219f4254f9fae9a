"""Gymnasium spaces derived from the one declaration of the observation.

Every field of :data:`~robot_mirror.common.observation.OBSERVATION` becomes
one entry of a ``spaces.Dict``, by kind: ``f`` a float64 ``Box`` (unbounded),
``i`` an int64 ``Box``, ``b`` ``Discrete(2)`` (a scalar) or ``MultiBinary``
(an array), ``s`` a ``Text``. Symbolic dimensions (``dof``, ``blocks``) are
bound from one observation of the scenario, and so are the task's own fields
(``Task.observation``), which have no declaration of their own: their kind
and shape are read from the values. :func:`to_space` turns an observation
into a member of its space, field by field, the same way.

An action is one ``ArmCommand`` as a ``spaces.Dict``: joint targets within
the arm's limits, the gripper closure and the turn intent.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any, Callable

import numpy as np
from gymnasium import spaces

from robot_mirror.common.commands import ArmCommand
from robot_mirror.common.observation import OBSERVATION, ObsField

TURN_INTENTS = ("", "release", "request")  # action["turn"] indexes this
_INT_BOUND = 2**31  # int fields hold indices and counts; sampling needs finite bounds
_TEXT_CHARS = string.ascii_letters + string.digits + "_-. "
_KINDS = {"f": "f", "i": "i", "u": "i", "b": "b", "U": "s"}


def task_fields(sample: Mapping[str, Any]) -> tuple[ObsField, ...]:
    """Declarations of the fields an observation holds beyond OBSERVATION,
    read from one observation's values (the tasks declare none)."""
    declared = {f.name for f in OBSERVATION}
    out = []
    for name, value in sample.items():
        if name in declared:
            continue
        arr = np.asarray(value)
        out.append(ObsField(name, _KINDS[arr.dtype.kind], arr.shape if arr.ndim else None, "task field"))
    return tuple(out)


def bind(fields: tuple[ObsField, ...], sample: Mapping[str, Any]) -> tuple[ObsField, ...]:
    """``fields`` with each symbolic dimension replaced by its size in ``sample``."""
    dims: dict[str, int] = {}
    for f in fields:
        for want, size in zip(f.shape or (), np.shape(sample[f.name])):
            if isinstance(want, str):
                dims.setdefault(want, size)
    return tuple(ObsField(f.name, f.dtype, None if f.shape is None else tuple(dims.get(d, d) for d in f.shape),
                          f.doc, f.unit) for f in fields)


def field_space(f: ObsField, charset: str = _TEXT_CHARS) -> spaces.Space:
    shape = f.shape or ()
    if f.dtype == "f":
        return spaces.Box(-np.inf, np.inf, shape, np.float64)
    if f.dtype == "i":
        return spaces.Box(-_INT_BOUND, _INT_BOUND - 1, shape, np.int64)
    if f.dtype == "b":
        return spaces.Discrete(2) if not shape else spaces.MultiBinary(list(shape))
    return spaces.Text(64, min_length=0, charset=charset)


def observation_fields(sample: Mapping[str, Any]) -> tuple[ObsField, ...]:
    """Every field of an observation like ``sample``, with concrete shapes."""
    return bind(OBSERVATION, sample) + task_fields(sample)


def observation_space(fields: tuple[ObsField, ...], names: list[str]) -> spaces.Dict:
    """The observation space of ``fields``; ``names`` (the robots) may appear
    in text fields, so their characters are allowed there."""
    charset = "".join(sorted(set(_TEXT_CHARS).union(*names)))
    return spaces.Dict({f.name: field_space(f, charset) for f in fields})


def _as_float(value: Any) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


def _as_int(value: Any) -> np.ndarray:
    return np.asarray(value, dtype=np.int64)


def _as_bits(value: Any) -> np.ndarray:
    return np.asarray(value, dtype=np.int8)


def _as_bit(value: Any) -> int:
    return int(bool(value))


def converters(fields: tuple[ObsField, ...]) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    """Per field, the function that makes its value a member of its space
    (chosen once: :func:`to_space` runs every step)."""
    pick = {"f": _as_float, "i": _as_int, "s": str}
    return tuple((f.name, (_as_bits if f.shape else _as_bit) if f.dtype == "b" else pick[f.dtype]) for f in fields)


def to_space(obs: Mapping[str, Any], convert: tuple[tuple[str, Callable[[Any], Any]], ...]) -> dict[str, Any]:
    """``obs`` as a member of its observation space (values converted, none
    rounded); ``convert`` from :func:`converters`."""
    return {name: fn(obs[name]) for name, fn in convert}


def action_space(lower: np.ndarray, upper: np.ndarray) -> spaces.Dict:
    """One arm's command: joint targets within its limits, gripper 0 (open)
    .. 1 (closed), turn intent (an index of TURN_INTENTS)."""
    return spaces.Dict({
        "q_target": spaces.Box(np.asarray(lower, np.float64), np.asarray(upper, np.float64), dtype=np.float64),
        "gripper": spaces.Box(0.0, 1.0, (), np.float64),
        "turn": spaces.Discrete(len(TURN_INTENTS)),
    })


def to_command(action: Mapping[str, Any]) -> ArmCommand:
    """An action of :func:`action_space` as the command the environment takes."""
    return ArmCommand(q_target=np.asarray(action["q_target"], float), gripper=float(action["gripper"]),
                      turn=TURN_INTENTS[int(action["turn"])])
