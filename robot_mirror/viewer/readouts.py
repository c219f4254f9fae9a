"""Per arm, what its mirror network reads out, against the truth.

The readouts come from the policy, duck-typed: a policy object with a
``readouts()`` method returning (or None when it has nothing this tick)::

    {"turn_end_pred_s": float | None,   # predicted s until the partner's turn ends
     "segment_probs": [float, ...],     # recognised action segment of the partner
     "target_probs": [float, ...],      # recognised target of the partner
     "core": [float, ...],              # core activations: own stream, then observed stream
     "segment_names": [str, ...]}       # optional: names of the segment classes

Every key is optional. The truth: the time to the partner's turn end is
known once that turn ends (the ``turn_end`` event), so it is logged then,
back at the ticks it belongs to; the partner's segment and target come from
the partner's policy's ``labels()`` (segment name, target, block), as the
scripted experts have, where the run has it at hand (in process).
Entities: docs/viewer.md.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

MODES = {"executing": (235, 120, 30), "observing": (40, 170, 90), "idle": (90, 90, 90)}
STRIP = 6      # px: the mode strip above the heatmap
GAP = 2        # px: between the own and the observed stream


@dataclass
class Clock:
    """Where a logged value goes on the run's timelines."""

    tick: int
    seconds: float


def diverging(values: np.ndarray) -> np.ndarray:
    """Activations in [-1, 1] (a GRU's range) as RGB: blue, white, red."""
    v = np.clip(np.nan_to_num(values), -1.0, 1.0)[..., None]
    white = np.array([245.0, 245.0, 245.0])
    blue, red = np.array([40.0, 80.0, 200.0]), np.array([200.0, 40.0, 40.0])
    rgb = np.where(v < 0, white + (-v) * (blue - white), white + v * (red - white))
    return rgb.astype(np.uint8)


def heatmap(columns: list[np.ndarray], modes: list[str], width: int) -> np.ndarray:
    """Units down, ticks across (newest at the right), the arm's mode as a
    strip on top; the two streams split by a dark line."""
    core = np.stack(columns, axis=1)  # (units, ticks)
    half = core.shape[0] // 2
    strip = np.array([MODES.get(m, MODES["idle"]) for m in modes], dtype=np.uint8)[None].repeat(STRIP, 0)
    gap = np.full((GAP, core.shape[1], 3), 30, dtype=np.uint8)
    image = np.concatenate([strip, diverging(core[:half]), gap, diverging(core[half:])], axis=0)
    if image.shape[1] < width:  # the first ticks of an episode: pad on the left
        pad = np.full((image.shape[0], width - image.shape[1], 3), 255, dtype=np.uint8)
        image = np.concatenate([pad, image], axis=1)
    return image


class ReadoutLogger:
    """One arm's readouts: scalars per tick, the core heatmap every few ticks."""

    def __init__(self, robot: str, partner: str, *, window: int, every: int) -> None:
        self.robot, self.partner = robot, partner
        self.path = f"mirror/{robot}"
        self.every = max(1, every)
        self.window = window
        self.reset()

    def log_static(self, rr: Any, stream: Any) -> None:
        colours = np.array([(r << 24) | (g << 16) | (b << 8) | 0xFF for r, g, b in MODES.values()], dtype=np.uint32)
        stream.log(f"{self.path}/mode", rr.StateConfiguration(values=list(MODES), colors=colours), static=True)

    def reset(self) -> None:
        self._columns: deque = deque(maxlen=self.window)
        self._modes: deque = deque(maxlen=self.window)
        self._pending: list[tuple[Clock, float]] = []  # ticks of the partner's turn, for the truth
        self._mode: str | None = None
        self._named: set[str] = set()
        self._ticks = 0

    def log_tick(self, rr: Any, stream: Any, mode: str, t: float, readouts: dict | None,
                 truth: tuple | None, clock: Clock) -> None:
        """``t``: the episode time the readouts refer to; ``truth``: the
        partner's ``labels()`` or None."""
        if mode != self._mode:
            stream.log(f"{self.path}/mode", rr.StateChange(state=mode))
            self._mode = mode
        if mode == "observing":
            self._pending.append((clock, t))
        readouts = readouts or {}
        pred = readouts.get("turn_end_pred_s")
        if pred is not None:
            stream.log(f"{self.path}/turn_end/predicted", rr.Scalars([float(pred)]))
        names = readouts.get("segment_names")
        for head, index in (("segment", 0), ("target", 1)):
            probs = readouts.get(f"{head}_probs")
            if probs is not None:
                self._log_head(rr, stream, head, np.asarray(probs, dtype=float),
                               names if head == "segment" else None, truth, index)
        core = readouts.get("core")
        if core is not None:
            self._columns.append(np.asarray(core, dtype=float).ravel())
            self._modes.append(mode)
            self._ticks += 1
            if self._ticks % self.every == 0:
                self.log_heatmap(rr, stream)

    def _log_head(self, rr: Any, stream: Any, head: str, probs: np.ndarray, names, truth, index: int) -> None:
        path = f"{self.path}/{head}"
        if head not in self._named:
            labels = list(names) if names else [f"{head} {i}" for i in range(len(probs))]
            stream.log(f"{path}/probs", rr.SeriesLines(names=labels[:len(probs)]), static=True)
            self._named.add(head)
        stream.log(f"{path}/probs", rr.Scalars(probs))
        stream.log(f"{path}/recognised", rr.Scalars([float(np.argmax(probs))]))
        true = truth_index(truth, index, names)
        if true is not None:
            stream.log(f"{path}/truth", rr.Scalars([float(true)]))

    def log_heatmap(self, rr: Any, stream: Any) -> None:
        if not self._columns or len({c.size for c in self._columns}) != 1:
            return
        image = heatmap(list(self._columns), list(self._modes), self.window)
        stream.log(f"{self.path}/core", rr.Image(image).compress(jpeg_quality=90))

    def partner_turn_ended(self, rr: Any, stream: Any, t_end: float, at: Callable[[Clock], None],
                           now: Clock) -> None:
        """The partner's turn ended at ``t_end``: log the true time to it at
        every tick of that turn, then go back to ``now``."""
        for clock, t in self._pending:
            at(clock)
            stream.log(f"{self.path}/turn_end/true", rr.Scalars([max(0.0, t_end - t)]))
        if self._pending:
            at(now)
        self._pending = []


def truth_index(truth: tuple | None, index: int, names) -> int | None:
    """The true class of a head from the partner's ``labels()``: the
    segment by its name (needs ``segment_names``), the target as given."""
    if truth is None:
        return None
    value = truth[index]
    if index == 0:
        return list(names).index(value) if names and value in list(names) else None
    return int(value) if int(value) >= 0 else None
