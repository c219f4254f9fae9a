"""Turn-taking rules as plain logic, shared by the in-process environment and
the turn-arbiter process (no pybullet, no sockets here).

One token; the holder gives it back by releasing it; the arbiter grants it to
the next arm in order that still has work; a holder that stays silent longer
than ``silence_timeout`` loses it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TurnEvent:
    t: float
    kind: str  # "grant" | "release" | "reclaim"
    robot: str
    reason: str = ""


@dataclass
class TurnArbiter:
    robots: list[str]
    first: str
    silence_timeout: float | None = None
    holder: str | None = None
    _next: str | None = None

    def __post_init__(self) -> None:
        if self.first not in self.robots:
            raise ValueError(f"first robot {self.first!r} not in {self.robots}")
        self._next = self.first

    @property
    def next_robot(self) -> str | None:
        return self._next

    def restore(self, holder: str | None, next_robot: str | None) -> None:
        """Resume from a known state (a restarted arbiter process)."""
        self.holder = holder or None
        if next_robot in self.robots:
            self._next = next_robot

    def _after(self, robot: str) -> str:
        i = self.robots.index(robot)
        return self.robots[(i + 1) % len(self.robots)]

    def may_change(self, t: float, has_work: dict[str, bool], last_heard: dict[str, float] | None = None,
                   release_requests=frozenset(), requests=frozenset()) -> bool:
        """Could :meth:`update` produce an event with these inputs? False means
        it provably returns none (so a caller may skip asking a remote arbiter)."""
        if self.holder is None:
            return any(has_work.values()) or bool(set(requests) & set(self.robots))
        if self.holder in release_requests:
            return True
        return (self.silence_timeout is not None and last_heard is not None
                and t - last_heard.get(self.holder, t) > self.silence_timeout)

    def update(self, t: float, has_work: dict[str, bool], last_heard: dict[str, float] | None = None,
               release_requests: set[str] | frozenset[str] = frozenset(),
               requests: set[str] | frozenset[str] = frozenset()) -> list[TurnEvent]:
        """Advance the rules to time ``t``; returns the events that happened.

        A ``request`` from a robot that is next in order but was skipped for
        having no work marks it as having work (for controllers the task
        cannot see); turns still alternate."""
        has_work = {**has_work, **{r: True for r in requests if r in self.robots}}
        events: list[TurnEvent] = []
        if self.holder is not None and self.holder in release_requests:
            events.append(TurnEvent(t, "release", self.holder))
            self._next = self._after(self.holder)
            self.holder = None
        if (self.holder is not None and self.silence_timeout is not None and last_heard is not None
                and t - last_heard.get(self.holder, t) > self.silence_timeout):
            events.append(TurnEvent(t, "reclaim", self.holder, "silent"))
            self._next = self._after(self.holder)
            self.holder = None
        if self.holder is None and self._next is not None:
            candidate = self._next
            for _ in range(len(self.robots)):
                if has_work.get(candidate, False):
                    self.holder = candidate
                    events.append(TurnEvent(t, "grant", candidate))
                    break
                candidate = self._after(candidate)
        return events
