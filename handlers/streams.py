"""/__admin/events and the Server-Sent Events streams of events and verification codes.

A test or a front end waits for "key activated" on a stream instead of sleeping. A stream first
replays what it was asked for (``since``, or after ``Last-Event-ID`` when a browser reconnects),
then follows live; a comment line every 15 s keeps proxies from closing an idle stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

from connexion import request
from starlette.responses import StreamingResponse

from baas_sandbox.http.context import current_sandbox

KEEP_ALIVE = 15.0


async def list_events(type: str | None = None, since: str | None = None):  # noqa: A002 (the API's name)
    events = [e for e in await current_sandbox().store.records("events") if _wanted(e, type, since)]
    return {"events": events}, 200


async def stream_events(type: str | None = None, since: str | None = None):  # noqa: A002
    return _stream("events", "event_id", lambda e: _wanted(e, type, since), lambda e: e["event_type"])


async def stream_outbox(pix_key_request_key: str | None = None):
    def wanted(message: dict) -> bool:
        return pix_key_request_key is None or message["pix_key_request_key"] == pix_key_request_key

    return _stream("outbox", "message_id", wanted, lambda _m: "verification_code")


def _wanted(event: dict, event_type: str | None, since: str | None) -> bool:
    return (event_type is None or event["event_type"] == event_type) and (since is None or event["timestamp"] >= since)


def _stream(kind: str, id_field: str, wanted: Callable[[dict], bool], name: Callable[[dict], str]) -> StreamingResponse:
    sandbox = current_sandbox()
    last_seen = request.headers.get("last-event-id")

    async def lines() -> AsyncIterator[str]:
        async with sandbox.live.listen(kind) as live:
            backlog = await sandbox.store.records(kind)
            if last_seen is not None:
                ids = [entry[id_field] for entry in backlog]
                backlog = backlog[ids.index(last_seen) + 1:] if last_seen in ids else backlog
            sent = set()
            for entry in backlog:
                if wanted(entry):
                    sent.add(entry[id_field])
                    yield _frame(entry, id_field, name)
            yield ": following live\n\n"
            while True:
                try:
                    entry = await asyncio.wait_for(live.get(), timeout=KEEP_ALIVE)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if entry is None:  # this reader fell too far behind: it reconnects with Last-Event-ID
                    return
                if entry[id_field] not in sent and wanted(entry):
                    yield _frame(entry, id_field, name)

    return StreamingResponse(lines(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _frame(entry: dict, id_field: str, name: Callable[[dict], str]) -> str:
    return f"id: {entry[id_field]}\nevent: {name(entry)}\ndata: {json.dumps(entry, ensure_ascii=False)}\n\n"
