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


async def test_the_journal_outlives_a_load(store, fixtures):
    """A reset reloads the state; the journal shows what led to it."""
    store.journal.add({"operation_id": "list-pix-keys", "status": 200})
    await store.load(fixtures.tenants, fixtures.accounts)
    assert [e["operation_id"] for e in await store.journal.entries()] == ["list-pix-keys"]


async def test_the_scenario_switches_and_counts_are_state(store, fixtures):
    """Which scenarios are on and how often each rule fired: read by every request (settle_view),
    counted atomically, cleared by a load (a reset starts them again)."""
    assert (await store.settle_view()).active_scenarios is None  # never switched: the start-up selection
    await store.set_active_scenarios(["provider-outage"])
    assert (await store.settle_view()).active_scenarios == ["provider-outage"]
    fired = await race(30, lambda _i: store.count_rule("outage@abc#0", lambda nth: nth <= 3))
    assert sorted(fired) == [(n, n <= 3) for n in range(1, 31)]  # each n once: "first: 3" fires 3 times
    assert await store.rule_counts() == {"outage@abc#0": (30, 3)}
    await store.set_active_scenarios(["provider-outage"], restart_counts=True)
    assert await store.rule_counts() == {}
    await store.count_rule("outage@abc#0", lambda nth: True)
    await store.load(fixtures.tenants, fixtures.accounts)
    assert (await store.settle_view()).active_scenarios is None and await store.rule_counts() == {}


async def test_what_a_request_reads_first_is_one_view(store):
    await store.set_clock(lambda s: s.with_frozen(True, T0))
    await store.schedule(DueJob(T0 + dt.timedelta(seconds=5), "k", "s"))
    view = await store.settle_view()
    assert view.clock == await store.clock() and view.next_due == T0 + dt.timedelta(seconds=5)


async def test_an_export_replaced_into_another_store_exports_the_same(store, fixtures, new_store):
    asked = await key_request(store, NATURAL_ACCOUNT, "a@example.com")
    await store.add_key_request(asked)
    await store.record("outbox", {"message_id": str(uuid.uuid4()), "pix_key_request_key": asked.request_key,
                            "channel": "email", "destination": "a@example.com", "verification_code": "123456",
                            "sent_at": "2030-01-01T00:00:00", "expires_at": "2030-01-01T00:10:00"})
    await store.schedule(DueJob(T0, "decide-key-request", asked.request_key))
    await store.set_clock(lambda s: s.with_frozen(True, T0))
    exported = await store.export()
    other = await new_store()
    await other.load(fixtures.tenants, fixtures.accounts)
    before = other.revision
    await other.replace(exported)
    assert await other.export() == exported
    assert other.revision != before
    assert (await other.key_request(asked.request_key)).key_value == "a@example.com"
    with pytest.raises(errors.KeyCreationNotFinished):  # the rules hold on what was imported
        await other.add_key_request(await key_request(other, SEED_ACCOUNT, "a@example.com"))


async def test_the_revision_moves_with_every_change(store):
    seen = {store.revision}
    await store.add_key_request(await key_request(store, SEED_ACCOUNT, "a@example.com"))
    seen.add(store.revision)
    await store.set_clock(lambda s: s.advanced(1))
    seen.add(store.revision)
    assert len(seen) == 3


async def test_a_namespace_is_set_up_once(store, fixtures):
    """What two processes use to create a shared namespace exactly once."""
    assert await store.setup_state() is None
    claimed = await race(8, lambda _i: store.setup_claim())
    assert claimed.count(True) == 1 and claimed.count(False) == 7
    assert await store.setup_state() == "loading"
    await store.setup_finished()
    assert await store.setup_state() == "ready"
    await store.load(fixtures.tenants, fixtures.accounts)  # a reset keeps the namespace ready
    assert await store.setup_state() == "ready"
    await store.drop()
    assert await store.setup_state() is None and await store.accounts() == []


