"""Delayed work on the server's event loop (the DICT decision after the activation delay, the end of
a request's validation window)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)


class Scheduler:
    def __init__(self) -> None:
        self._pending: set[asyncio.TimerHandle] = set()

    def later(self, delay: float, job: Callable[[], None]) -> None:
        """Run ``job`` after ``delay`` seconds on the running event loop."""
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def run() -> None:
            self._pending.discard(handle)
            try:
                job()
            except Exception:  # a failing job must not take the server down; it is a bug to see
                logger.exception("scheduled job failed")

        handle = loop.call_later(max(delay, 0.0), run)
        self._pending.add(handle)

    def cancel_all(self) -> None:
        for handle in list(self._pending):
            handle.cancel()
        self._pending.clear()

    @property
    def pending(self) -> int:
        return len(self._pending)
