"""The turn timeline: who holds the turn, and every request, release,
refusal and zone violation, from the ``state`` messages' ``events``.

Entities (docs/viewer.md): ``turns/holder`` (a state lane: the holder's
name or ``nobody``), ``turns/events`` (one text line per event; violations
and refusals as warnings), and per robot ``turns/<robot>/<kind>`` (a point
at each tick with such an event, kinds :data:`MARKED`), so the counts can be
read off a plot. A robot that asks again every tick (an external
controller may) gets a text line only when it starts asking, and a point
every tick.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

NOBODY = "nobody"
#: Event types drawn as points per robot, and their colour.
MARKED = {"turn_request": (90, 160, 255), "turn_release": (60, 200, 90),
          "refused": (255, 150, 0), "violation": (230, 40, 40)}
LANE_COLOURS = [0xE67828FF, 0x3C82E6FF]  # the holder lane: first / second robot (as their blocks)
STREAKS = ("turn_request", "refused")  # repeated tick after tick: one line per streak


def event_kind(event: dict) -> str:
    """A turn end by release is a ``turn_release``; every other type as sent."""
    kind = str(event.get("type", ""))
    if kind == "turn_end" and event.get("reason") == "release":
        return "turn_release"
    return kind


def event_text(event: dict) -> str:
    robot = event.get("robot") or "-"
    kind = str(event.get("type", ""))
    extra = {k: v for k, v in event.items() if k not in ("t", "type", "robot")}
    detail = " ".join(f"{k}={v}" for k, v in extra.items())
    return f"t={float(event.get('t', 0.0)):7.2f}s  {robot:<8} {kind} {detail}".rstrip()


def level_of(rr: Any, kind: str) -> Any:
    if kind == "violation":
        return rr.TextLogLevel.ERROR
    if kind == "refused":
        return rr.TextLogLevel.WARN
    return rr.TextLogLevel.INFO


class TurnTimeline:
    """Log the turn holder and the turn events of each tick."""

    def __init__(self, robots: list[str]) -> None:
        self.robots = list(robots)
        self._holder: str | None = None
        self._streak: dict[tuple[str, str], int] = {}  # (robot, kind) -> last tick seen

    def log_static(self, rr: Any, stream: Any) -> None:
        stream.log("turns/holder", rr.StateConfiguration(
            values=[*self.robots, NOBODY],
            colors=np.array([*LANE_COLOURS[:len(self.robots)], 0x808080FF], dtype=np.uint32)), static=True)
        for robot in self.robots:
            for kind, colour in MARKED.items():
                stream.log(f"turns/{robot}/{kind}", rr.SeriesPoints(colors=[colour], names=[kind],
                                                                    marker_sizes=[4.0]), static=True)

    def begin_episode(self, rr: Any, stream: Any, episode: int, seed: int) -> None:
        self._holder = None
        self._streak.clear()
        stream.log("turns/events", rr.TextLog(f"episode {episode} starts (seed {seed})", level=rr.TextLogLevel.INFO))

    def log_tick(self, rr: Any, stream: Any, tick: int, holder: str, events: Iterable[dict]) -> None:
        holder = holder or NOBODY
        if holder != self._holder:
            stream.log("turns/holder", rr.StateChange(state=holder))
            self._holder = holder
        for event in events:
            self._log_event(rr, stream, tick, event)

    def _log_event(self, rr: Any, stream: Any, tick: int, event: dict) -> None:
        kind, robot = event_kind(event), str(event.get("robot") or "")
        if kind in MARKED and robot in self.robots:
            stream.log(f"turns/{robot}/{kind}", rr.Scalars([1.0]))
        if kind in STREAKS:
            last = self._streak.get((robot, kind))
            self._streak[(robot, kind)] = tick
            if last is not None and last >= tick - 1:
                return  # the same streak goes on
        stream.log("turns/events", rr.TextLog(event_text(event), level=level_of(rr, kind)))