async def test_a_joining_process_knows_the_tenants_without_a_load(new_store, fixtures):
    joining = await new_store()
    joining.know_tenants(fixtures.tenants)
    assert joining.tenant_by_token("org-a-token").name == "org-a"
    assert joining.tenant_count() == len(fixtures.tenants)
    assert [t.name for t in joining.tenants()] == sorted(t.name for t in fixtures.tenants)


# -- DICT entries: keys held at another institution ------------------------------------------------------


def dict_entry(value: str, kind: PixKeyType = PixKeyType.EMAIL, document: str = "69471280303") -> DictEntry:
    return DictEntry(pix_key=value, pix_key_type=kind, owner_name="RAFAEL MENDES", owner_document_number=document,
                     owner_person_type=PersonType.NATURAL, ispb="00000000", bank_name="BANCO DO BRASIL S.A.",
                     bank_code=1, branch_number="1234", account_number="0456123", account_digit="7",
                     account_type="checking", created_at="2030-01-01T00:00:00")


async def test_a_dict_entry_holds_its_key(store):
    await store.add_dict_entry(dict_entry("held@example.com"))
    await store.add_dict_entry(dict_entry("other@example.com"))
    assert await store.dict_entry("held@example.com") == dict_entry("held@example.com")
    assert await store.dict_entry("free@example.com") is None
    assert [e.pix_key for e in await store.dict_entries()] == ["held@example.com", "other@example.com"]
    with pytest.raises(errors.KeyAlreadyExists):  # held at another institution
        await store.add_key_request(await key_request(store, SEED_ACCOUNT, "held@example.com"))
    with pytest.raises(KeyAlreadyInDict):
        await store.add_dict_entry(dict_entry("held@example.com"))
    await store.add_key_request(await key_request(store, SEED_ACCOUNT, "mine@example.com"))
    with pytest.raises(KeyAlreadyInDict):  # held by a sandbox key
        await store.add_dict_entry(dict_entry("mine@example.com"))
    assert (await store.counts())["keys"] == 1  # an entry is not a sandbox key


async def test_concurrent_dict_entries_and_requests_for_one_key_store_one(store):
    requests = [await key_request(store, SEED_ACCOUNT, "race@example.com") for _ in range(16)]

    async def one(index: int) -> None:
        if index % 2:
            await store.add_dict_entry(dict_entry("race@example.com"))
        else:
            await store.add_key_request(requests[index])

    results = await race(32, lambda i: one(i % 16 if i < 16 else i))
    assert sum(r is None for r in results) == 1
    held_by_entry = await store.dict_entry("race@example.com") is not None
    held_by_request = await store.key_holder("race@example.com") is not None
    assert held_by_entry != held_by_request


# -- anti-scan buckets -------------------------------------------------------------------------------------


async def test_concurrent_spends_are_each_applied(store):
    def new() -> TokenBucket:
        return TokenBucket.full(NATURAL_ACCOUNT, PersonType.NATURAL, T0)

    results = await race(40, lambda _i: store.spend_tokens(NATURAL_ACCOUNT, new, lambda b: b.spend(1, T0)))
    assert sorted(r.tokens for r in results) == [float(n) for n in range(60, 100)]
    [bucket] = await store.buckets()
    assert bucket.tokens == 60.0 and bucket.account_key == NATURAL_ACCOUNT


async def test_a_spend_that_raises_changes_nothing(store):
    def new() -> TokenBucket:
        return TokenBucket.full(NATURAL_ACCOUNT, PersonType.NATURAL, T0)

    def empty(bucket: TokenBucket) -> TokenBucket:
        return bucket.spend(20, T0)

    for _ in range(5):  # 100 tokens
        await store.spend_tokens(NATURAL_ACCOUNT, new, empty)
    with pytest.raises(errors.RateLimited):
        await store.spend_tokens(NATURAL_ACCOUNT, new, empty)
    with pytest.raises(errors.RateLimited):  # a first spend that raises leaves no bucket either
        await store.spend_tokens(SEED_ACCOUNT, new, lambda _b: (_ for _ in ()).throw(errors.RateLimited(retry_after=1)))
    assert [(b.account_key, b.tokens) for b in await store.buckets()] == [(NATURAL_ACCOUNT, 0.0)]


