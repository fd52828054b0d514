"""What only the Redis store must do (the contract suite runs the rest on it): its keys stay in
its namespace's hash tag, no secret reaches Redis, an outage is ``StoreUnavailable`` within the
client's bound and the same client works again once Redis is back, and two clients (two processes)
share one namespace."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot

from baas_sandbox.adapters.redis_store import RedisStore, connect
from baas_sandbox.adapters.repository import StoreUnavailable
from baas_sandbox.adapters.vault import Vault
from baas_sandbox.domain.antiscan import TokenBucket
from baas_sandbox.domain.claims import ClaimRole, Reason, Response
from baas_sandbox.domain.due_work import DueJob
from baas_sandbox.domain.model import Credential, PersonType, PixKeyType
from tests.helpers import NATURAL_ACCOUNT, SEED_ACCOUNT
from tests.redis_server import RedisServer
from tests.test_store_contract import (
    T0,
    account,
    approved,
    claimant_claim,
    delete,
    delivery_record,
    dict_entry,
    key_request,
    new_claim,
)
from tests.test_store_contract import fixtures as fixtures  # noqa: F401  (the fixture, shared)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client(redis_url) -> AsyncIterator[aioredis.Redis]:
    made = connect(redis_url)
    yield made
    await made.aclose()


@pytest.fixture
async def raw(redis_url) -> AsyncIterator[aioredis.Redis]:
    """Bytes as Redis holds them (the store's client decodes replies)."""
    made = aioredis.Redis.from_url(redis_url, decode_responses=False)
    yield made
    await made.aclose()


@pytest.fixture
async def store(client, fixtures) -> AsyncIterator[RedisStore]:
    made = RedisStore(client, f"redis-{uuid.uuid4().hex}")
    await made.load(fixtures.tenants, fixtures.accounts)
    yield made
    await made.drop()


async def namespace_keys(raw: aioredis.Redis, store: RedisStore) -> set[bytes]:
    return {key async for key in raw.scan_iter(match=f"sbx:{{{store.namespace}}}:*", count=1000)}


async def every_step(store: RedisStore, fixtures) -> None:
    """One of each kind of write the store makes."""
    await store.setup_claim()
    seed = await account(store, SEED_ACCOUNT)
    await store.add_account(dataclasses.replace(seed, account_key=str(uuid.uuid4())))
    await store.save_credential(Credential("org-a", "BTG", "PIX", b"sealed", "proxy", {}, "2030-01-01T00:00:00"))
    pending = await key_request(store, SEED_ACCOUNT, None, kind=PixKeyType.RANDOM)
    await store.add_key_request(pending)
    await store.change_key_request(pending.request_key, lambda r: r.approve(str(uuid.uuid4()), T0))
    await approved(store, SEED_ACCOUNT, "gone@example.com")
    await store.change_key("gone@example.com", delete)
    await store.add_dict_entry(dict_entry("held@example.com"))
    claim = await claimant_claim(store, NATURAL_ACCOUNT, "held@example.com")
    await store.add_claim(claim, T0)
    await store.change_claim(claim.claim_key, lambda c: (c.receive_response(Response.CONFIRMED, T0),
                                                         c.receive_response(Response.CONCLUDED, T0)), T0)
    mine = await approved(store, SEED_ACCOUNT, "mine@example.com")
    donor = new_claim(seed, "mine@example.com", ClaimRole.DONATOR, mine.request_key)
    await store.add_claim(donor, T0)
    await store.change_claim(donor.claim_key, lambda c: (c.confirm(Reason.CLIENT_REQUEST, T0), c.complete(T0)), T0)
    await store.spend_tokens(NATURAL_ACCOUNT, lambda: TokenBucket.full(NATURAL_ACCOUNT, PersonType.NATURAL, T0),
                             lambda b: b.spend(1, T0))
    for kind in ("events", "webhooks", "outbox"):
        await store.record(kind, {"message_id": "m", "pix_key_request_key": "k", "channel": "email",
                                  "destination": "d", "verification_code": "1", "sent_at": "s", "expires_at": "e"})
    await store.set_clock(lambda s: s.advanced(5))
    await store.schedule(DueJob(T0, "k", "a"))
    await store.schedule(DueJob(T0 + dt.timedelta(days=1), "k", "b"))
    await store.take_due(T0)
    await store.replace(await store.export())
    for delivery_id in ("d1", "d2"):
        await store.keep_delivery(delivery_record(delivery_id), "A", 1.0, "new")
    await store.finish_delivery("d1", None, "A")
    await store.setup_finished()


# -- keys: the namespace's hash tag, nothing left behind ---------------------------------------------------


async def test_every_key_of_a_namespace_carries_its_hash_tag(store, raw, fixtures):
    before = {key async for key in raw.scan_iter(count=1000)}
    await every_step(store, fixtures)
    # the registry of namespaces (two sorted sets, one key each, documented) aside
    written = {key async for key in raw.scan_iter(count=1000)} - before - {b"sbx:namespaces", b"sbx:namespaces:created"}
    tag = f"{{{store.namespace}}}".encode()
    assert len(written) > 15 and all(tag in key for key in written), sorted(written)
    assert {key_slot(key) for key in written} == {key_slot(tag)}  # one Redis Cluster slot
    await store.drop()
    assert await namespace_keys(raw, store) == set()


async def test_a_load_leaves_no_key_of_the_old_state(store, raw, fixtures):
    """The wipe finds every key from the indexes (no scan): none is forgotten."""
    await every_step(store, fixtures)
    await store.load(fixtures.tenants, fixtures.accounts)
    prefix = f"sbx:{{{store.namespace}}}:".encode()
    assert {key.removeprefix(prefix) for key in await namespace_keys(raw, store)} == {
        b"setup", b"seq", b"accounts", b"account_order"}


async def test_a_namespace_name_is_checked(client):
    for bad in ("", "a b", "a}b", "a*", "x" * 65):
        with pytest.raises(ValueError):
            RedisStore(client, bad)
    RedisStore(client, "Team_1.ci-7")


# -- no secret in Redis -------------------------------------------------------------------------------------


async def values_of(raw: aioredis.Redis, keys: set[bytes]) -> bytes:
    """Every key and value as stored, read by type (a DUMP may compress what it holds)."""
    parts: list[bytes] = []
    for key in keys:
        parts.append(key)
        kind = await raw.type(key)
        if kind == b"string":
            parts.append(await raw.get(key))
        elif kind == b"hash":
            parts += [part for pair in (await raw.hgetall(key)).items() for part in pair]
        elif kind == b"list":
            parts += await raw.lrange(key, 0, -1)
        elif kind == b"set":
            parts += await raw.smembers(key)
        elif kind == b"zset":
            parts += [member for member, _score in await raw.zrange(key, 0, -1, withscores=True)]
        else:
            raise AssertionError(f"unexpected type {kind!r} of {key!r}")
    return b"\n".join(parts)


async def test_no_plaintext_secret_is_written(store, raw):
    vault, secret, marker = Vault(), "PLAINTEXT-provider-key-5f1c", "MARKER-provider-data-9d2e"
    sealed = vault.seal(secret, "org-a/BTG/PIX")
    await store.save_credential(Credential("org-a", "BTG", "PIX", sealed, "prx_1", {"api_secret": marker},
                                           "2030-01-01T00:00:00"))
    stored = await values_of(raw, await namespace_keys(raw, store))
    for plaintext in (secret, marker, base64.b64encode(secret.encode()).decode(),
                      base64.b64encode(marker.encode()).decode()):
        assert plaintext.encode() not in stored
    assert base64.b64encode(sealed) in stored  # the ciphertext is what is kept
    read = await store.credential("org-a", "BTG", "PIX")
    assert read.provider_data == {} and vault.open(read.sealed_key, "org-a/BTG/PIX") == secret


# -- outages: StoreUnavailable within the bound, and back once Redis is -------------------------------------------


@pytest.fixture
def private_server() -> RedisServer:
    server = RedisServer()
    server.start()
    yield server
    server.close()


async def assert_unavailable(store: RedisStore, within: float) -> None:
    operations = [lambda: store.account(SEED_ACCOUNT), lambda: store.counts(),
                  lambda: store.set_clock(lambda s: s.advanced(1)),
                  lambda: store.schedule(DueJob(T0, "k", "s"))]
    for operation in operations:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await operation()
        assert time.monotonic() - started < within


async def test_a_stopped_redis_is_unavailable_at_once_and_used_again_when_back(private_server, fixtures):
    client = connect(private_server.url, timeout=0.5)
    store = RedisStore(client, "outage")
    try:
        await store.load(fixtures.tenants, fixtures.accounts)
        private_server.stop()
        await assert_unavailable(store, within=0.5 + 0.5)
        private_server.start()  # the same port: a restart as the client sees it
        assert await store.setup_state() is None  # no persistence: an empty Redis, but an answer
        await store.load(fixtures.tenants, fixtures.accounts)
        assert (await store.account(SEED_ACCOUNT)).account_key == SEED_ACCOUNT
        await store.set_clock(lambda s: s.advanced(1))  # a transaction
        await store.add_key_request(await key_request(store, SEED_ACCOUNT, "back@example.com"))  # a script,
        assert (await store.key_holder("back@example.com")) is not None  # loaded again into the new Redis
    finally:
        await client.aclose()


async def test_a_hung_redis_is_unavailable_within_the_timeout(private_server, fixtures):
    client = connect(private_server.url, timeout=0.5)
    store = RedisStore(client, "hung")
    try:
        await store.load(fixtures.tenants, fixtures.accounts)
        private_server.pause()
        try:
            started = time.monotonic()
            results = await asyncio.gather(*(store.account(SEED_ACCOUNT) for _ in range(8)),
                                           return_exceptions=True)
            assert all(isinstance(r, StoreUnavailable) for r in results)
            assert time.monotonic() - started < 0.5 * 3 + 0.5  # the documented worst case
            await assert_unavailable(store, within=0.5 * 3 + 0.5)
        finally:
            private_server.resume()
        assert (await store.account(SEED_ACCOUNT)).account_key == SEED_ACCOUNT
    finally:
        await client.aclose()


def test_the_client_is_bounded_and_parses_with_hiredis():
    from redis.asyncio.connection import _AsyncHiredisParser

    client = connect("redis://127.0.0.1:1/0", timeout=0.7, max_connections=9)
    pool = client.connection_pool
    assert pool.max_connections == 9 and pool.timeout == 0.7
    options = pool.connection_kwargs
    assert options["socket_timeout"] == options["socket_connect_timeout"] == 0.7
    assert pool.connection_class(**options)._parser.__class__ is _AsyncHiredisParser


# -- one namespace, two processes ----------------------------------------------------------------------------


async def test_two_clients_share_a_namespace_created_once(redis_url, fixtures):
    namespace = f"shared-{uuid.uuid4().hex}"
    clients = [connect(redis_url), connect(redis_url)]
    first, second = (RedisStore(client, namespace) for client in clients)
    try:
        claims = await asyncio.gather(first.setup_claim(), second.setup_claim())
        assert sorted(claims) == [False, True]
        loader, joiner = (first, second) if claims[0] else (second, first)
        assert await joiner.setup_state() == "loading"
        await loader.load(fixtures.tenants, fixtures.accounts)
        await loader.setup_finished()
        joiner.know_tenants(fixtures.tenants)
        assert await joiner.setup_state() == "ready" and joiner.tenant_by_token("org-a-token").name == "org-a"
        request = await key_request(loader, SEED_ACCOUNT, "shared@example.com")
        await loader.add_key_request(request)
        assert (await joiner.key_holder("shared@example.com")).request_key == request.request_key
    finally:
        await first.drop()
        for client in clients:
            await client.aclose()


# -- without redis-server ---------------------------------------------------------------------------------------


async def test_without_redis_server_the_tests_skip_but_fail_in_ci(monkeypatch):
    from tests import redis_server

    monkeypatch.setattr(redis_server.shutil, "which", lambda _name: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y redis-server"):
        redis_server.redis_server_binary()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true: .*redis-server"):
        redis_server.redis_server_binary()


# -- one store, several event loops -------------------------------------------------------------------------------


def test_a_per_loop_client_serves_a_store_from_loop_to_loop(redis_url, fixtures):
    """What the app does with its default namespace: made on a loop of its own (``asyncio.run``),
    then served on the server's loop. Each loop gets its own connections."""
    from baas_sandbox.adapters.redis_store import PerLoopClient

    clients = PerLoopClient(redis_url, timeout=1.0)
    store = RedisStore(clients, f"loops-{uuid.uuid4().hex}")

    async def prepare() -> None:
        await store.load(fixtures.tenants, fixtures.accounts)
        await store.add_key_request(await key_request(store, SEED_ACCOUNT, "first@example.com"))
        await clients.aclose()

    async def serve() -> list[str]:
        await store.add_key_request(await key_request(store, SEED_ACCOUNT, "second@example.com"))
        values = [r.key_value for r in await store.key_requests(SEED_ACCOUNT)]
        await store.drop()
        await clients.aclose()
        return values

    asyncio.run(prepare())
    assert asyncio.run(serve()) == ["first@example.com", "second@example.com"]
