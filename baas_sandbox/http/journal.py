"""The request journal: the last requests to the product APIs, to debug an integration from.

Bounded in memory; bodies are kept only when they are JSON, with every secret field of the
operation (``format: password`` in the spec) masked, so a provider key never lands here.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
import time
from collections import deque
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from baas_sandbox.domain.model import timestamp
from baas_sandbox.http.scope import APPLIED, ROUTING_CONTEXT
from baas_sandbox.spec import Contract

PRODUCT_PREFIXES = ("/banking-auth", "/baas")
MASK = "****"
BODY_LIMIT = 64 * 1024


class Journal:
    def __init__(self, size: int = 1000) -> None:
        self._entries: deque[dict | _Unread] = deque(maxlen=size)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, entry: dict | _Unread) -> None:
        with self._lock:
            if isinstance(entry, _Unread):
                entry.id = next(self._ids)
                self._entries.append(entry)
            else:
                self._entries.append({"id": next(self._ids), **entry})

    def entries(self, operation_id: str | None = None, status: int | None = None,
                limit: int | None = None) -> list[dict]:
        """Newest first."""
        with self._lock:
            found = [e for e in reversed(self._entries)
                     if (operation_id is None or e["operation_id"] == operation_id)
                     and (status is None or e["status"] == status)]
            found = found[:limit] if limit is not None else found
            return [self._read(entry) for entry in found]

    def _read(self, entry: dict | _Unread) -> dict:
        """The entry as a dict, made once, when the journal is first read (under the lock)."""
        if isinstance(entry, dict):
            return entry
        if entry.read is None:
            entry.read = entry.as_dict()
        return entry.read

    def clear(self) -> int:
        with self._lock:
            count = len(self._entries)
            self._entries.clear()
            return count


class _Unread:
    """A journal entry as recorded: parsing the bodies and formatting the time are left to when the
    journal is read, off the request path (most entries are never read). ``request_body`` is the raw
    bytes, or, for an operation with secret fields, the body already masked: secrets are never kept."""

    __slots__ = ("id", "wall", "method", "path", "query", "operation_id", "status", "latency_ms",
                 "tracking_id", "scenario", "request_body", "request_body_raw", "response_body", "read")

    def __init__(self, wall: float, method: str, path: str, query: bytes, operation_id: str | None,
                 status: int | None, latency_ms: float, tracking_id: str | None, scenario: dict | None,
                 request_body: Any, request_body_raw: bool, response_body: bytes) -> None:
        self.wall, self.method, self.path, self.query = wall, method, path, query  # wall: time.time()
        self.operation_id, self.status, self.latency_ms = operation_id, status, latency_ms
        self.tracking_id, self.scenario = tracking_id, scenario
        self.request_body, self.request_body_raw, self.response_body = request_body, request_body_raw, response_body
        self.read: dict | None = None

    def __getitem__(self, name: str) -> Any:  # the fields the journal filters on
        return getattr(self, name)

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "time": timestamp(dt.datetime.fromtimestamp(self.wall, dt.timezone.utc)),
            "method": self.method,
            "path": self.path,
            "query": self.query.decode("latin-1"),
            "operation_id": self.operation_id,
            "status": self.status,
            "latency_ms": self.latency_ms,
            "tracking_id": self.tracking_id,
            "scenario": self.scenario,
            "request_body": _json_or_none(self.request_body) if self.request_body_raw else self.request_body,
            "response_body": _json_or_none(self.response_body),
        }


class RecordRequests:
    """Outer middleware: one journal entry per product request, whatever answered it."""

    def __init__(self, app: ASGIApp, journal: Journal, contract: Contract) -> None:
        self.app, self.journal, self.contract = app, journal, contract

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PRODUCT_PREFIXES):
            await self.app(scope, receive, send)
            return
        # connexion routes a shallow copy of the scope: the operation it finds reaches this scope only
        # through dicts that exist before the copy is made.
        scope.setdefault("extensions", {})
        scope.setdefault("state", {})
        started, wall = time.perf_counter(), time.time()
        request_body, response_body = bytearray(), bytearray()
        status: int | None = None

        async def recording_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(request_body) < BODY_LIMIT:
                request_body.extend(message.get("body", b""))
            return message

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and len(response_body) < BODY_LIMIT:
                response_body.extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, recording_receive, recording_send)
        finally:
            state = scope.get("state", {})
            operation_id = scope.get("extensions", {}).get(ROUTING_CONTEXT, {}).get("operation_id")
            operation = self.contract.operation(operation_id) if operation_id else None
            secrets = operation.secret_fields if operation else frozenset()
            self.journal.add(recorded(scope, operation_id, secrets, status, started, wall,
                                      state.get("tracking_id"), state.get(APPLIED), request_body, response_body))


def recorded(scope: Scope, operation_id: str | None, secrets: frozenset[str], status: int | None,
             started: float, wall: float, tracking_id: str | None, scenario: dict | None,
             request_body: bytes, response_body: bytes, parsed_body: Any = None) -> _Unread:
    """The journal entry of a request answered now (``started``: its ``time.perf_counter()``,
    ``wall``: its ``time.time()``). ``parsed_body``: the request body already parsed (not
    changed here: the masked entry copies what it masks), or None to parse ``request_body``."""
    if not secrets:
        kept = request_body
    elif parsed_body is not None:
        kept = _masked_copy(secrets, parsed_body)
    else:
        kept = _masked(secrets, request_body)
    return _Unread(wall, scope["method"], scope["path"], scope.get("query_string", b""), operation_id, status,
                   round((time.perf_counter() - started) * 1000, 3), tracking_id, scenario, kept, not secrets,
                   response_body)


def _masked(secrets: frozenset[str], raw: bytes) -> Any:
    body = _json_or_none(raw)
    if body is None and raw and secrets:
        return None  # unparsed bytes could hold a secret: not kept
    for field in secrets:
        _mask(body, field.split("."))
    return body


def _masked_copy(secrets: frozenset[str], body: Any) -> Any:
    """``body`` with its secret fields masked, the dicts on their way copied, the rest shared."""
    for field in secrets:
        body = _mask_copy(body, field.split("."))
    return body


def _mask_copy(node: Any, path: list[str]) -> Any:
    if not isinstance(node, dict) or path[0] not in node:
        return node
    copy = dict(node)
    copy[path[0]] = MASK if len(path) == 1 else _mask_copy(node[path[0]], path[1:])
    return copy


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _mask(node: Any, path: list[str]) -> None:
    if not isinstance(node, dict) or path[0] not in node:
        return
    if len(path) == 1:
        node[path[0]] = MASK
    else:
        _mask(node[path[0]], path[1:])