# -- change_key: a deletion frees the key and the place in the same step ---------------------------------------


async def approved(store: SandboxStore, account_key: str, value: str) -> PixKeyRequest:
    request = await key_request(store, account_key, value, status=RequestStatus.APPROVED)
    request.key_status = KeyStatus.ACTIVE
    await store.add_key_request(request)
    return request


def delete(request: PixKeyRequest) -> None:
    request.delete(T0)


async def test_a_deleted_key_frees_its_value_and_place(store):
    for index in range(5):
        await approved(store, NATURAL_ACCOUNT, f"k{index}@example.com")
    with pytest.raises(errors.KeyLimitReached):
        await store.add_key_request(await key_request(store, NATURAL_ACCOUNT, "k5@example.com"))
    await store.change_key("k0@example.com", delete)
    assert await store.key_holder("k0@example.com") is None
    with pytest.raises(errors.KeyNotFound):
        await store.change_key("k0@example.com", delete)
    await store.add_key_request(await key_request(store, NATURAL_ACCOUNT, "k5@example.com"))  # the place
    await store.add_key_request(await key_request(store, SEED_ACCOUNT, "k0@example.com"))  # the value
    assert (await store.counts())["keys"] == 6


async def test_a_key_change_that_raises_changes_nothing(store):
    await approved(store, SEED_ACCOUNT, "a@example.com")

    def half_way(request: PixKeyRequest) -> None:
        request.delete(T0)
        raise errors.KeyNotFound(pix_key="a@example.com")

    with pytest.raises(errors.KeyNotFound):
        await store.change_key("a@example.com", half_way)
    assert (await store.key_holder("a@example.com")).key_status is KeyStatus.ACTIVE


async def test_a_racing_deletion_and_creation_see_the_key_held_or_free(store):
    async def create_later(request: PixKeyRequest, turns: int) -> None:
        for _ in range(turns):  # the creation lands before, during or after the deletion's steps
            await asyncio.sleep(0)
        await store.add_key_request(request)

    for index in range(16):
        value = f"race{index}@example.com"
        held = await approved(store, NATURAL_ACCOUNT, value)  # its place is freed each time
        new = await key_request(store, SEED_ACCOUNT, value)
        deleted, created = await race(2, lambda i: store.change_key(value, delete) if i == 0
                                      else create_later(new, index))
        assert deleted is None
        holder = await store.key_holder(value)
        if created is None:  # after the deletion: the new request holds the key
            assert holder.request_key == new.request_key
        else:  # before it: refused, and the key is free now
            assert isinstance(created, errors.KeyAlreadyExists) and holder is None
        assert (await store.key_request(held.request_key)).key_status is KeyStatus.INACTIVE


# -- claims ------------------------------------------------------------------------------------------------


OTHER_BANK = Counterpart(name="RAFAEL MENDES", document_number="69471280303", person_type=PersonType.NATURAL,
                         claimant_key="p", account_opened_at="2029-12-01T00:00:00", account_branch="1234",
                         account_number="0456123", account_digit="7", account_type="checking",
                         bank_name="BANCO DO BRASIL S.A.", bank_code=1, ispb="00000000")


def new_claim(account: Account, value: str, role: ClaimRole, key_request_key: str | None = None) -> Claim:
    """A claim as ``services/claims.py`` makes one: the claimant's waiting for the donor, the donor's
    waiting for its confirmation."""
    at = "2030-01-01T00:00:00"
    claimant = role is ClaimRole.CLAIMANT
    return Claim(
        claim_key=str(uuid.uuid4()), dict_claim_id=str(uuid.uuid4()), role=role, claim_type=ClaimType.OWNERSHIP,
        status=ClaimStatus.PENDING if claimant else ClaimStatus.PENDING_CONFIRMATION, account=account,
        requester_key="r", key_type=PixKeyType.EMAIL, key_value=value, key_created_at=at,
        claimant=Counterpart.own(account) if claimant else OTHER_BANK,
        donator_ispb="00000000" if claimant else OWN_ISPB, created_at=at, updated_at=at,
        resolution_due=T0 + dt.timedelta(days=7), conclusion_due=T0 + dt.timedelta(days=14),
        key_request_key=key_request_key or str(uuid.uuid4()))


