"""Count and rate-limit the logging of dropped (malformed) bus messages.

Kept apart from the codec because it is bookkeeping, not wire format: it
needs nothing from the bus beyond an exception with a ``reason``, so the
nodes and the supervisor can hold a counter without caring how messages are
decoded.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Dict, Tuple

logger = logging.getLogger("robot_mirror.bus")


def _one_line(text: str) -> str:
    """Collapse whitespace: peer-controlled text must not forge extra log lines."""
    return " ".join(str(text).split())


class DropCounter:
    """Counts dropped (malformed) messages per reason and logs them sparingly.

    A misbehaving peer can send thousands of bad messages per second; logging
    each would drown the log and slow the control loop. The first drop of each
    reason is always logged, later ones at most once per ``interval`` seconds
    per reason, with the number dropped since the previous line. Thread-safe.
    """

    def __init__(self, interval: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: Dict[str, int] = {}
        self._last_log: Dict[str, float] = {}
        self._unlogged: Dict[str, int] = {}

    def record(self, err: BaseException, source: str = "") -> None:
        """Count one dropped message and maybe log one line about it."""
        self.count(getattr(err, "reason", None) or type(err).__name__, str(err), source)

    def count(self, reason: str, detail: str, source: str = "") -> None:
        """Count one drop of ``reason`` (also what no decoder saw, e.g. a
        refused handshake) and maybe log one line about it."""
        with self._lock:
            self._counts[reason] = self._counts.get(reason, 0) + 1
            pending = self._unlogged.get(reason, 0) + 1
            now = self._clock()
            last = self._last_log.get(reason)
            if last is not None and now - last < self._interval:
                self._unlogged[reason] = pending
                return
            self._last_log[reason] = now
            self._unlogged[reason] = 0
            total = self._counts[reason]
        where = f" from {_one_line(source)}" if source else ""
        logger.warning(
            "dropped bus message%s: %s (%d since last report, %d total for %s)",
            where, _one_line(detail), pending, total, reason,
        )

    @property
    def total(self) -> int:
        """Number of messages dropped so far, all reasons together."""
        with self._lock:
            return sum(self._counts.values())

    @property
    def by_reason(self) -> Dict[str, int]:
        """A copy of the per-reason drop counts."""
        with self._lock:
            return dict(self._counts)

    def as_dict(self) -> Dict[str, Any]:
        """JSON-ready snapshot, e.g. for a run summary or a heartbeat."""
        by_reason = self.by_reason
        return {"total": sum(by_reason.values()), "by_reason": by_reason}

    def since(self, mark: Dict[str, int]) -> Tuple[Dict[str, Any], Dict[str, int]]:
        """Like :meth:`as_dict`, counting only drops after ``mark`` (what an
        earlier call returned second, ``{}`` at first): per-episode counts from
        a run-long counter. Returns ``(counts, new mark)``, read at one instant
        so that no drop falls in two periods or none."""
        now = self.by_reason
        by_reason = {r: n - mark.get(r, 0) for r, n in now.items() if n > mark.get(r, 0)}
        return {"total": sum(by_reason.values()), "by_reason": by_reason}, now
