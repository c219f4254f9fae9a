"""Scripted experts for the imitation task (the mirror game).

:class:`ImitationExpert` is the :class:`~robot_mirror.policies.tower_expert.ScriptedExpert`
with a different answer to two questions — *is there a block to move on this
turn?* and *where does it go?* — and the same motion primitives (approach,
grasp, lift, carry, place, release, retreat, home):

* as **leader** (observation ``role == "leader"``, ``phase == "lead"``) it
  places its block in ``slots[target_slot]`` and gives the turn back the
  moment it lets go of the block (it retreats during the follower's turn,
  on its own side);
* as **follower** it pre-positions during the leader's turn: it picks up its
  block and holds it over the slot its ``slot_source`` names *now*, asking
  every tick and moving over whenever the answer changes. At the grant it
  asks once more, commits, lowers the block there and lets go (then gives the
  turn back). The task times the follower from the grant to the release
  (``follow_budget``), so a belief that is right early pays and one that
  switches late costs. The follower's observation never holds the answer, so
  the slot source is what distinguishes the baselines:

  - :class:`OracleSlot` — ceiling: the task's true slot (in process only;
    known from the start of the leader's turn);
  - :class:`ObservedSlot` — reads the slot off the leader's block (its pose
    is in every observation); the stand-in for the oracle where the task
    object is out of reach (a policy process);
  - :class:`RandomSlot` — floor: a uniformly random slot (seeded per episode);
  - the ``constant`` and ``heuristic`` sources of :mod:`robot_mirror.policies.baselines`.

Each change of belief is logged in :attr:`ImitationExpert.belief_log`
(``(round, t, slot)``, simulated seconds) for in-process studies. It exposes
``segment`` / ``target`` (slot index) / ``block`` like the tower expert.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from robot_mirror.common.commands import ArmCommand
from robot_mirror.policies.plan import FREE_SPEED, Step
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
    and the number of resets (one per episode), so a run repeats; in process
    :meth:`seed_episode` (called by the rollout after ``reset``) re-seeds it
    from the episode's seed, so each evaluation seed draws its own slots."""

    name = "random"

    def __init__(self, seed: int | list[int] = 0) -> None:
        self.seed = list(np.atleast_1d(seed).astype(int).tolist())
        self.episode = -1
        self.rng = np.random.default_rng(self.seed)
        self._round: Any = None
        self._slot = -1

    def reset(self) -> None:
        self.episode += 1
        self.rng = np.random.default_rng([*self.seed, self.episode])
        self._round: Any = None
        self._slot = -1

    def seed_episode(self, seed: int) -> None:
        """Draw this episode's slots from the episode seed (the scenario seed dropped)."""
        self.rng = np.random.default_rng([int(seed), *self.seed[1:]])

    def __call__(self, obs: dict[str, Any]) -> int:
        """One draw per round (the follower asks every tick): a belief, not a flicker."""
        if self._round is None or obs.get("round") != self._round:
            self._round = obs.get("round", -1)
            self._slot = int(self.rng.integers(len(obs["slots"])))
        return self._slot


def mirrored_slot(obs: dict[str, Any], xy: np.ndarray) -> int:
    """Index of the slot on this side mirroring world point ``xy`` on the
    other: slots on both sides share their coordinate along the lateral axis
    (the line the slots are spread on, through the zone centre), so the
    nearest slot in that coordinate is the mirror image's slot."""
    slots = np.asarray(obs["slots"], float)[:, :2]
    if len(slots) < 2:
        return 0
    axis = slots[-1] - slots[0]
    axis /= np.linalg.norm(axis)
    centre = np.asarray(obs["tower_xy"], float)
    mine = (slots - centre) @ axis
    theirs = float((np.asarray(xy, float)[:2] - centre) @ axis)
    return int(np.argmin(np.abs(mine - theirs)))


class ObservedSlot:
    """The slot the leader's block sits in, read from the observed block
    poses and mirrored to this side (:func:`mirrored_slot`)."""

    name = "observed"

    def reset(self) -> None:
        pass

    def __call__(self, obs: dict[str, Any]) -> int:
        return mirrored_slot(obs, np.asarray(obs["blocks"], float)[int(obs["partner_block"]), :2])


