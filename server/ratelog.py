"""Log lines that hostile traffic can trigger, at most one per kind and interval, with a count of the rest."""

from __future__ import annotations

import logging
import time

MAX_KINDS = 64  # kinds come from the code, not the request; the cap is a second line of defence


class RateLimitedLog:
    """`warning(kind, msg, *args)` logs the first line of a kind, then at most one per `interval`.

    A flood of forged or stale requests would otherwise write a line each (a log storm, CWE-779):
    the line that does go out says how many like it were held back since the last one.
    """

    def __init__(self, logger: logging.Logger, interval: float = 60.0, clock=time.monotonic):
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def warning(self, kind: str, msg: str, *args) -> bool:
        return self.log(logging.WARNING, kind, msg, *args)

    def log(self, level: int, kind: str, msg: str, *args) -> bool:
        """Logs or counts the line; True when it was written."""
        if kind not in self._last and len(self._last) >= MAX_KINDS:
            kind = "other"
        now = self.clock()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval:
            self._held[kind] = self._held.get(kind, 0) + 1
            return False
        held = self._held.pop(kind, 0)
        self._last[kind] = now
        if held:
            msg += " (%d more like this in the last %.0f s)"
            args = (*args, held, now - last if last is not None else self.interval)
        self.logger.log(level, msg, *args)
        return True