async def claimant_claim(store: SandboxStore, account_key: str, value: str) -> Claim:
    return new_claim(await account(store, account_key), value, ClaimRole.CLAIMANT)


async def test_a_claimant_claims_a_key_held_at_another_institution(store):
    with pytest.raises(errors.ClaimKeyNotFound):
        await store.add_claim(await claimant_claim(store, NATURAL_ACCOUNT, "held@example.com"), T0)
    await store.add_dict_entry(dict_entry("held@example.com"))
    claim = await claimant_claim(store, NATURAL_ACCOUNT, "held@example.com")
    await store.add_claim(claim, T0)
    with pytest.raises(errors.KeyClaimNotFinished):  # one unfinished claim per key
        await store.add_claim(await claimant_claim(store, SEED_ACCOUNT, "held@example.com"), T0)
    assert await store.claim(claim.claim_key) == claim
    assert [c.claim_key for c in await store.claims(NATURAL_ACCOUNT)] == [claim.claim_key]
    assert await store.claims(SEED_ACCOUNT) == [] and await store.claim(str(uuid.uuid4())) is None
    read = await store.claim(claim.claim_key)
    read.status = ClaimStatus.CANCELLED  # a copy
    assert (await store.claim(claim.claim_key)).status is ClaimStatus.PENDING


async def test_a_sandbox_key_is_not_claimed_as_claimant(store):
    await store.add_key_request(await key_request(store, SEED_ACCOUNT, "pending@example.com"))
    await approved(store, SEED_ACCOUNT, "active@example.com")
    with pytest.raises(errors.KeyCreationNotFinished):
        await store.add_claim(await claimant_claim(store, NATURAL_ACCOUNT, "pending@example.com"), T0)
    with pytest.raises(errors.KeyAlreadyExists):
        await store.add_claim(await claimant_claim(store, NATURAL_ACCOUNT, "active@example.com"), T0)


async def test_an_unfinished_claimant_claim_takes_a_place(store):
    for index in range(4):
        await store.add_key_request(await key_request(store, NATURAL_ACCOUNT, f"k{index}@example.com"))
    await store.add_dict_entry(dict_entry("held@example.com"))
    await store.add_dict_entry(dict_entry("held2@example.com"))
    claim = await claimant_claim(store, NATURAL_ACCOUNT, "held@example.com")
    await store.add_claim(claim, T0)
    with pytest.raises(errors.KeyLimitReached):
        await store.add_key_request(await key_request(store, NATURAL_ACCOUNT, "k5@example.com"))
    with pytest.raises(errors.KeyLimitReached):
        await store.add_claim(await claimant_claim(store, NATURAL_ACCOUNT, "held2@example.com"), T0)
    await store.change_claim(claim.claim_key, lambda c: c.cancel(ClaimRole.CLAIMANT, Reason.CLIENT_REQUEST, None, T0),
                             T0)
    await store.add_key_request(await key_request(store, NATURAL_ACCOUNT, "k5@example.com"))  # given back
    assert await store.dict_entry("held@example.com") is not None  # a cancelled claim takes nothing


