"""The store contract: what every ``SandboxStore`` implementation must do, one namespace's state.

Parametrised by implementation (``STORES``): the in-memory store and the Redis store (on a real
redis-server: ``tests/redis_server.py``) pass the same tests, the concurrency ones included. Each
rule that must hold under concurrency is one atomic store step, so it is tested here with tasks
racing on it (a shared store answers over the network: its steps interleave).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

import pytest

from baas_sandbox.adapters.fixtures import load_fixtures
from baas_sandbox.adapters.redis_store import RedisStore, connect
from baas_sandbox.adapters.repository import (
    LOG_SIZE,
    AccountAlreadyExists,
    InMemoryStore,
    KeyAlreadyInDict,
    SandboxStore,
)
from baas_sandbox.app import Specs
from baas_sandbox.clock import REAL_TIME, ClockSetting
from baas_sandbox.domain import errors
from baas_sandbox.domain.antiscan import TokenBucket
from baas_sandbox.domain.claims import Claim, ClaimRole, ClaimStatus, ClaimType, Counterpart, Reason, Response
from baas_sandbox.domain.due_work import DueJob
from baas_sandbox.domain.model import (
    OWN_BANK_CODE,
    OWN_BANK_NAME,
    OWN_ISPB,
    Account,
    Credential,
    DictEntry,
    KeyStatus,
    PersonType,
    PixKeyRequest,
    PixKeyType,
    RequestStatus,
)
from baas_sandbox.services.accounts import build_account
from baas_sandbox.services.dict_entries import build_dict_entry
from baas_sandbox.services.sandbox import Settings
from tests.helpers import NATURAL_ACCOUNT, SEED_ACCOUNT


@asynccontextmanager
async def memory_store(_request: pytest.FixtureRequest) -> AsyncIterator[SandboxStore]:
    yield InMemoryStore()


@asynccontextmanager
async def redis_store(request: pytest.FixtureRequest) -> AsyncIterator[SandboxStore]:
    """A namespace of its own on the session's Redis, dropped after the test."""
    client = connect(request.getfixturevalue("redis_url"))
    store = RedisStore(client, f"contract-{uuid.uuid4().hex}")
    try:
        yield store
    finally:
        await store.drop()
        await client.aclose()


#: name -> a maker of empty stores (each test gets fresh ones, cleaned up after it).
STORES: dict[str, Callable[[pytest.FixtureRequest], AbstractAsyncContextManager[SandboxStore]]] = {
    "memory": memory_store, "redis": redis_store}
T0 = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def fixtures():
    settings, specs = Settings(), Specs.load()
    return load_fixtures(settings.fixtures_dir, specs.account_schema, build_account,
                         settings.subscription_problem, specs.dict_entry_schema, build_dict_entry)


pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=sorted(STORES))
async def new_store(request) -> AsyncIterator[Callable[[], Awaitable[SandboxStore]]]:
    """Makes empty stores of the test's kind: ``await new_store()``."""
    async with AsyncExitStack() as stack:
        async def make() -> SandboxStore:
            return await stack.enter_async_context(STORES[request.param](request))

        yield make


@pytest.fixture
async def store(new_store, fixtures) -> AsyncIterator[SandboxStore]:
    made = await new_store()
    await made.load(fixtures.tenants, fixtures.accounts)
    yield made


async def account(store: SandboxStore, key: str) -> Account:
    found = await store.account(key)
    assert found is not None
    return found


async def key_request(store: SandboxStore, account_key: str, value: str | None, status=RequestStatus.PENDING,
                kind=PixKeyType.EMAIL) -> PixKeyRequest:
    at = "2030-01-01T00:00:00"
    return PixKeyRequest(request_key=str(uuid.uuid4()), account=await account(store, account_key), requester_key="r",
                         key_type=kind, key_value=value, status=status, key_status=KeyStatus.PENDING_CONFIRMATION,
                         created_at=at, updated_at=at, key_updated_at=at)


# -- accounts and tenants ---------------------------------------------------------------------------


async def test_load_starts_again_from_the_fixtures(store, fixtures):
    await store.add_key_request(await key_request(store, SEED_ACCOUNT, "a@example.com"))
    await store.record("outbox", {"n": 1})
    await store.schedule(DueJob(T0, "k", "s"))
    await store.set_clock(lambda _s: ClockSetting(60.0))
    await store.load(fixtures.tenants, fixtures.accounts)
    assert await store.key_requests(SEED_ACCOUNT) == []
    assert await store.records("outbox") == []
    assert await store.due_jobs() == [] and await store.next_due() is None
    assert await store.clock() == REAL_TIME
    assert await store.counts() == {"accounts": len(fixtures.accounts), "keys": 0, "key_requests": 0}
    assert store.tenant_by_token("org-a-token").name == "org-a"
    assert store.tenant_count() == len(fixtures.tenants)


