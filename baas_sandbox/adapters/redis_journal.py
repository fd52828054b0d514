"""The request journal of a namespace kept in Redis: what every process serving it recorded, read
from any of them (``GET /__admin/requests``).

A request does not wait for its entry to be written: entries are queued as recorded (``add``, on
the request's path, as cheap as the in-memory journal's) and written in order by one task per
journal, pipelined, their bodies parsed there. Reading first writes what this process still holds,
so a client sees its own requests. The list is capped at the journal's size and at ``BYTE_LIMIT``
bytes (the oldest entries go first), each body at ``BODY_LIMIT`` (``http/journal.py``).
Entries are numbered by Redis (``INCR``), so ids are unique across processes.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("baas_sandbox")

#: Entries a process may hold unwritten (Redis down or slow): past that the oldest are dropped.
PENDING_LIMIT = 10_000
#: Bytes a namespace's journal may hold in Redis (its oldest entries go first): whatever clients
#: send, Redis holds at most this per namespace, and the namespaces are capped and swept when idle.
BYTE_LIMIT = 4 * 1024 * 1024

# KEYS: the list, the id counter, the bytes held; ARGV: the size, the byte limit, then the entries'
# JSON. Each entry is stored as "<id>|<json>": Lua's cjson would not give the same JSON back (an
# empty list becomes {}). The oldest go while there are too many, or too many bytes.
APPEND = """
local held = tonumber(redis.call('GET', KEYS[3]) or '0')
for i = 3, #ARGV do
  local id = redis.call('INCR', KEYS[2])
  local entry = id .. '|' .. ARGV[i]
  redis.call('RPUSH', KEYS[1], entry)
  held = held + #entry
end
local size, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
while redis.call('LLEN', KEYS[1]) > 0 and (redis.call('LLEN', KEYS[1]) > size or held > limit) do
  held = held - #redis.call('LPOP', KEYS[1])
end
redis.call('SET', KEYS[3], held)
"""


class RedisJournal:
    """``http/journal.py``'s ``Journal`` interface on a Redis list (``key``) and counter (``ids``);
    ``client()``: the client to use now (the store's, ``RedisStore._client``)."""

    def __init__(self, client: Callable[[], Any], key: str, ids: str, size: int = 1000,
                 byte_limit: int = BYTE_LIMIT) -> None:
        self._client_now, self._key, self._ids, self._size = client, key, ids, size
        self._bytes, self._byte_limit = key + "_bytes", byte_limit
        self._pending: list[Any] = []
        self._writer: asyncio.Task | None = None

    def add(self, entry: Any) -> None:
        """Keep ``entry`` (a dict, or ``http/journal.py``'s unread entry): written soon, in order."""
        if len(self._pending) >= PENDING_LIMIT:
            del self._pending[0]
        self._pending.append(entry)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            texts = [json.dumps(_as_dict(entry), separators=(",", ":"), ensure_ascii=False) for entry in batch]
            try:
                # EVAL, not EVALSHA: a batch is rare enough, and a restarted Redis needs no reload
                await self._client_now().eval(APPEND, 3, self._key, self._ids, self._bytes,
                                              self._size, self._byte_limit, *texts)
            except Exception as exc:  # noqa: BLE001 - Redis down: the journal loses these, nothing else
                logger.warning("%d journal entries lost: %s", len(batch), exc)

    async def flush(self) -> None:
        """Once what this process recorded is written (or lost, if Redis is down)."""
        writer = self._writer
        if writer is not None and not writer.done():
            await asyncio.shield(writer)

    async def entries(self, operation_id: str | None = None, status: int | None = None,
                      limit: int | None = None) -> list[dict]:
        """Newest first."""
        await self.flush()
        found = []
        for stored in reversed(await self._client_now().lrange(self._key, 0, -1)):
            number, _, text = stored.partition("|")
            entry = json.loads(text)
            if (operation_id is None or entry["operation_id"] == operation_id) and (
                    status is None or entry["status"] == status):
                found.append({"id": int(number), **entry})
                if limit is not None and len(found) >= limit:
                    break
        return found

    async def clear(self) -> int:
        await self.flush()
        async with self._client_now().pipeline(transaction=True) as pipe:
            count, *_ = await pipe.llen(self._key).unlink(self._key, self._bytes).execute()
        return count

    def release(self) -> None:
        """The process lets the namespace go (idle): the journal stays in Redis for the others."""
        self._pending = []


def _as_dict(entry: Any) -> dict:
    if not isinstance(entry, dict):
        entry.id = 0  # numbered by Redis
    data = entry if isinstance(entry, dict) else entry.as_dict()
    return {name: value for name, value in data.items() if name != "id"}