async def test_a_concluded_claimant_claim_makes_the_key_active_in_the_account(store):
    await store.add_dict_entry(dict_entry("held@example.com"))
    claim = await claimant_claim(store, NATURAL_ACCOUNT, "held@example.com")
    await store.add_claim(claim, T0)
    await store.change_claim(claim.claim_key, lambda c: c.receive_response(Response.CONFIRMED, T0), T0)
    assert await store.dict_entry("held@example.com") is not None  # confirmed: not yet moved
    concluded = await store.change_claim(claim.claim_key,
                                         lambda c: c.receive_response(Response.CONCLUDED, T0) or c, T0)
    assert concluded.status is ClaimStatus.CONCLUDED
    assert await store.dict_entry("held@example.com") is None
    holder = await store.key_holder("held@example.com")
    assert holder.request_key == claim.key_request_key and holder.key_status is KeyStatus.ACTIVE
    assert holder.account.account_key == NATURAL_ACCOUNT
    assert [r.request_key for r in await store.key_requests(NATURAL_ACCOUNT)] == [claim.key_request_key]
    assert await store.counts() == {"accounts": (await store.counts())["accounts"], "keys": 1, "key_requests": 1}
    for index in range(4):  # the claim's place became the key's: 4 more, not 5
        await store.add_key_request(await key_request(store, NATURAL_ACCOUNT, f"k{index}@example.com"))
    with pytest.raises(errors.KeyLimitReached):
        await store.add_key_request(await key_request(store, NATURAL_ACCOUNT, "k5@example.com"))
    # open again: another claim on the key
    with pytest.raises(errors.KeyAlreadyExists):
        await store.add_claim(await claimant_claim(store, SEED_ACCOUNT, "held@example.com"), T0)


async def test_a_donor_claim_locks_the_key(store):
    held = await approved(store, SEED_ACCOUNT, "mine@example.com")
    seed = await account(store, SEED_ACCOUNT)
    with pytest.raises(errors.KeyNotFound):  # not the request that holds the key
        await store.add_claim(new_claim(seed, "mine@example.com", ClaimRole.DONATOR, str(uuid.uuid4())), T0)
    claim = new_claim(seed, "mine@example.com", ClaimRole.DONATOR, held.request_key)
    await store.add_claim(claim, T0)
    locked = await store.key_holder("mine@example.com")
    assert locked.key_status is KeyStatus.PENDING_CLAIM and locked.claim_lock == claim.claim_key
    with pytest.raises(errors.KeyClaimNotFinished):
        await store.add_claim(new_claim(seed, "mine@example.com", ClaimRole.DONATOR, held.request_key), T0)
    with pytest.raises(errors.KeyClaimNotFinished):  # a locked key is not deleted
        await store.change_key("mine@example.com", delete)
    pending = await key_request(store, SEED_ACCOUNT, "pending@example.com")
    await store.add_key_request(pending)
    with pytest.raises(errors.KeyCreationNotFinished):
        await store.add_claim(new_claim(seed, "pending@example.com", ClaimRole.DONATOR, pending.request_key), T0)
    await store.change_claim(claim.claim_key, lambda c: c.cancel(ClaimRole.DONATOR, Reason.FRAUD, None, T0)
                             if False else c.confirm(Reason.CLIENT_REQUEST, T0), T0)
    assert (await store.key_holder("mine@example.com")).key_status is KeyStatus.PENDING_CLAIM  # still locked


async def test_a_cancelled_donor_claim_unlocks_the_key(store):
    held = await approved(store, SEED_ACCOUNT, "mine@example.com")
    claim = new_claim(await account(store, SEED_ACCOUNT), "mine@example.com", ClaimRole.DONATOR, held.request_key)
    claim.claim_type = ClaimType.PORTABILITY
    await store.add_claim(claim, T0)
    await store.change_claim(claim.claim_key, lambda c: c.cancel(ClaimRole.DONATOR, Reason.CLIENT_REQUEST, None, T0),
                             T0)
    unlocked = await store.key_holder("mine@example.com")
    assert unlocked.key_status is KeyStatus.ACTIVE and unlocked.claim_lock is None
    await store.change_key("mine@example.com", delete)  # deletable again


async def test_a_concluded_donor_claim_gives_the_key_to_the_other_institution(store):
    held = await approved(store, SEED_ACCOUNT, "mine@example.com")
    claim = new_claim(await account(store, SEED_ACCOUNT), "mine@example.com", ClaimRole.DONATOR, held.request_key)
    await store.add_claim(claim, T0)
    await store.change_claim(claim.claim_key, lambda c: c.confirm(Reason.CLIENT_REQUEST, T0), T0)
    await store.change_claim(claim.claim_key, lambda c: c.complete(T0), T0)
    assert await store.key_holder("mine@example.com") is None
    assert (await store.key_request(held.request_key)).key_status is KeyStatus.INACTIVE
    entry = await store.dict_entry("mine@example.com")
    assert entry.ispb == OTHER_BANK.ispb and entry.owner_name == OTHER_BANK.name
    with pytest.raises(errors.KeyAlreadyExists):  # held at the other institution now
        await store.add_key_request(await key_request(store, NATURAL_ACCOUNT, "mine@example.com"))
    assert (await store.counts())["keys"] == 0


