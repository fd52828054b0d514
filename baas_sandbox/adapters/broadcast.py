"""Live fan-out of appended records to waiting listeners (the Server-Sent Events streams).

The store keeps the records; this only tells listeners, on the event loop, that one was added.
A listener subscribes before it reads the backlog, so nothing falls between the two.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

#: Records a listener may fall behind by; past that it gets ``None`` (its stream ends, and a client
#: reconnects with Last-Event-ID) instead of making the server hold everything for it.
QUEUE_SIZE = 1000


class Broadcaster:
    def __init__(self) -> None:
        self._listeners: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Queue]]] = {}

    def publish(self, kind: str, record: dict) -> None:
        for loop, queue in list(self._listeners.get(kind, ())):
            loop.call_soon_threadsafe(_offer, queue, record)

    @asynccontextmanager
    async def listen(self, kind: str) -> AsyncIterator[asyncio.Queue]:
        """A queue of the records published from now on; ``None`` in it means "fell behind: stop"."""
        entry = (asyncio.get_running_loop(), asyncio.Queue(QUEUE_SIZE + 1))
        self._listeners.setdefault(kind, set()).add(entry)
        try:
            yield entry[1]
        finally:
            self._listeners[kind].discard(entry)

    def listeners(self, kind: str) -> int:
        return len(self._listeners.get(kind, ()))


def _offer(queue: asyncio.Queue, record: dict) -> None:
    if queue.qsize() >= QUEUE_SIZE:
        if queue.qsize() == QUEUE_SIZE:
            queue.put_nowait(None)
        return
    queue.put_nowait(record)
