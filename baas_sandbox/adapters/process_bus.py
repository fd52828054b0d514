"""What one process tells the others sharing its store: news that is not state.

The state is in the store, and every process reads it there; but a process also holds things made
from that state which it cannot re-read on every request: the live streams (Server-Sent Events),
waiting for records; the webhook subscriptions its dispatcher delivers to; the scenario switches.
When one process adds a record or changes one of those, it says so here, and every other process
holding that namespace acts on it (``Sandbox.hear``).

With the memory store there is no other process: ``LocalBus`` says nothing. ``RedisBus`` uses Redis
pub/sub, one channel per namespace, in its hash tag (``sbx:{ns}:news``: the slot of its keys).
Telling never waits: news is queued and sent in order by one task, pipelined; what is lost while
Redis is down is only news (a stream's client reconnects with ``Last-Event-ID`` and reads the
records, which are stored; subscriptions and switches are read again when the bus reconnects).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any, Protocol

logger = logging.getLogger("baas_sandbox")

#: News waiting to be sent, at most: past that the oldest is dropped (Redis is down or slow, and
#: memory stays bounded).
QUEUE_SIZE = 10_000
#: Seconds between attempts to reach Redis again.
RECONNECT_PAUSE = 1.0
#: Where every process listens: the channels of every namespace.
PATTERN = "sbx:*:news"

#: (namespace, topic, payload) -> None: what a process does with another's news.
Hear = Callable[[str, str, dict], None]


def channel(namespace: str) -> str:
    return f"sbx:{{{namespace}}}:news"


class ProcessBus(Protocol):
    def tell(self, namespace: str, topic: str, payload: dict) -> None:
        """Queue news for the other processes (never waits)."""

    async def run(self, hear: Hear, reconnected: Callable[[], None], stop: asyncio.Event) -> None:
        """Send what is told and hear the others until ``stop``; ``reconnected`` after an outage
        (news may have been lost: the caller reads again what it holds)."""


class LocalBus:
    """One process: nobody to tell."""

    def tell(self, namespace: str, topic: str, payload: dict) -> None:
        return None

    async def run(self, hear: Hear, reconnected: Callable[[], None], stop: asyncio.Event) -> None:
        await stop.wait()


class RedisBus:
    """Redis pub/sub between the processes of one sandbox. ``origin``: this process's id, so that it
    does not hear its own news."""

    def __init__(self, client: Any, origin: str) -> None:
        self._client, self.origin = client, origin
        self._queue: asyncio.Queue[tuple[str, str]] | None = None
        self._dropped = 0

    def tell(self, namespace: str, topic: str, payload: dict) -> None:
        if self._queue is None:
            self._queue = asyncio.Queue()
        if self._queue.qsize() >= QUEUE_SIZE:
            self._queue.get_nowait()
            self._dropped += 1
        message = json.dumps({"origin": self.origin, "topic": topic, "payload": payload},
                             separators=(",", ":"), ensure_ascii=False)
        self._queue.put_nowait((channel(namespace), message))

    async def run(self, hear: Hear, reconnected: Callable[[], None], stop: asyncio.Event) -> None:
        if self._queue is None:
            self._queue = asyncio.Queue()
        tasks = [asyncio.create_task(self._send(stop)), asyncio.create_task(self._listen(hear, reconnected, stop))]
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _send(self, stop: asyncio.Event) -> None:
        assert self._queue is not None
        while not stop.is_set():
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < 500:
                batch.append(self._queue.get_nowait())
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for name, message in batch:
                        pipe.publish(name, message)
                    await pipe.execute()
            except Exception as exc:  # noqa: BLE001 - Redis down: news is lost, the state is not
                self._dropped += len(batch)
                logger.warning("news for other processes lost (%d so far): %s", self._dropped, exc)
                await asyncio.sleep(RECONNECT_PAUSE)

    async def _listen(self, hear: Hear, reconnected: Callable[[], None], stop: asyncio.Event) -> None:
        first = True
        while not stop.is_set():
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(PATTERN)
                if not first:
                    reconnected()
                first = False
                while not stop.is_set():
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._heard(message, hear)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis down: listen again once it is back
                logger.warning("cannot hear the other processes (%s): trying again", exc)
                first = False
                await asyncio.sleep(RECONNECT_PAUSE)
            finally:
                try:
                    await pubsub.aclose()
                except Exception:  # noqa: BLE001 - a broken connection closes as it can
                    pass

    def _heard(self, message: dict, hear: Hear) -> None:
        try:
            news = json.loads(message["data"])
            name = message["channel"]
            namespace = name[len("sbx:{"):-len("}:news")]
            if news["origin"] == self.origin:
                return
            hear(namespace, news["topic"], news["payload"])
        except Exception:  # noqa: BLE001 - one bad message must not stop the others
            logger.exception("news from another process could not be read")