async def test_a_claim_change_that_raises_changes_nothing(store):
    await store.add_dict_entry(dict_entry("held@example.com"))
    claim = await claimant_claim(store, NATURAL_ACCOUNT, "held@example.com")
    await store.add_claim(claim, T0)

    def half_way(stored: Claim) -> None:
        stored.receive_response(Response.CONFIRMED, T0)
        stored.receive_response(Response.CONCLUDED, T0)
        raise errors.WrongCode()

    with pytest.raises(errors.WrongCode):
        await store.change_claim(claim.claim_key, half_way, T0)
    assert (await store.claim(claim.claim_key)).status is ClaimStatus.PENDING
    assert await store.dict_entry("held@example.com") is not None and await store.key_holder("held@example.com") is None
    with pytest.raises(errors.ClaimNotFound):
        await store.change_claim(str(uuid.uuid4()), lambda c: c, T0)


async def test_concurrent_claims_on_one_key_store_exactly_one(store):
    await store.add_dict_entry(dict_entry("held@example.com"))
    claims = [await claimant_claim(store, SEED_ACCOUNT if i % 2 else NATURAL_ACCOUNT, "held@example.com")
              for i in range(32)]
    results = await race(32, lambda i: store.add_claim(claims[i], T0))
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, errors.KeyClaimNotFinished) for r in results if r is not None)


async def test_concurrent_donor_claims_on_one_key_store_exactly_one(store):
    held = await approved(store, SEED_ACCOUNT, "mine@example.com")
    seed = await account(store, SEED_ACCOUNT)
    claims = [new_claim(seed, "mine@example.com", ClaimRole.DONATOR, held.request_key) for _ in range(16)]
    results = await race(16, lambda i: store.add_claim(claims[i], T0))
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, errors.KeyClaimNotFinished) for r in results if r is not None)


async def test_concurrent_claims_on_a_natural_person_take_exactly_the_free_places(store):
    for index in range(3):
        await store.add_key_request(await key_request(store, NATURAL_ACCOUNT, f"k{index}@example.com"))
    for index in range(10):
        await store.add_dict_entry(dict_entry(f"held{index}@example.com"))
    claims = [await claimant_claim(store, NATURAL_ACCOUNT, f"held{i}@example.com") for i in range(10)]
    results = await race(10, lambda i: store.add_claim(claims[i], T0))
    assert sum(r is None for r in results) == 2
    assert all(isinstance(r, errors.KeyLimitReached) for r in results if r is not None)


# -- the whole state: export and replace with every kind of entity ----------------------------------------------