async def test_an_account_key_is_taken_once(store):
    with pytest.raises(AccountAlreadyExists):
        await store.add_account(await account(store, SEED_ACCOUNT))
    assert {a.account_key for a in await store.accounts("org-a")} >= {SEED_ACCOUNT, NATURAL_ACCOUNT}


async def test_a_credential_slot_is_replaced(store):
    credential = Credential("org-a", "BTG", "PIX", b"sealed", "proxy", {}, "2030-01-01T00:00:00")
    assert await store.save_credential(credential) is False
    assert await store.save_credential(credential) is True
    assert (await store.credential("org-a", "BTG", "PIX")).proxy_value == "proxy"
    assert await store.credential("org-b", "BTG", "PIX") is None


# -- key requests: one owner, one unfinished request, the limit -------------------------------------------


async def test_an_unfinished_request_holds_its_key(store):
    await store.add_key_request(await key_request(store, SEED_ACCOUNT, "a@example.com"))
    with pytest.raises(errors.KeyCreationNotFinished):
        await store.add_key_request(await key_request(store, NATURAL_ACCOUNT, "a@example.com"))


async def test_an_approved_key_has_one_owner(store):
    await store.add_key_request(await key_request(store, SEED_ACCOUNT, "a@example.com", status=RequestStatus.APPROVED))
    with pytest.raises(errors.KeyAlreadyExists):
        await store.add_key_request(await key_request(store, NATURAL_ACCOUNT, "a@example.com"))


async def test_a_rejected_request_frees_its_key_and_place(store):
    first = await key_request(store, NATURAL_ACCOUNT, "a@example.com")
    await store.add_key_request(first)

    def reject(request: PixKeyRequest) -> None:
        request.reject("no", T0)

    await store.change_key_request(first.request_key, reject)
    await store.add_key_request(await key_request(store, NATURAL_ACCOUNT, "a@example.com"))  # free again
    assert (await store.counts())["keys"] == 1


async def test_a_natural_person_holds_five_keys(store):
    for index in range(5):
        await store.add_key_request(await key_request(store, NATURAL_ACCOUNT, f"k{index}@example.com"))
    with pytest.raises(errors.KeyLimitReached):
        await store.add_key_request(await key_request(store, NATURAL_ACCOUNT, "k5@example.com"))


async def test_a_change_that_raises_changes_nothing(store):
    stored = await key_request(store, SEED_ACCOUNT, "a@example.com")
    await store.add_key_request(stored)

    def half_way(request: PixKeyRequest) -> None:
        request.wrong_codes = 99
        raise errors.WrongCode()

    with pytest.raises(errors.WrongCode):
        await store.change_key_request(stored.request_key, half_way)
    assert (await store.key_request(stored.request_key)).wrong_codes == 0
    with pytest.raises(errors.KeyRequestNotFound):
        await store.change_key_request(str(uuid.uuid4()), lambda r: r)


async def test_what_is_read_is_a_copy(store):
    stored = await key_request(store, SEED_ACCOUNT, "a@example.com")
    await store.add_key_request(stored)
    stored.wrong_codes = 7  # the caller's object is not the stored one
    read = await store.key_request(stored.request_key)
    read.history.append("x")
    assert (await store.key_request(stored.request_key)).wrong_codes == 0
    assert (await store.key_request(stored.request_key)).history == []


async def race(count: int, work: Callable[[int], Awaitable[object]]) -> list[object]:
    """``work(i)`` for i in range(count), all started at once; results or errors. A shared store
    answers over the network, so its steps interleave: each rule must hold as one atomic step."""
    start = asyncio.Event()

    async def run(index: int) -> object:
        await start.wait()
        return await work(index)

    tasks = [asyncio.ensure_future(run(index)) for index in range(count)]
    await asyncio.sleep(0)
    start.set()
    return list(await asyncio.gather(*tasks, return_exceptions=True))


async def test_concurrent_requests_for_one_key_store_exactly_one(store):
    requests = [await key_request(store, SEED_ACCOUNT if i % 2 else NATURAL_ACCOUNT, "same@example.com")
                for i in range(64)]
    results = await race(64, lambda i: store.add_key_request(requests[i]))
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, errors.KeyCreationNotFinished) for r in results if r is not None)


