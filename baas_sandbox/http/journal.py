"""The request journal: the last requests to the product APIs, to debug an integration from.

Bounded in memory (entries, each body, all bodies together); bodies are kept only when they are
JSON, with every secret field of the operation (``format: password`` in the spec) masked, and with it
every field and query parameter the spec does not document (``Redaction``), so a provider key never
lands here, wherever a client puts it.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from baas_sandbox.domain.model import timestamp
from baas_sandbox.http import json_body
from baas_sandbox.http.scope import APPLIED, ROUTING_CONTEXT, SANDBOX
from baas_sandbox.spec import PLAIN, Contract, Operation

if TYPE_CHECKING:  # the namespaces hold journals: this module is imported by theirs
    from baas_sandbox.services.namespaces import Namespaces

PRODUCT_PREFIXES = ("/banking-auth", "/baas", "/mock/")
MASK = "****"
#: Each body is kept up to this size; a longer one is not kept (``*_body_cut``: it was cut).
BODY_LIMIT = 64 * 1024
#: The bodies of all entries together are kept up to this size: past it the oldest entries go.
MEMORY_LIMIT = 32 * 1024 * 1024


class Redaction:
    """What the journal may keep of an operation's requests: a secret never lands there, even sent
    where the spec puts none (an extra body field, a query parameter).

    - the query string keeps the values of the documented query parameters; any other is masked;
    - the body of an operation with a secret field keeps only its documented plain fields: the
      secret fields and every undocumented one are masked (their names kept, to debug from);
      the bodies of other operations are kept as sent.
    """

    __slots__ = ("query_names", "body_fields")

    def __init__(self, query_names: frozenset[str] = frozenset(), body_fields: dict | None = None) -> None:
        self.query_names, self.body_fields = query_names, body_fields

    @classmethod
    def of(cls, operation: Operation | None) -> "Redaction":
        if operation is None:
            return NOTHING_KNOWN
        return cls(operation.query_names, operation.body_fields if operation.secret_fields else None)

    @property
    def masks_body(self) -> bool:
        return self.body_fields is not None

    def query(self, raw: bytes) -> bytes:
        if not raw:
            return raw
        parts = raw.split(b"&")
        kept = []
        for part in parts:
            name, equals, _value = part.partition(b"=")
            if name.decode("latin-1") in self.query_names:
                kept.append(part)
            else:
                kept.append(name + b"=" + MASK.encode() if equals else name)
        return b"&".join(kept)

    def body(self, parsed: Any) -> Any:
        """``parsed`` (not changed: what is masked is copied) with only its documented plain fields."""
        assert self.body_fields is not None
        return _documented(parsed, self.body_fields)


def _documented(node: Any, fields: dict) -> Any:
    if not isinstance(node, dict):
        return MASK if node is not None else None
    kept = {}
    for name, value in node.items():
        known = fields.get(name)
        if isinstance(known, dict):
            kept[name] = _documented(value, known)
        elif known == PLAIN and (value is None or isinstance(value, (str, int, float, bool))):
            kept[name] = value
        else:
            kept[name] = MASK
    return kept


#: Before routing (an unknown path, a body refused before routing): every query value masked.
NOTHING_KNOWN = Redaction()


class MemoryBudget:
    """Bytes of kept bodies, for every journal of the process together: each namespace has its
    journal, and a thousand of them must not hold a thousand times the limit."""

    def __init__(self, limit: int = MEMORY_LIMIT) -> None:
        self.limit = limit
        self.used = 0


class Journal:
    """The last ``size`` requests, their bodies together at most ``budget.limit`` bytes (each cut at
    ``BODY_LIMIT``), counted with every journal sharing ``budget``: whatever clients send, the
    journals' memory stays bounded. Past the limit, the journal that adds drops its own oldest."""

    def __init__(self, size: int = 1000, budget: MemoryBudget | None = None) -> None:
        self._entries: deque[dict | _Unread] = deque()
        self._size = size
        self.budget = budget or MemoryBudget()
        self._bytes = 0  # the bodies' size, this journal's entries
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, entry: dict | _Unread) -> None:
        budget = self.budget
        with self._lock:
            if isinstance(entry, _Unread):
                entry.id = next(self._ids)
                self._entries.append(entry)
                self._bytes += entry.size
                budget.used += entry.size
            else:
                self._entries.append({"id": next(self._ids), **entry})
            while self._entries and (len(self._entries) > self._size or budget.used > budget.limit):
                dropped = self._entries.popleft()
                if isinstance(dropped, _Unread):
                    self._bytes -= dropped.size
                    budget.used -= dropped.size

    async def entries(self, operation_id: str | None = None, status: int | None = None,
                      limit: int | None = None) -> list[dict]:
        """Newest first (a coroutine: a shared store's journal, ``adapters/redis_journal.py``, reads
        over the network)."""
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

    async def clear(self) -> int:
        return self.release()

    def release(self) -> int:
        """Forget every entry, and their bytes in the budget (the namespace is dropped)."""
        with self._lock:
            count = len(self._entries)
            self._entries.clear()
            self.budget.used -= self._bytes
            self._bytes = 0
            return count


