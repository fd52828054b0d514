"""A namespace's webhook deliveries kept in its shared store, so that they are one sandbox's.

With ``--store redis://…`` several processes serve a namespace. Each delivery is still attempted by
the process that publishes it (its ``WebhookDispatcher``: lanes, breaker, retries), but its record
is kept in the store too, with a lease: the process that attempts it renews the lease while the
delivery is pending (``tend``, every ``--webhook-lease``/3 seconds, and with each attempt). A process
that dies (or is stopped, or drops an idle namespace) stops renewing; once the lease expires,
another process holding the namespace takes the delivery over (``take_expired``: one taker) and goes
on with its attempts where they stopped (same id, attempts counted on). So a delivery is attempted
by one process at a time, and not lost with it. A process that finds it no longer holds a lease
(it stalled past it, or another process redelivered the delivery) stops attending to it.

The dispatcher tells this keeper of each delivery's life synchronously (``DeliveryKeeper``); the
store writes run in that order, one at a time, on a task of their own: never on the path of a
delivery's attempts or of an API request. The subscription's signing secret is kept sealed with
the vault's key (as the subscriptions': ``Sandbox.keep_subscriptions``), never in clear.

Every process lists the same deliveries (the store's) and may redeliver any of them: the one that
redelivers takes its lease.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from baas_sandbox.adapters.repository import SandboxStore, StoreUnavailable
from baas_sandbox.adapters.webhooks import Delivery, WebhookDispatcher, delivery_from

if TYPE_CHECKING:
    import datetime as dt

    from baas_sandbox.adapters.vault import Vault

logger = logging.getLogger("baas_sandbox.webhooks")

#: Expired deliveries one ``tend`` takes over at most: a namespace with many waits a turn or two
#: rather than holding the loop.
TAKE_AT_ONCE = 100


def _secret_context(delivery_id: str) -> str:
    """What a delivery's sealed secret is bound to (AES-GCM's associated data): its id, so a
    sealed secret copied to another record does not open."""
    return f"webhook-delivery:{delivery_id}"


class KeptDeliveries:
    """The ``DeliveryKeeper`` of one namespace's dispatcher on a shared store. ``owner``: this
    process (what a lease names); ``lease``: seconds a lease lasts unless renewed; ``real_clock``:
    leases are in real time (the namespace's clock may be moved), so processes sharing a store
    need clocks that agree to well within a lease."""

    def __init__(self, dispatcher: WebhookDispatcher, store: SandboxStore, vault: Vault, *, owner: str,
                 lease: float, real_clock: Callable[[], dt.datetime], namespace: str) -> None:
        self._dispatcher, self._store, self._vault = dispatcher, store, vault
        self.owner, self.lease, self._real_clock, self._namespace = owner, lease, real_clock, namespace
        self._writes: deque[Callable[[], Awaitable[None]]] = deque()
        self._writer: asyncio.Task | None = None
        #: The deliveries whose lease this process holds, as far as it knows (what ``tend`` renews:
        #: not one whose first write is still queued).
        self._held: set[str] = set()
        #: Pending here, but their first write did not reach the store (it was unreachable).
        self._unkept: set[str] = set()
        #: Moves with each reset: a write queued before it is not made after it.
        self._generation = 0

    # -- what the dispatcher tells (DeliveryKeeper) -----------------------------------------------

    def queued(self, delivery: Delivery) -> None:
        self._write(delivery, self._record(delivery, 0), "new")

    def attempted(self, delivery: Delivery, tries: int) -> None:
        self._write(delivery, self._record(delivery, tries), "mine")

    def finished(self, delivery: Delivery) -> None:
        record, generation = self._record(delivery, 0), self._generation

        async def finish() -> None:
            if generation == self._generation:
                self._held.discard(delivery.id)
                self._unkept.discard(delivery.id)
                await self._store.finish_delivery(delivery.id, record, self.owner)

        self._queue(finish)

    def dropped(self) -> None:
        self._generation += 1
        self._writes.clear()
        self._held.clear()
        self._unkept.clear()

    # -- what the sandbox asks --------------------------------------------------------------------

    async def tend(self) -> None:
        """Renew the leases of the deliveries pending here (letting go of those another process
        holds now), then take over those whose lease expired. A record that cannot be read is
        logged and finished as it is: it must not stop the others, nor be taken again and again."""
        await self.flush()
        now = self._real_clock().timestamp()
        held = [delivery_id for delivery_id in self._dispatcher.pending_ids() if delivery_id in self._held]
        lost = await self._store.renew_deliveries(held, self.owner, now + self.lease)
        lost = [delivery_id for delivery_id in lost if self._dispatcher.holds(delivery_id)]  # not just finished
        if lost:
            logger.warning("webhook deliveries %s of namespace %s are held by another process now: "
                           "this one stops attempting them", ", ".join(lost), self._namespace)
            self._let_go(lost)
        for delivery_id, record in await self._store.take_expired(now, self.owner, self.lease, TAKE_AT_ONCE):
            try:
                delivery, tries = self._delivery(record)
            except Exception as exc:  # noqa: BLE001 - a corrupt record, or sealed with another master key
                logger.warning("webhook delivery %r of namespace %s cannot be taken over (%s): left as it is",
                               delivery_id, self._namespace, _why(exc))
                await self._store.finish_delivery(delivery_id, None, self.owner)
                continue
            logger.info("webhook delivery %s of namespace %s taken over after its lease expired (%d attempts made)",
                        delivery.id, self._namespace, len(delivery.attempts))
            self._held.add(delivery.id)
            self._dispatcher.resume(delivery, tries)

    async def deliveries(self) -> list[dict]:
        """Every process's deliveries, newest first (``Delivery.as_dict()``); unreadable ones left out."""
        await self.flush()  # this process's own news first: what it was just told is shown
        listed = []
        for record in await self._store.deliveries():
            try:
                listed.append(self._delivery(record, secret=False)[0].as_dict())
            except Exception:  # noqa: BLE001 - a corrupt record does not hide the others
                continue
        return listed

    async def redeliver(self, delivery_id: str) -> dict | None:
        """Send a delivery again, same id, a fresh series of attempts, from this process: pending
        here, its series restarts here; else its lease is taken (whoever held it), its record read
        from the store. None: no such delivery (or one that cannot be read)."""
        await self.flush()  # a finish of it still queued would end the redelivery's lease
        if self._dispatcher.holds(delivery_id):
            delivery = self._dispatcher.redeliver(delivery_id)
            assert delivery is not None
            self._write(delivery, self._record(delivery, 0), "mine")
            return delivery.as_dict()
        record = await self._store.delivery(delivery_id)
        if record is None:
            return None
        try:
            delivery, _ = self._delivery(record)
        except Exception as exc:  # noqa: BLE001
            logger.warning("webhook delivery %r of namespace %s cannot be redelivered (%s)",
                           delivery_id, self._namespace, _why(exc))
            return None
        delivery.state, delivery.reason = "pending", None
        now = self._real_clock().timestamp()
        if not await self._store.keep_delivery(self._record(delivery, 0), self.owner, now + self.lease, "take"):
            return None  # forgotten in between (a reset)
        self._held.add(delivery.id)
        self._dispatcher.resume(delivery, 0)
        return delivery.as_dict()

    async def flush(self) -> None:
        """Return once the writes queued so far are made."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    # -- inside -----------------------------------------------------------------------------------

    def _record(self, delivery: Delivery, tries: int) -> dict:
        sealed = self._vault.seal(delivery.secret, _secret_context(delivery.id))
        return {"delivery": delivery.as_dict(), "seq": delivery.seq, "tries": tries,
                "sealed_secret": base64.b64encode(sealed).decode()}

    def _delivery(self, record: dict | None, secret: bool = True) -> tuple[Delivery, int]:
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
        data = record["delivery"]
        opened = ""
        if secret:
            opened = self._vault.open(base64.b64decode(record["sealed_secret"]), _secret_context(data["id"]))
        return delivery_from(data, opened, record["seq"]), int(record["tries"])

    def _write(self, delivery: Delivery, record: dict, mode: str) -> None:
        generation, until_lease = self._generation, self.lease

        async def keep() -> None:
            if generation != self._generation:
                return
            until = self._real_clock().timestamp() + until_lease
            # One whose first write failed (the store was unreachable) is kept as new at its next
            # write: an outage must not make this process give up a delivery nobody else knows of.
            modes = ["new", "mine"] if delivery.id in self._unkept and mode == "mine" else [mode]
            try:
                kept = False
                for each in modes:
                    kept = await self._store.keep_delivery(record, self.owner, until, each)
                    if kept:
                        break
            except StoreUnavailable:
                if mode == "new":
                    self._unkept.add(delivery.id)
                raise
            if kept:
                self._held.add(delivery.id)
                self._unkept.discard(delivery.id)
            else:
                logger.warning("webhook delivery %s of namespace %s is held by another process now: "
                               "this one stops attempting it", delivery.id, self._namespace)
                self._let_go([delivery.id])

        self._queue(keep)

    def _let_go(self, delivery_ids: list[str]) -> None:
        self._held.difference_update(delivery_ids)
        self._unkept.difference_update(delivery_ids)
        self._dispatcher.abandon(delivery_ids)

    def _queue(self, write: Callable[[], Awaitable[None]]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop: nothing is delivered either (``WebhookDispatcher._lane``)
            return
        self._writes.append(write)
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._drain())

    async def _drain(self) -> None:
        while self._writes:
            write = self._writes.popleft()
            try:
                await write()
            except StoreUnavailable as exc:  # the lease expires; whoever holds the namespace goes on
                logger.warning("a webhook delivery of namespace %s could not be kept: %s", self._namespace, exc)
            except Exception:  # noqa: BLE001 - a bug to see, not a reason to stop keeping the others
                logger.exception("a webhook delivery of namespace %s could not be kept", self._namespace)


def _why(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