async def test_an_export_with_claims_buckets_and_entries_replaces_into_another_store(store, fixtures, new_store):
    await store.add_dict_entry(dict_entry("held@example.com"))
    await store.add_dict_entry(dict_entry("held2@example.com"))
    claim = await claimant_claim(store, NATURAL_ACCOUNT, "held@example.com")
    await store.add_claim(claim, T0)
    mine = await approved(store, SEED_ACCOUNT, "mine@example.com")
    donor = new_claim(await account(store, SEED_ACCOUNT), "mine@example.com", ClaimRole.DONATOR, mine.request_key)
    await store.add_claim(donor, T0)
    random_key = await key_request(store, NATURAL_ACCOUNT, None, kind=PixKeyType.RANDOM)
    await store.add_key_request(random_key)
    await store.spend_tokens(NATURAL_ACCOUNT, lambda: TokenBucket.full(NATURAL_ACCOUNT, PersonType.NATURAL, T0),
                             lambda b: b.spend(20, T0))
    await store.save_credential(Credential("org-a", "BTG", "PIX", b"sealed", "proxy", {"x": 1}, "2030-01-01T00:00:00"))
    for index in range(3):
        await store.schedule(DueJob(T0, "k", f"same-time-{index}"))
    exported = await store.export()
    assert {"claims", "buckets", "dict_entries"} <= exported.keys()
    assert len(exported["claims"]) == 2 and len(exported["buckets"]) == 1 and len(exported["dict_entries"]) == 2

    other = await new_store()
    await other.load(fixtures.tenants, fixtures.accounts)
    await other.replace(exported)
    assert await other.export() == exported
    assert await other.counts() == await store.counts()
    assert [j.subject for j in await other.due_jobs()] == ["same-time-0", "same-time-1", "same-time-2"]
    assert (await other.credential("org-a", "BTG", "PIX")).sealed_key is None  # a snapshot carries no key
    # the rules hold on what was imported: the open claims, the places, the lock
    with pytest.raises(errors.KeyClaimNotFinished):
        await other.add_claim(await claimant_claim(other, SEED_ACCOUNT, "held@example.com"), T0)
    with pytest.raises(errors.KeyClaimNotFinished):
        await other.change_key("mine@example.com", delete)
    for index in range(3):  # 5 places: the claim's and the random key's taken
        await other.add_key_request(await key_request(other, NATURAL_ACCOUNT, f"k{index}@example.com"))
    with pytest.raises(errors.KeyLimitReached):
        await other.add_key_request(await key_request(other, NATURAL_ACCOUNT, "k3@example.com"))
    concluded = await other.change_claim(
        claim.claim_key, lambda c: (c.receive_response(Response.CONFIRMED, T0),
                                    c.receive_response(Response.CONCLUDED, T0)), T0)
    assert concluded == (None, None)
    assert (await other.key_holder("held@example.com")).account.account_key == NATURAL_ACCOUNT
    # and the original is untouched by all this
    assert await store.export() == exported


async def test_subscriptions_are_kept_with_a_version_that_moves(store, fixtures):
    version, kept = await store.subscriptions()
    assert kept == []
    entry = {"id": "s1", "url": "http://127.0.0.1:9/h", "events": ["*"], "created_at": "2030-01-01T00:00:00",
             "sealed_secret": "c2VhbGVk"}
    await store.save_subscription(entry)
    moved, kept = await store.subscriptions()
    assert kept == [entry] and moved != version
    assert (await store.settle_view()).subscriptions_version == moved
    assert await store.remove_subscription("s1") is True
    assert await store.remove_subscription("s1") is False
    after_removal, kept = await store.subscriptions()
    assert kept == [] and after_removal not in (version, moved)
    await store.save_subscription(entry)
    await store.load(fixtures.tenants, fixtures.accounts)
    after_load, kept = await store.subscriptions()
    assert kept == [] and after_load != after_removal


# -- webhook deliveries: records and leases -----------------------------------------------------------


def delivery_record(delivery_id: str, state: str = "pending", tries: int = 0) -> dict:
    return {"delivery": {"id": delivery_id, "subscription_id": "s", "url": "http://127.0.0.1:9/hooks",
                         "event_type": "key_inclusion", "body": {"n": delivery_id}, "created_at": "2030-01-01T00:00:00Z",
                         "state": state, "attempts": [], "reason": None},
            "seq": 1, "tries": tries, "sealed_secret": "c2VhbGVk"}


