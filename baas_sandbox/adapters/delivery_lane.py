"""One subscription's deliveries: a bounded queue, a few workers, a circuit breaker.

Each subscription gets its own lane so that a receiver that is down, slow or refusing delays only
its own deliveries:

- the queue holds at most ``policy.queue_size`` pending deliveries (queued, waiting for a retry or
  in flight); a new one past that fails the oldest that is not in flight, with its reason (the
  newest events tell the receiver the current state; the dropped one can be redelivered);
- at most ``policy.concurrency`` attempts are in flight, each by a worker task that owns its HTTP
  client: one connection, never shared, so no delivery waits for another's connection (httpx's
  shared pool was what jammed: encode/httpcore#1093, a cancelled request can leak a pool slot for
  good); a worker that had to abandon an attempt throws its client away;
- a retry waits on a timer, not in a worker: a backoff holds no slot;
- after ``policy.breaker_failures`` consecutive failed attempts the circuit opens for
  ``policy.breaker_cooldown`` seconds: deliveries stay queued (their attempts are not spent), then
  one trial attempt decides.

Workers start when there is work and end when there is none; every attempt goes through the
dispatcher's ``gate`` (a global bound on attempts in flight and the loop share of deliveries).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from baas_sandbox.adapters.circuit_breaker import CircuitBreaker

if TYPE_CHECKING:
    import httpx

    from baas_sandbox.adapters.webhooks import Attempt, Delivery, DeliveryPolicy


class Gate(Protocol):
    """What every attempt of every lane passes through (the dispatcher's)."""

    async def __aenter__(self) -> None: ...

    async def __aexit__(self, *exc: object) -> None: ...

    def start(self, work: Awaitable[None]) -> asyncio.Task: ...


#: Sends one attempt: (what happened, whether the client may be used again, whether the delivery
#: ends there whatever its attempts left: its URL must not be sent to).
Send = Callable[["httpx.AsyncClient", "Delivery"], Awaitable[tuple["Attempt", bool, bool]]]


class DeliveryLane:
    def __init__(self, policy: DeliveryPolicy, gate: Gate, send: Send,
                 new_client: Callable[[], httpx.AsyncClient], finished: Callable[[Delivery], None],
                 rng: random.Random) -> None:
        self.policy = policy
        self.breaker = CircuitBreaker(policy.breaker_failures, policy.breaker_cooldown)
        self.pending: OrderedDict[str, Delivery] = OrderedDict()  # oldest first
        self._gate, self._send, self._new_client, self._finished, self._rng = gate, send, new_client, finished, rng
        self._ready: deque[Delivery] = deque()  # due for an attempt; may hold stale entries
        self._queued: set[str] = set()  # the live entries of _ready
        self._tries: dict[str, int] = {}  # attempts in the current series
        self._retries: dict[str, asyncio.TimerHandle] = {}
        self._in_flight: set[str] = set()
        self._workers: set[asyncio.Task] = set()
        self._wake: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()

    # -- what the dispatcher asks -----------------------------------------------------------------

    def enqueue(self, delivery: Delivery, tries: int = 0) -> None:
        """``tries``: attempts its series has had already (one taken over from another process)."""
        self.pending[delivery.id] = delivery
        self._start_series(delivery, tries)
        if len(self.pending) > self.policy.queue_size:
            self._drop_oldest()
        self._spawn()

    def restart(self, delivery: Delivery) -> None:
        """A fresh series of attempts (a redelivery); one in flight counts as its first."""
        delivery.state, delivery.reason = "pending", None
        if delivery.id not in self.pending:
            self.enqueue(delivery)
            return
        retry = self._retries.pop(delivery.id, None)
        if retry is not None:
            retry.cancel()
        self._start_series(delivery)
        self._spawn()

    def tries(self, delivery_id: str) -> int:
        """Attempts of the delivery's current series so far (0 for one not pending here)."""
        return self._tries.get(delivery_id, 0)

    def forget(self, delivery_id: str) -> None:
        """Stop attending to a pending delivery without finishing it: another process holds it now
        (took it over, or redelivers it). An attempt in flight ends; nothing follows it."""
        if self.pending.pop(delivery_id, None) is None:
            return
        self._queued.discard(delivery_id)
        self._tries.pop(delivery_id, None)
        retry = self._retries.pop(delivery_id, None)
        if retry is not None:
            retry.cancel()

    def circuit(self) -> str:
        return self.breaker.state(self._loop.time())

    def close(self) -> list[asyncio.Task]:
        """Stop everything now; returns the workers, cancelled, for a caller that can wait."""
        for retry in self._retries.values():
            retry.cancel()
        if self._wake is not None:
            self._wake.cancel()
            self._wake = None
        workers = list(self._workers)
        for worker in workers:
            worker.cancel()
        self.pending.clear()
        self._ready.clear()
        self._queued.clear()
        self._retries.clear()
        return workers

    # -- scheduling -------------------------------------------------------------------------------

    def _start_series(self, delivery: Delivery, tries: int = 0) -> None:
        self._tries[delivery.id] = tries
        if delivery.id not in self._in_flight:
            self._queue(delivery)

    def _queue(self, delivery: Delivery) -> None:
        if delivery.id not in self._queued:
            self._queued.add(delivery.id)
            self._ready.append(delivery)

    def _drop_oldest(self) -> None:
        oldest = next(iter(self.pending.values()))
        if oldest.id in self._in_flight:
            oldest = next((d for d in self.pending.values() if d.id not in self._in_flight), None)
        if oldest is None:  # all in flight: the queue is no longer than the concurrency
            return
        self._end(oldest, f"dropped unsent: {self.policy.queue_size} newer deliveries were pending "
                          "for this subscription (--webhook-queue-size)")

    def _spawn(self) -> None:
        now = self._loop.time()
        if not self.breaker.may_try(now):
            self._wake_later(now)
            return
        wanted = min(self.policy.concurrency, len(self._workers) + len(self._queued))
        while len(self._workers) < wanted:
            worker = self._gate.start(self._work())
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)

    def _wake_later(self, now: float) -> None:
        """Spawn again when the circuit half-opens (not while a trial is out: its result decides)."""
        until = self.breaker.open_until
        if until is None or until <= now or not self._queued or self._wake is not None:
            return
        self._wake = self._loop.call_later(until - now, self._woken)

    def _woken(self) -> None:
        self._wake = None
        self._spawn()

    def _next(self) -> Delivery | None:
        while self._ready:
            delivery = self._ready.popleft()
            if delivery.id not in self._queued:
                continue  # stale: dropped or ended while queued
            now = self._loop.time()
            if not self.breaker.allows(now):
                self._ready.appendleft(delivery)
                self._wake_later(now)
                return None
            self._queued.discard(delivery.id)
            return delivery
        return None

    async def _work(self) -> None:
        client: httpx.AsyncClient | None = None
        try:
            while (delivery := self._next()) is not None:
                self._in_flight.add(delivery.id)
                try:
                    client = client or self._new_client()
                    async with self._gate:
                        attempt, reusable, final = await self._send(client, delivery)
                finally:
                    self._in_flight.discard(delivery.id)
                if not reusable:
                    await _close(client)
                    client = None
                self._settle(delivery, attempt, final)
        finally:
            if client is not None:
                await _close(client)

    def _settle(self, delivery: Delivery, attempt: Attempt, final: bool) -> None:
        if final:  # not the receiver's doing: the circuit learns nothing from it
            if delivery.id in self.pending:
                self._end(delivery, attempt.error)
            return
        succeeded = attempt.status is not None and 200 <= attempt.status < 300
        was_closed = self.breaker.open_until is None
        self.breaker.record(succeeded, self._loop.time())
        if succeeded and not was_closed:
            self._spawn()  # the trial closed the circuit: the other workers may go again
        if delivery.id not in self.pending:
            return  # dropped while in flight: its attempt is logged, nothing follows
        if succeeded:
            delivery.state = "delivered"
            self._end(delivery, None)
            return
        tries = self._tries[delivery.id] = self._tries[delivery.id] + 1
        if tries >= self.policy.max_attempts:
            self._end(delivery, f"gave up after {tries} attempt{'s' if tries > 1 else ''} (--webhook-attempts)")
            return
        delay = self.policy.delay_before(tries + 1, self._rng)
        self._retries[delivery.id] = self._loop.call_later(delay, self._due, delivery)

    def _due(self, delivery: Delivery) -> None:
        self._retries.pop(delivery.id, None)
        self._queue(delivery)
        self._spawn()

    def _end(self, delivery: Delivery, failure: str | None) -> None:
        del self.pending[delivery.id]
        self._queued.discard(delivery.id)
        self._tries.pop(delivery.id, None)
        retry = self._retries.pop(delivery.id, None)
        if retry is not None:
            retry.cancel()
        if len(self._ready) > 2 * len(self._queued) + 64:  # dropped ones left behind while the circuit is open
            self._ready = deque(d for d in self._ready if d.id in self._queued)
        if failure is not None:
            delivery.state, delivery.reason = "failed", failure
        self._finished(delivery)


async def _close(client: httpx.AsyncClient) -> None:
    with contextlib.suppress(Exception):  # closing sockets a receiver already dropped
        await client.aclose()
