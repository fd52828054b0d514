"""Webhook deliveries kept in a shared store (services/kept_deliveries.py), in one process: two
dispatchers on one Redis namespace stand for two processes."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from baas_sandbox.adapters.redis_store import RedisStore, connect
from baas_sandbox.adapters.vault import Vault
from baas_sandbox.adapters.webhooks import DeliveryPolicy, WebhookDispatcher
from baas_sandbox.clock import utcnow
from baas_sandbox.services.kept_deliveries import KeptDeliveries
from tests.receiver import Receiver

pytestmark = pytest.mark.anyio

#: Retries every 50 ms for ever, no breaker: a receiver that is down is attempted again and again.
POLICY = DeliveryPolicy(max_attempts=1000, backoff=0.05, max_backoff=0.05, breaker_failures=0, timeout=2)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def process(redis_url) -> AsyncIterator[Callable[[str], tuple[WebhookDispatcher, KeptDeliveries]]]:
    """Makes "processes" (a dispatcher and its keeper, ``owner`` their name) on one namespace."""
    namespace, vault = f"kept-{uuid.uuid4().hex[:12]}", Vault(b"k" * 32)
    client = connect(redis_url)
    made: list[WebhookDispatcher] = []

    def make(owner: str) -> tuple[WebhookDispatcher, KeptDeliveries]:
        dispatcher = WebhookDispatcher(POLICY, seed=1, namespace=namespace)
        keeper = KeptDeliveries(dispatcher, RedisStore(client, namespace), vault, owner=owner, lease=30,
                                real_clock=utcnow, namespace=namespace)
        dispatcher.keeper = keeper
        made.append(dispatcher)
        return dispatcher, keeper

    yield make
    for dispatcher in made:
        await dispatcher.aclose()
    await RedisStore(client, namespace).drop()
    await client.aclose()


async def until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_a_process_whose_lease_was_taken_stops_attempting(process):
    """B redelivers a delivery A is retrying (B takes its lease): A lets it go at its next write or
    renewal, and only B attempts it from then on."""
    a, a_kept = process("A")
    b, b_kept = process("B")
    with Receiver([503] * 1000) as receiver:  # down
        a.subscribe(receiver.url, ["*"])
        [delivery] = a.publish("key_inclusion", {"n": 1})
        await until(lambda: len(receiver.received) >= 2)
        assert a.holds(delivery.id)
        redelivered = await b_kept.redeliver(delivery.id)
        assert redelivered is not None and redelivered["id"] == delivery.id
        await a_kept.tend()
        await until(lambda: not a.holds(delivery.id))
        assert b.holds(delivery.id)
        receiver.answers.clear()  # up again: only B attempts it now
        await until(receiver.accepted)
        await until(lambda: not b.holds(delivery.id))
        await b_kept.flush()
        [kept] = await a_kept.deliveries()
        assert kept["state"] == "delivered" and kept["attempts"][-1]["status"] == 200
        assert len(kept["attempts"]) >= 3  # A's attempts, then B's
        await asyncio.sleep(0.2)
        assert len(receiver.accepted()) == 1


@pytest.mark.filterwarnings("ignore:coroutine 'DeliveryLane._work' was never awaited")  # reset at once
async def test_a_reset_forgets_the_writes_still_queued(process):
    """A delivery published just before a reset is not kept after it (nobody would take over a
    delivery of the state before)."""
    a, a_kept = process("A")
    with Receiver([503] * 1000) as receiver:
        a.subscribe(receiver.url, ["*"])
        a.publish("key_inclusion", {"n": 1})
        a.reset([])
        await a_kept.flush()
        assert await a_kept.deliveries() == []
        await a_kept.tend()
        assert a.pending_ids() == []


async def test_a_delivery_whose_first_write_failed_is_kept_at_its_next_one(process, monkeypatch):
    """The store unreachable when the delivery was made: the process goes on attempting it, and
    keeps it as new at its next write (an outage does not make it give the delivery up)."""
    from baas_sandbox.adapters.repository import StoreUnavailable

    a, a_kept = process("A")
    store = a_kept._store
    real_keep = store.keep_delivery
    failing = {"new": 1}

    async def keep(record, owner, until, mode):
        if mode == "new" and failing["new"]:
            failing["new"] -= 1
            raise StoreUnavailable("redis: down")
        return await real_keep(record, owner, until, mode)

    monkeypatch.setattr(store, "keep_delivery", keep)
    with Receiver([503, 503]) as receiver:
        a.subscribe(receiver.url, ["*"])
        [delivery] = a.publish("key_inclusion", {"n": 1})
        await until(receiver.accepted)
        await until(lambda: not a.holds(delivery.id))
        await a_kept.flush()
        [kept] = await a_kept.deliveries()
        assert kept["id"] == delivery.id and kept["state"] == "delivered"
