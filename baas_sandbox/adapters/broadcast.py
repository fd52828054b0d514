"""Live fan-out of appended records to waiting listeners (the Server-Sent Events streams).

The store keeps the records; this only tells listeners, on the event loop, that one was added.
A listener subscribes before it reads the backlog, so nothing falls between the two.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class Broadcaster:
    def __init__(self) -> None:
        self._listeners: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Queue]]] = {}

    def publish(self, kind: str, record: dict) -> None:
        for loop, queue in list(self._listeners.get(kind, ())):
            loop.call_soon_threadsafe(queue.put_nowait, record)

    @asynccontextmanager
    async def listen(self, kind: str) -> AsyncIterator[asyncio.Queue]:
        entry = (asyncio.get_running_loop(), asyncio.Queue())
        self._listeners.setdefault(kind, set()).add(entry)
        try:
            yield entry[1]
        finally:
            self._listeners[kind].discard(entry)

    def listeners(self, kind: str) -> int:
        return len(self._listeners.get(kind, ()))
