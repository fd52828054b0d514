"""A cap on the share of the event loop's time that background work may take.

Webhook deliveries run on the loop that answers the API. A live receiver can take deliveries as
fast as the loop sends them, so a bound on deliveries in flight alone does not keep the API fast:
each one costs the loop CPU time. ``LoopShare`` measures the time the loop spends stepping the
coroutines it runs (:meth:`LoopShare.run`) and makes them wait (:meth:`LoopShare.turn`) while
they are over their share, like a token bucket filled with loop time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Generator
from typing import Any, TypeVar

T = TypeVar("T")

#: Loop time (seconds) the work may take at once before it waits: a delivery or two, no stall.
BURST = 0.005


class LoopShare:
    def __init__(self, share: float) -> None:
        self.share = share
        self._debt = 0.0  # loop seconds used beyond the share, repaid at ``share`` per second
        self._at = time.monotonic()

    def charge(self, seconds: float) -> None:
        self._settle()
        self._debt += seconds

    async def turn(self) -> None:
        """Return once the work is within its share again."""
        if self.share >= 1:
            return
        self._settle()
        if self._debt > BURST:
            await asyncio.sleep((self._debt - BURST) / self.share)

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro``, charging the loop time of each of its steps."""
        return await _Metered(coro, self)

    def _settle(self) -> None:
        now = time.monotonic()
        self._debt = max(0.0, self._debt - (now - self._at) * self.share)
        self._at = now


class _Metered:
    """Steps a coroutine as ``await`` would (values, exceptions and cancellation pass through
    unchanged), timing each step: the only way to know the loop time one task takes."""

    __slots__ = ("_coro", "_share")

    def __init__(self, coro: Coroutine, share: LoopShare) -> None:
        self._coro, self._share = coro, share

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, clock, charge = self._coro, time.perf_counter, self._share.charge
        value: Any = None
        error: BaseException | None = None
        while True:
            started = clock()
            try:
                yielded = coro.send(value) if error is None else coro.throw(error)
            except StopIteration as stop:
                return stop.value
            finally:
                charge(clock() - started)
            try:
                value, error = (yield yielded), None
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # noqa: BLE001 - handed to the coroutine, as await does
                value, error = None, exc
