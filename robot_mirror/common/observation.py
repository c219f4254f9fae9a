"""World state as plain data, the one declaration of a robot's observation,
and the one function that builds it.

The in-process environment and the perception process both call
:func:`build_observation`, so a policy receives the same dictionary whether
it runs beside the simulator or in its own process. :data:`OBSERVATION`
declares every field once; the environment's declared spec, the contract
check (``env_checker``) and the wire schema of ``obs`` (``bus/schema.py``)
are all derived from it, so the three cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from robot_mirror.common.perception import PartnerObserver, PartnerView


@dataclass
class ArmState:
    q: np.ndarray            # (dof,) rad
    dq: np.ndarray           # (dof,) rad/s
    ee_pose: np.ndarray      # (7,) tool pose, world frame
    gripper: float           # 0 open .. 1 closed
    keypoints: np.ndarray    # (5, 3) world frame
    holding: int = -1        # block index, -1 none
    in_zone: bool = False


@dataclass
class WorldState:
    t: float
    tick: int
    episode: int
    seed: int
    holder: str
    arms: dict[str, ArmState]
    blocks: np.ndarray                       # (N, 7) world frame
    task_obs: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)
    done: bool = False


@dataclass(frozen=True)
class ObsField:
    """One entry of a robot's observation.

    ``shape`` is None for a scalar; a string dimension (``"dof"``,
    ``"blocks"``) is bound per message. ``dtype`` is a numpy kind: ``"f"``
    float64, ``"b"`` bool, ``"i"`` int, ``"s"`` str."""

    name: str
    dtype: str
    shape: tuple | None
    doc: str
    unit: str = ""


# The fields every task shares; a task adds its own (``Task.observation``).
OBSERVATION: tuple[ObsField, ...] = (
    ObsField("t", "f", None, "simulated time of this tick", "s"),
    ObsField("q", "f", ("dof",), "own joint positions", "rad"),
    ObsField("dq", "f", ("dof",), "own joint velocities", "rad/s"),
    ObsField("ee_pose", "f", (7,), "own tool pose, world frame", "m, quaternion xyzw"),
    ObsField("gripper", "f", None, "own gripper closure, 0 open .. 1 closed"),
    ObsField("keypoints", "f", (5, 3), "own keypoints (base, two points along the arm, last link, "
             "tool point), world frame", "m"),
    ObsField("holding", "i", None, "index of the block held, -1 for none"),
    ObsField("in_zone", "b", None, "own arm is inside the shared zone"),
    ObsField("partner_in_zone", "b", None, "the partner's arm is inside the shared zone"),
    ObsField("seen_partner_ee_pose", "f", (7,), "partner tool pose as seen, observer base frame",
             "m, quaternion xyzw"),
    ObsField("seen_partner_keypoints", "f", (5, 3), "partner keypoints as seen, observer base frame", "m"),
    ObsField("seen_partner_gripper", "f", None, "partner gripper closure as seen"),
    ObsField("partner_observed", "b", None, "false when this tick's view of the partner was dropped "
             "(the seen_partner_* fields then repeat the last view)"),
    ObsField("blocks", "f", ("blocks", 7), "block poses, world frame", "m, quaternion xyzw"),
    ObsField("holder", "s", None, "robot holding the turn, \"\" for nobody"),
    ObsField("my_turn", "b", None, "this robot holds the turn"),
    ObsField("done", "b", None, "the episode ended at this tick (success, failure or time limit): "
             "nothing more happens in it and the next observation belongs to the next episode"),
)

OBSERVATION_FIELDS: dict[str, ObsField] = {f.name: f for f in OBSERVATION}


def build_observation(state: WorldState, name: str, observer: PartnerObserver,
                      seen: PartnerView | None = None) -> dict[str, Any]:
    """``name``'s observation: its own state exactly, its partner only as
    ``observer`` perceives it (never the partner's joint angles). ``seen``:
    this tick's view when the observer was already fed (``PartnerObserver.feed``)."""
    partner = next(n for n in state.arms if n != name)
    me, other = state.arms[name], state.arms[partner]
    if seen is None:
        seen = observer.observe(other.ee_pose, other.keypoints, other.gripper)
    obs: dict[str, Any] = {
        "t": state.t,
        "q": me.q, "dq": me.dq, "ee_pose": me.ee_pose, "gripper": me.gripper,
        "keypoints": me.keypoints,
        "holding": me.holding, "in_zone": me.in_zone,
        "partner_in_zone": other.in_zone,
        "seen_partner_ee_pose": seen.ee_pose, "seen_partner_keypoints": seen.keypoints,
        "seen_partner_gripper": seen.gripper, "partner_observed": seen.observed,
        "blocks": state.blocks.copy(),
        "holder": state.holder,
        "my_turn": state.holder == name,
        "done": bool(state.done),
    }
    for key, value in state.task_obs.get(name, {}).items():
        obs[key] = np.asarray(value) if isinstance(value, (list, tuple)) else value
    return obs


class LazyObservation(Mapping):
    """A robot's observation, built by ``build`` on first read.

    A trainer that steps millions of ticks and reads only some observations
    (or none: the hold benchmark) then pays only for those it reads. It
    reads like the plain dictionary :func:`build_observation` returns (and
    pickles and copies as one); whoever makes it must call :meth:`build`
    before the world moves on if the object is still alive."""

    __slots__ = ("_build", "_data", "__weakref__")

    def __init__(self, build: Callable[[], dict[str, Any]]) -> None:
        self._build: Callable[[], dict[str, Any]] | None = build
        self._data: dict[str, Any] | None = None

    def build(self) -> dict[str, Any]:
        if self._data is None:
            self._data, self._build = self._build(), None
        return self._data

    def __getitem__(self, key: str) -> Any:
        return self.build()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.build())

    def __len__(self) -> int:
        return len(self.build())

    def __reduce__(self):
        return dict, (self.build(),)

    def __repr__(self) -> str:
        return f"LazyObservation({self.build()!r})"
