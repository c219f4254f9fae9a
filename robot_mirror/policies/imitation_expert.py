"""Scripted experts for the imitation task (the mirror game).

:class:`ImitationExpert` is the :class:`~robot_mirror.policies.tower_expert.ScriptedExpert`
with a different answer to two questions — *is there a block to move on this
turn?* and *where does it go?* — and the same motion primitives (approach,
grasp, lift, carry, place, release, retreat, home):

* as **leader** (observation ``role == "leader"``, ``phase == "lead"``) it
  places its block in ``slots[target_slot]``;
* as **follower** (``role == "follower"``, ``phase == "follow"``) it places
  its block in the slot its ``slot_source`` names. The follower's
  observation never holds the answer, so the slot source is what
  distinguishes the baselines:

  - :class:`OracleSlot` — ceiling: the task's true slot (in process only);
  - :class:`ObservedSlot` — reads the slot off the leader's placed block
    (its pose is in every observation); the stand-in for the oracle where the
    task object is out of reach (a policy process);
  - :class:`RandomSlot` — floor: a uniformly random slot (seeded).

It gives the turn back once per turn (the follower of a round is re-granted
the turn at once as the next round's leader, while it is still on its way
home) and exposes ``segment`` / ``target`` (slot index) / ``block`` like the
tower expert.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from robot_mirror.common.commands import ArmCommand
from robot_mirror.policies.tower_expert import ScriptedExpert


class OracleSlot:
    """The task's ground truth (``task.true_slot``), for ceiling figures."""

    name = "oracle"

    def __init__(self, truth: Callable[[], int]) -> None:
        self.truth = truth

    def reset(self) -> None:
        pass

    def __call__(self, obs: dict[str, Any]) -> int:
        return int(self.truth())


class RandomSlot:
    """A uniformly random slot: the chance-level floor. Seeded by ``seed``
    and the number of resets (one per episode), so a run repeats."""

    name = "random"

    def __init__(self, seed: int | list[int] = 0) -> None:
        self.seed = list(np.atleast_1d(seed).astype(int).tolist())
        self.episode = -1
        self.rng = np.random.default_rng(self.seed)

    def reset(self) -> None:
        self.episode += 1
        self.rng = np.random.default_rng([*self.seed, self.episode])

    def __call__(self, obs: dict[str, Any]) -> int:
        return int(self.rng.integers(len(obs["slots"])))


class ObservedSlot:
    """The slot the leader's block sits in, read from the observed block
    poses and mirrored to this side: slots on both sides share their
    coordinate along the lateral axis (the line the slots are spread on)."""

    name = "observed"

    def reset(self) -> None:
        pass

    def __call__(self, obs: dict[str, Any]) -> int:
        slots = np.asarray(obs["slots"], float)[:, :2]
        if len(slots) < 2:
            return 0
        axis = slots[-1] - slots[0]
        axis /= np.linalg.norm(axis)
        centre = np.asarray(obs["tower_xy"], float)
        block = np.asarray(obs["blocks"], float)[int(obs["partner_block"]), :2]
        mine = (slots - centre) @ axis
        theirs = float((block - centre) @ axis)
        return int(np.argmin(np.abs(mine - theirs)))


class ImitationExpert(ScriptedExpert):
    """Leader: place at the announced slot. Follower: place at ``slot_source(obs)``."""

    def __init__(self, spec, task_config, control_hz: int, kinematics=None,
                 slot_source: Callable[[dict[str, Any]], int] | None = None) -> None:
        self.slot_source = slot_source if slot_source is not None else ObservedSlot()
        self._slot: int | None = None
        self._turn_released = False
        super().__init__(spec, task_config, control_hz, kinematics)

    def reset(self) -> None:
        super().reset()
        self._slot = None
        self._turn_released = False
        reset = getattr(self.slot_source, "reset", None)
        if reset is not None:
            reset()

    # hooks of ScriptedExpert ------------------------------------------
    def _next_block(self, obs) -> int | None:
        """Called on our turn with nothing planned: our block, if our part of
        the round is pending (the slot is decided here, once per placement)."""
        role, phase = obs.get("role"), obs.get("phase")
        if role == "leader" and phase == "lead":
            slot = int(obs["target_slot"])
        elif role == "follower" and phase == "follow":
            slot = int(self.slot_source(obs))
        else:
            return None
        if not 0 <= slot < len(obs["slots"]):
            return None
        self._slot = slot
        return int(obs["my_block"])

    def _place_spot(self, obs) -> tuple[float, float, float, int]:
        assert self._slot is not None
        x, y, z = (float(v) for v in np.asarray(obs["slots"])[self._slot])
        return x, y, z, self._slot

    def _plan_pick_and_place(self, obs, block: int, ahead: bool = False) -> None:
        self._turn_released = False
        super()._plan_pick_and_place(obs, block, ahead)

    def act(self, obs: dict[str, Any]) -> ArmCommand:
        cmd = super().act(obs)
        if cmd.turn == "release":
            if self._turn_released:
                cmd.turn = ""  # already given back; a re-grant is the next round's turn
            else:
                self._turn_released = True
        return cmd