class ImitationExpert(ScriptedExpert):
    """Leader: place at the announced slot. Follower: hover over ``slot_source(obs)``
    during the leader's turn, place there at the grant."""

    # The tower expert's posture-keeping IK and straight-line return home
    # (issue 9) are measured on the tower only. Here they moved the round-0
    # leader's block 31 cm off its slot and made the round-1 follower late
    # (tests/test_imitation.py, seed 0), so imitation keeps the old motion.
    keep_posture = False
    straight_home = False

    def __init__(self, spec, task_config, control_hz: int, kinematics=None,
                 slot_source: Callable[[dict[str, Any]], int] | None = None) -> None:
        self.slot_source = slot_source if slot_source is not None else ObservedSlot()
        super().__init__(spec, task_config, control_hz, kinematics)

    def reset(self) -> None:
        super().reset()
        self._slot: int | None = None
        self._belief: int | None = None
        self._committed = False
        self._turn_released = False
        self._letting_go = False
        self._round: int | None = None
        self.belief_log: list[tuple[int, float, int]] = []
        reset = getattr(self.slot_source, "reset", None)
        if reset is not None:
            reset()

    def seed_episode(self, seed: int) -> None:
        """The rollout's episode seed, for a slot source that draws (``random``)."""
        hook = getattr(self.slot_source, "seed_episode", None)
        if hook is not None:
            hook(seed)

    # belief ------------------------------------------------------------
    def _ask(self, obs) -> int:
        """The slot source's answer now, logged when it changes."""
        slot = int(self.slot_source(obs))
        if slot != self._belief:
            self._belief = slot
            self.belief_log.append((int(obs.get("round", -1)), float(obs.get("t", 0.0)), slot))
        return slot

    def _following(self, obs) -> bool:
        """Follower of a round in play whose slot is not yet committed."""
        return obs.get("role") == "follower" and obs.get("phase") in ("lead", "follow") and not self._committed

    # hooks of ScriptedExpert ------------------------------------------
    def _prefetch_due(self, obs) -> bool:
        """Off turn, the follower fetches its block as soon as the round is on."""
        return obs.get("role") == "follower" and obs.get("phase") == "lead" and not obs["my_turn"]

    def _next_block(self, obs) -> int | None:
        """Our block, if our part of the round is pending (leader: on our
        turn; follower: from the start of the leader's turn)."""
        role, phase = obs.get("role"), obs.get("phase")
        if role == "leader" and phase == "lead" and obs["my_turn"]:
            slot = int(obs["target_slot"])
        elif self._following(obs) or (obs.get("role") == "follower" and phase == "follow" and obs["my_turn"]):
            slot = self._ask(obs)  # (on our turn with nothing planned: a plan given up, start over)
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
        """Slots are off the zone and nothing stacks: lift to the placing
        height, and (fetching ahead) hold the block over the believed slot."""
        self._turn_released = False
        self._letting_go = False
        self._committed = bool(obs["my_turn"])
        super()._plan_pick_and_place(obs, block, ahead=False)
        if ahead and self.plan and self.plan[-1].kind == "gate":
            self.plan.insert(len(self.plan) - 1, self._hover_step(obs))

    def _hover_step(self, obs) -> Step:
        """Hold the block at placing height over ``self._slot``."""
        x, y, surface, _ = self._place_spot(obs)
        return Step("move", "carry", np.array([x, y, self._carry_z(surface), self._place_yaw]), 1.0,
                    FREE_SPEED, data={"hover": True})

    def _in_zone_steps(self, obs) -> list[Step]:
        """At the grant: ask once more, then commit to that slot."""
        if self._following(obs):
            slot = self._ask(obs)
            if 0 <= slot < len(obs["slots"]):
                self._slot = slot
        self._committed = True
        return super()._in_zone_steps(obs)

    # per tick -----------------------------------------------------------
    def _retarget(self, obs) -> None:
        """Follower before the grant: move the hover over the slot believed now."""
        slot = self._ask(obs)
        if slot == self._slot or not 0 <= slot < len(obs["slots"]) or not self.plan or self.block is None:
            return
        hover = next((s for s in self.plan if s.data.get("hover")), None)
        if hover is None and self.plan[0].kind != "gate":
            return  # not fetching for this round yet (e.g. still on the way home)
        self._slot = self.target = slot
        step = self._hover_step(obs)
        if hover is not None:
            hover.target = step.target
            hover.arrived_for = 0.0
        else:
            self.plan.insert(0, step)

    def act(self, obs: dict[str, Any]) -> ArmCommand:
        if obs.get("round") != self._round:  # a new round: a new belief to form
            self._round, self._committed, self._belief = obs.get("round"), False, None
        if self._following(obs) and not obs["my_turn"]:
            self._retarget(obs)
        cmd = super().act(obs)
        if self.segment == "place" and self.gripper == 0.0:
            self._letting_go = True  # the place step's grip is opening
        let_go = self._letting_go and obs["holding"] != self.block
        if obs["my_turn"] and let_go and not self._turn_released:
            cmd.turn = "release"  # the block is down: the turn goes back at once
            self._turn_released = True
        elif cmd.turn == "release" and self._turn_released:
            cmd.turn = ""  # already given back; a re-grant is the next round's turn
        elif cmd.turn == "release":
            self._turn_released = True
        return cmd
