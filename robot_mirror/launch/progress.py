"""One live status line on a terminal (nothing when output is not a TTY)."""

from __future__ import annotations

import sys
import time


class ProgressLine:
    """One live status line on a terminal; nothing when output is not a TTY."""

    def __init__(self, stream=sys.stderr) -> None:
        self.stream = stream
        self.live = stream.isatty()
        self._last = 0.0

    def update(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if not self.live or (not force and now - self._last < 0.2):
            return
        self._last = now
        self.stream.write("\r\033[K" + text)
        self.stream.flush()

    def clear(self) -> None:
        if self.live:
            self.stream.write("\r\033[K")
            self.stream.flush()