async def test_a_delivery_is_kept_leased_renewed_and_finished(store):
    assert await store.keep_delivery(delivery_record("d1"), "A", 100.0, "new")
    assert not await store.keep_delivery(delivery_record("d1"), "B", 100.0, "new")  # one of each id
    assert await store.keep_delivery(delivery_record("d1", tries=2), "A", 110.0, "mine")
    assert not await store.keep_delivery(delivery_record("d1"), "B", 110.0, "mine")  # not B's lease
    assert (await store.delivery("d1"))["tries"] == 2
    assert await store.renew_deliveries(["d1", "unknown"], "A", 120.0) == ["unknown"]
    assert await store.take_expired(119.0, "B", 10.0) == []  # renewed: not expired yet
    assert await store.renew_deliveries(["d1"], "B", 130.0) == ["d1"]
    assert not await store.finish_delivery("d1", delivery_record("d1", "delivered"), "B")
    assert await store.finish_delivery("d1", delivery_record("d1", "delivered"), "A")
    assert (await store.delivery("d1"))["delivery"]["state"] == "delivered"
    assert await store.take_expired(1e12, "B", 10.0) == []  # finished: no lease left
    assert await store.renew_deliveries(["d1"], "A", 140.0) == ["d1"]
    assert await store.delivery("nope") is None


async def test_an_expired_lease_is_taken_over_with_the_record(store):
    await store.keep_delivery(delivery_record("d1", tries=3), "A", 100.0, "new")
    await store.keep_delivery(delivery_record("d2"), "A", 200.0, "new")
    taken = await store.take_expired(150.0, "B", 10.0)
    assert [(delivery_id, record["tries"]) for delivery_id, record in taken] == [("d1", 3)]
    assert not await store.keep_delivery(delivery_record("d1"), "A", 300.0, "mine")  # A lost it
    assert await store.renew_deliveries(["d1", "d2"], "A", 300.0) == ["d1"]
    assert await store.take_expired(159.0, "C", 10.0) == []  # B's lease runs to 160
    assert [delivery_id for delivery_id, _ in await store.take_expired(160.0, "C", 10.0)] == ["d1"]


async def test_a_redelivery_takes_the_lease_of_a_kept_delivery(store):
    assert not await store.keep_delivery(delivery_record("d1"), "B", 100.0, "take")  # none kept
    await store.keep_delivery(delivery_record("d1"), "A", 100.0, "new")
    await store.finish_delivery("d1", delivery_record("d1", "failed"), "A")
    assert await store.keep_delivery(delivery_record("d1"), "B", 100.0, "take")
    assert await store.finish_delivery("d1", None, "B")
    assert (await store.delivery("d1"))["delivery"]["state"] == "pending"  # None: the record as kept


async def test_deliveries_are_listed_newest_first_and_the_finished_ones_bounded(store, monkeypatch):
    monkeypatch.setattr("baas_sandbox.adapters.repository.DELIVERY_LOG_SIZE", 3)
    monkeypatch.setattr("baas_sandbox.adapters.redis_store.DELIVERY_LOG_SIZE", 3)
    for n in range(5):
        await store.keep_delivery(delivery_record(f"d{n}"), "A", 100.0, "new")
    assert [r["delivery"]["id"] for r in await store.deliveries()] == ["d4", "d3", "d2", "d1", "d0"]
    for n in range(5):
        if n != 2:
            await store.finish_delivery(f"d{n}", delivery_record(f"d{n}", "delivered"), "A")
    # the 3 latest finished and the pending one are kept; the oldest finished is forgotten
    assert [r["delivery"]["id"] for r in await store.deliveries()] == ["d4", "d3", "d2", "d1"]
    assert await store.delivery("d0") is None


async def test_a_load_forgets_the_deliveries(store, fixtures):
    await store.keep_delivery(delivery_record("d1"), "A", 100.0, "new")
    await store.load(fixtures.tenants, fixtures.accounts)
    assert await store.deliveries() == []
    assert await store.take_expired(1e12, "B", 10.0) == []


async def test_each_expired_delivery_is_taken_by_one_taker(store):
    for n in range(200):
        await store.keep_delivery(delivery_record(f"d{n}"), "dead", float(n), "new")

    async def take(index: int) -> list[str]:
        return [delivery_id for _ in range(10)
                for delivery_id, _ in await store.take_expired(1000.0, f"taker-{index}", 30.0, limit=7)]

    taken = await race(16, take)
    flat = [delivery_id for batch in taken for delivery_id in batch]
    assert sorted(flat) == sorted(f"d{n}" for n in range(200))  # each once: none lost, none twice