class _Unread:
    """A journal entry as recorded: parsing the bodies and formatting the time are left to when the
    journal is read, off the request path (most entries are never read). ``request_body`` is the raw
    bytes, or, for an operation with secret fields, the body already masked: secrets are never kept.
    A body over ``BODY_LIMIT`` is not kept (None), and said to be cut."""

    __slots__ = ("id", "wall", "method", "path", "query", "operation_id", "status", "latency_ms",
                 "tracking_id", "scenario", "request_body", "request_body_raw", "response_body", "read",
                 "request_body_cut", "response_body_cut", "size")

    def __init__(self, wall: float, method: str, path: str, query: bytes, operation_id: str | None,
                 status: int | None, latency_ms: float, tracking_id: str | None, scenario: dict | None,
                 request_body: Any, request_body_raw: bool, response_body: bytes | None,
                 request_body_cut: bool, response_body_cut: bool, size: int) -> None:
        self.wall, self.method, self.path, self.query = wall, method, path, query  # wall: time.time()
        self.operation_id, self.status, self.latency_ms = operation_id, status, latency_ms
        self.tracking_id, self.scenario = tracking_id, scenario
        self.request_body, self.request_body_raw, self.response_body = request_body, request_body_raw, response_body
        self.request_body_cut, self.response_body_cut, self.size = request_body_cut, response_body_cut, size
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
            "request_body_cut": self.request_body_cut,
            "response_body_cut": self.response_body_cut,
        }


class RecordRequests:
    """Outer middleware: one journal entry per product request, whatever answered it, in the journal
    of its namespace (bound inside, by ``http/namespace.py``; for an answer given before that, the
    namespace it named if it exists)."""

    def __init__(self, app: ASGIApp, namespaces: Namespaces, contract: Contract) -> None:
        from baas_sandbox.http import namespace

        self.app, self.namespaces, self.contract = app, namespaces, contract
        self._existing = namespace.existing
        self._redactions: dict[str, Redaction] = {}

    def _redaction(self, operation_id: str | None) -> Redaction:
        if operation_id is None:
            return NOTHING_KNOWN
        redaction = self._redactions.get(operation_id)
        if redaction is None:
            redaction = self._redactions[operation_id] = Redaction.of(self.contract.operation(operation_id))
        return redaction

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
        sizes = [0, 0]  # request, response: what was sent, kept or not
        status: int | None = None

        async def recording_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                sizes[0] += len(chunk)
                if sizes[0] <= BODY_LIMIT:
                    request_body.extend(chunk)
            return message

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                sizes[1] += len(chunk)
                if sizes[1] <= BODY_LIMIT:
                    response_body.extend(chunk)
            await send(message)

        try:
            await self.app(scope, recording_receive, recording_send)
        finally:
            state = scope.get("state", {})
            operation_id = scope.get("extensions", {}).get(ROUTING_CONTEXT, {}).get("operation_id")
            sandbox = state.get(SANDBOX) or self._existing(scope, self.namespaces)
            if sandbox is not None:
                sandbox.record_request(recorded(
                    scope, operation_id, self._redaction(operation_id), status, started, wall,
                    state.get("tracking_id"), state.get(APPLIED),
                    request_body if sizes[0] <= BODY_LIMIT else None,
                    response_body if sizes[1] <= BODY_LIMIT else None))


def recorded(scope: Scope, operation_id: str | None, redaction: Redaction, status: int | None,
             started: float, wall: float, tracking_id: str | None, scenario: dict | None,
             request_body: bytes | None, response_body: bytes | None, parsed_body: Any = None) -> _Unread:
    """The journal entry of a request answered now (``started``: its ``time.perf_counter()``,
    ``wall``: its ``time.time()``). ``parsed_body``: the request body already parsed (not
    changed here: the masked entry copies what it masks), or None to parse ``request_body``.
    A body over ``BODY_LIMIT`` (or None: it was) is not kept, and marked cut."""
    request_cut = request_body is None or len(request_body) > BODY_LIMIT
    response_cut = response_body is None or len(response_body) > BODY_LIMIT
    if request_cut:
        request_body = parsed_body = None
    if response_cut:
        response_body = None
    size = (len(request_body) if request_body else 0) + (len(response_body) if response_body else 0)
    if not redaction.masks_body:
        kept = request_body
    elif parsed_body is not None:
        kept = redaction.body(parsed_body)
    else:
        kept = _masked(redaction, request_body)
    return _Unread(wall, scope["method"], scope["path"], redaction.query(scope.get("query_string", b"")),
                   operation_id, status, round((time.perf_counter() - started) * 1000, 3), tracking_id, scenario,
                   kept, not redaction.masks_body, response_body, request_cut, response_cut, size)


def _masked(redaction: Redaction, raw: bytes | None) -> Any:
    body = _json_or_none(raw)
    if body is None:
        return None  # absent, or unparsed bytes that could hold a secret: not kept
    return redaction.body(body)


def _json_or_none(raw: bytes | None) -> Any:
    """The body's JSON, read with the requests' own bounds (a hostile body was kept as sent)."""
    try:
        return json_body.parse(bytes(raw)) if raw else None
    except json_body.InvalidJson:
        return None
