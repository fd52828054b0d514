"""A circuit breaker: a receiver that keeps failing is left alone for a while.

Closed: attempts go out. After ``threshold`` consecutive failed attempts it opens: none go out for
``cooldown`` seconds. Then it is half-open: one trial attempt; a success closes it, a failure opens
it again. Times are the event loop's (``loop.time()``), given by the caller.
"""

from __future__ import annotations


class CircuitBreaker:
    def __init__(self, threshold: int, cooldown: float) -> None:
        self.threshold = threshold  # 0: never opens
        self.cooldown = cooldown
        self.failures = 0  # consecutive
        self.open_until: float | None = None
        self._trial = False  # the half-open trial is out

    def state(self, now: float) -> str:
        if self.open_until is None:
            return "closed"
        return "half_open" if self._trial or now >= self.open_until else "open"

    def may_try(self, now: float) -> bool:
        """Would :meth:`allows` say yes (without claiming the trial)?"""
        return self.open_until is None or (not self._trial and now >= self.open_until)

    def allows(self, now: float) -> bool:
        """May an attempt go out now? In half-open, the one that may is the trial."""
        if self.open_until is None:
            return True
        if self._trial or now < self.open_until:
            return False
        self._trial = True
        return True

    def record(self, succeeded: bool, now: float) -> None:
        if succeeded:
            self.failures, self.open_until, self._trial = 0, None, False
            return
        self.failures += 1
        if self._trial or (self.open_until is None and 0 < self.threshold <= self.failures):
            self.open_until, self._trial = now + self.cooldown, False