async def test_concurrent_requests_on_a_natural_person_store_exactly_five(store):
    requests = [await key_request(store, NATURAL_ACCOUNT, f"k{i}@example.com") for i in range(50)]
    results = await race(50, lambda i: store.add_key_request(requests[i]))
    assert sum(r is None for r in results) == 5
    assert len([r for r in await store.key_requests(NATURAL_ACCOUNT) if r.claims_key]) == 5


async def test_concurrent_changes_are_each_applied(store):
    stored = await key_request(store, SEED_ACCOUNT, "a@example.com")
    await store.add_key_request(stored)

    def count(request: PixKeyRequest) -> None:
        request.wrong_codes += 1

    await race(32, lambda _i: store.change_key_request(stored.request_key, count))
    assert (await store.key_request(stored.request_key)).wrong_codes == 32


# -- logs, clock, due work --------------------------------------------------------------------------


async def test_logs_keep_their_latest_entries(store):
    for index in range(LOG_SIZE + 5):
        await store.record("events", {"n": index})
    kept = await store.records("events")
    assert len(kept) == LOG_SIZE and kept[0] == {"n": 5} and kept[-1] == {"n": LOG_SIZE + 4}
    assert await store.records("outbox") == []


async def test_the_clock_setting_changes_atomically(store):
    assert await store.clock() == REAL_TIME
    await race(20, lambda _i: store.set_clock(lambda s: s.advanced(1.0)))
    assert (await store.clock()).offset_seconds == 20.0
    assert (await store.set_clock(lambda s: s.with_frozen(True, T0))).frozen_at == T0 + dt.timedelta(seconds=20)


async def test_due_jobs_are_taken_in_order_once_due(store):
    later, sooner = DueJob(T0 + dt.timedelta(seconds=9), "k", "later"), DueJob(T0 + dt.timedelta(seconds=1), "k", "sooner")
    await store.schedule(later)
    await store.schedule(sooner)
    assert await store.next_due() == sooner.due_at
    assert await store.take_due(T0) == []
    assert await store.take_due(T0 + dt.timedelta(seconds=5)) == [sooner]
    assert await store.due_jobs() == [later]
    assert await store.take_due(T0 + dt.timedelta(days=1)) == [later]
    assert await store.next_due() is None


async def test_each_due_job_is_taken_by_one_taker(store):
    jobs = [DueJob(T0 + dt.timedelta(milliseconds=i), "k", str(i)) for i in range(500)]
    for job in jobs:
        await store.schedule(job)
    async def take(_i: int) -> list[DueJob]:
        return [job for _ in range(40) for job in await store.take_due(T0 + dt.timedelta(days=1))]

    taken = await race(16, take)
    flat = [job for batch in taken for job in batch]
    assert sorted(flat) == sorted(jobs)  # each once: none lost, none twice


async def test_the_journal_and_the_scenario_switches_outlive_a_load(store, fixtures):
    """A reset reloads the state; the journal shows what led to it, and the switches are the caller's."""
    store.journal.add({"operation_id": "list-pix-keys", "status": 200})
    store.scenario_switches.active = ["provider-outage"]
    await store.load(fixtures.tenants, fixtures.accounts)
    assert [e["operation_id"] for e in store.journal.entries()] == ["list-pix-keys"]
    assert store.scenario_switches.active == ["provider-outage"]


async def test_an_export_replaced_into_another_store_exports_the_same(store, fixtures, new_store):
    request = await key_request(store, NATURAL_ACCOUNT, "a@example.com")
    await store.add_key_request(request)
    await store.record("outbox", {"message_id": str(uuid.uuid4()), "pix_key_request_key": request.request_key,
                            "channel": "email", "destination": "a@example.com", "verification_code": "123456",
                            "sent_at": "2030-01-01T00:00:00", "expires_at": "2030-01-01T00:10:00"})
    await store.schedule(DueJob(T0, "decide-key-request", request.request_key))
    await store.set_clock(lambda s: s.with_frozen(True, T0))
    exported = await store.export()
    other = await new_store()
    await other.load(fixtures.tenants, fixtures.accounts)
    before = other.revision
    await other.replace(exported)
    assert await other.export() == exported
    assert other.revision != before
    assert (await other.key_request(request.request_key)).key_value == "a@example.com"
    with pytest.raises(errors.KeyCreationNotFinished):  # the rules hold on what was imported
        await other.add_key_request(await key_request(other, SEED_ACCOUNT, "a@example.com"))


async def test_the_revision_moves_with_every_change(store):
    seen = {store.revision}
    await store.add_key_request(await key_request(store, SEED_ACCOUNT, "a@example.com"))
    seen.add(store.revision)
    await store.set_clock(lambda s: s.advanced(1))
    seen.add(store.revision)
    assert len(seen) == 3
