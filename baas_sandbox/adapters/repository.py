"""The sandbox's state behind a small interface whose operations are atomic steps.

Every rule that must hold under concurrency (one owner per key, one unfinished request per key,
the per-account limit) is checked and applied inside a single store operation, so that a shared
store (Redis, ``adapters/redis_store.py``: a Lua script or WATCH/MULTI per operation) can replace the
in-memory one without moving any rule. The in-memory store serialises its operations with one lock.

The operations are coroutines: a shared store answers over the network, and the event loop must
never wait on it. The fixtures' tenants are the exception (read on every request, the same in every
process: each store keeps them in memory). A store that cannot be reached raises
``StoreUnavailable``, which the server answers 503 ``SBX000503``.
"""

from __future__ import annotations

import copy
import datetime as dt
import heapq
import itertools
import json
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from baas_sandbox.adapters import state_codec as codec
from baas_sandbox.clock import REAL_TIME, ClockSetting
from baas_sandbox.domain import errors
from baas_sandbox.domain.due_work import DueJob
from baas_sandbox.domain.antiscan import TokenBucket
from baas_sandbox.domain.claims import Claim, ClaimRole, ClaimStatus
from baas_sandbox.domain.model import Account, Credential, DictEntry, PixKeyRequest, Tenant
from baas_sandbox.http.journal import Journal, MemoryBudget

T = TypeVar("T")

#: Entries kept per log (outbox, webhooks, events): the oldest go first, memory stays bounded.
LOG_SIZE = 10_000

#: Finished webhook deliveries kept (the dispatcher's ``DELIVERY_LOG_SIZE``): the oldest go first.
DELIVERY_LOG_SIZE = 1000

#: How ``keep_delivery`` may write a delivery: ``new`` (a new one, refused when its id is kept
#: already), ``mine`` (one whose lease the caller holds: refused when another process took it over,
#: or a reset forgot it), ``take`` (a kept one, its lease taken whoever held it: a redelivery).
KEEP_MODES = ("new", "mine", "take")


@dataclass(frozen=True)
class SettleView:
    """What every request reads first, in one step (one round trip to a shared store)."""

    clock: ClockSetting
    #: When the earliest due job falls due (None: no job).
    next_due: dt.datetime | None
    #: The active scenarios (None: never switched: the start-up selection).
    active_scenarios: list[str] | None
    #: The version of the webhook subscriptions (moves with every change of them).
    subscriptions_version: int
    #: Whether the namespace's state is there (made, not dropped, not lost with a Redis restarted
    #: without persistence): when it is not, the namespace is made again from the fixtures.
    present: bool = True


class StoreUnavailable(Exception):
    """The shared store could not be reached, or did not answer in time: nothing was changed that a
    caller was told about (a step either happened whole or not at all), and the caller may retry."""


class AccountAlreadyExists(Exception):
    """An account with this ``account_key`` is stored already."""


class KeyAlreadyInDict(Exception):
    """The key of a DICT entry is held already (by another entry, or by a sandbox key)."""


class SandboxStore(Protocol):
    """One namespace's state. Every method is one atomic step; every one but the tenants' a coroutine."""

    #: The request journal: the latest requests, bounded; a reset keeps it.
    journal: Journal

    async def load(self, tenants: Iterable[Tenant], accounts: Iterable[Account]) -> None:
        """Drop everything and start again from these tenants and accounts."""

    def tenant_by_token(self, token: str) -> Tenant | None: ...
    def tenant(self, name: str) -> Tenant | None: ...
    def tenant_count(self) -> int: ...

    def tenants(self) -> list[Tenant]: ...

    async def add_account(self, account: Account) -> None:
        """Store a new account; ``AccountAlreadyExists`` when its key is taken."""

    async def account(self, account_key: str) -> Account | None: ...
    async def accounts(self, tenant: str | None = None) -> list[Account]: ...

    async def save_credential(self, credential: Credential) -> bool:
        """Create or replace the tenant's credential for (provider, type); True if replaced."""

    async def credential(self, tenant: str, provider: str, integration_type: str) -> Credential | None: ...

    async def add_key_request(self, request: PixKeyRequest) -> None:
        """Store a new key request if its key is free and its account below its limit.

        Raises ``KeyAlreadyExists`` (the key is active, or held at another institution: a DICT
        entry), ``KeyCreationNotFinished`` (another request for the key is unfinished) or
        ``KeyLimitReached``, checked and inserted atomically.
        """

    async def key_holder(self, key_value: str) -> PixKeyRequest | None:
        """A copy of the request that holds this key value (being created or active), if any."""

    async def change_key(self, key_value: str, change: Callable[[PixKeyRequest], T]) -> T:
        """Apply ``change`` atomically to the request that holds this key value (``KeyNotFound``
        when none does); a change that frees the key (a deletion) frees it in the same step, so a
        concurrent ``add_key_request`` sees the key either held or free."""

    async def add_dict_entry(self, entry: DictEntry) -> None:
        """Register a key held at another institution; ``KeyAlreadyInDict`` when it is held."""

    async def dict_entry(self, key_value: str) -> DictEntry | None: ...
    async def dict_entries(self) -> list[DictEntry]: ...

    async def spend_tokens(self, account_key: str, new: Callable[[], TokenBucket],
                     spend: Callable[[TokenBucket], TokenBucket]) -> TokenBucket:
        """Apply ``spend`` to the account's anti-scan bucket (``new()`` when it has none yet)
        atomically; if it raises, the bucket is left as it was."""

    async def buckets(self) -> list[TokenBucket]: ...

    async def key_request(self, request_key: str) -> PixKeyRequest | None:
        """A copy of the request: changes go through ``change_key_request``."""

    async def change_key_request(self, request_key: str, change: Callable[[PixKeyRequest], T]) -> T:
        """Apply ``change`` to the stored request atomically; if it raises, nothing is changed."""

    async def key_requests(self, account_key: str) -> list[PixKeyRequest]: ...

    async def add_claim(self, claim: Claim, now: dt.datetime) -> None:
        """Store a new claim, atomically with its rules: one unfinished claim per key
        (``KeyClaimNotFinished``); a claimant's key still held at another institution
        (``ClaimKeyNotFound``, ``KeyAlreadyExists``) and a place in its account's limit
        (``KeyLimitReached``: unfinished claims count); a donor's key active in its account, then
        locked (``claim.lock_donor_key``)."""

    async def claim(self, claim_key: str) -> Claim | None:
        """A copy of the claim: changes go through ``change_claim``."""

    async def change_claim(self, claim_key: str, change: Callable[[Claim], T], now: dt.datetime) -> T:
        """Apply ``change`` to the stored claim atomically (``ClaimNotFound`` when there is none; if
        it raises, nothing changes), and what its end does to the keys in the same step: a donor's
        key unlocked (cancelled) or gone to the claimant's institution (concluded); a claimant's
        key active in its account, and the other institution's entry gone (concluded)."""

    async def claims(self, account_key: str) -> list[Claim]:
        """Copies of the account's claims, both roles, oldest first."""

    async def record(self, kind: str, entry: dict) -> None:
        """Append to a sandbox log (``outbox``, ``webhooks``)."""

    async def records(self, kind: str) -> list[dict]: ...

    async def clock(self) -> ClockSetting: ...

    async def set_clock(self, change: Callable[[ClockSetting], ClockSetting]) -> ClockSetting:
        """Apply ``change`` to the namespace's clock setting atomically; the new setting."""

    async def schedule(self, job: DueJob) -> None:
        """Keep ``job`` until it falls due."""

    async def take_due(self, now: dt.datetime) -> list[DueJob]:
        """Remove and return the jobs due at ``now``, earliest first: each job is taken once."""

    async def next_due(self) -> dt.datetime | None:
        """When the earliest job falls due (None: no job)."""

    async def due_jobs(self) -> list[DueJob]: ...

    async def counts(self) -> dict[str, int]:
        """How many accounts, keys (active or being created) and key requests it holds."""

    async def export(self) -> dict:
        """The state as plain JSON data, in one consistent step (``adapters/state_codec.py``):
        ``clock``, ``accounts``, ``key_requests``, ``credentials`` (metadata, no key), ``outbox``,
        ``due_jobs``, ``dict_entries``, ``buckets``. Tenants (the fixtures') and the history logs are
        not in it."""

    async def replace(self, state: dict) -> None:
        """Replace everything but the tenants with ``state`` (``export``'s shape, already checked by
        ``services/snapshots.py``), atomically: readers see the old state or the new one. The history
        logs (events, recorded webhooks) start empty."""

    @property
    def revision(self) -> int:
        """A number that changes whenever the state does (what a periodic save compares)."""

    async def ping(self) -> None:
        """Return once the store answers (``StoreUnavailable`` when it cannot): the health check."""

    async def touch(self, at: float) -> None:
        """A request used the namespace at ``at`` (epoch seconds): a shared store's idle sweep
        (``Namespaces.drop_idle_shared``) leaves it."""

    async def settle_view(self) -> SettleView:
        """What every request reads first, in one step (one round trip to a shared store)."""

    async def set_active_scenarios(self, names: list[str], restart_counts: bool = False) -> None:
        """Switch exactly these scenarios on (``load`` clears them: never switched again)."""

    async def save_subscription(self, subscription: dict) -> None:
        """Keep a webhook subscription (``id``, ``url``, ``events``, ``created_at``, and its secret
        only sealed: ``sealed_secret``, base64), replacing one of the same id; the version moves."""

    async def remove_subscription(self, subscription_id: str) -> bool:
        """Forget a subscription; False when there was none. The version moves."""

    async def subscriptions(self) -> tuple[int, list[dict]]:
        """The version of the subscriptions (a number that moves with every change) and them, oldest
        first (``load`` forgets them all)."""

    async def keep_delivery(self, record: dict, owner: str, until: float, mode: str) -> bool:
        """Keep a webhook delivery's record (``delivery``: its ``Delivery.as_dict()``, with its id;
        ``seq``; ``tries``: attempts of its current series; ``sealed_secret``, base64: never the
        secret) pending, leased to ``owner`` until ``until`` (real time, seconds since the epoch);
        ``mode`` is one of ``KEEP_MODES``. False, nothing written, when ``mode`` refuses it."""

    async def renew_deliveries(self, delivery_ids: list[str], owner: str, until: float) -> list[str]:
        """Move the leases ``owner`` holds on these deliveries to ``until``; the ids it no longer
        holds (taken over, finished, forgotten by a reset)."""

    async def finish_delivery(self, delivery_id: str, record: dict | None, owner: str) -> bool:
        """The delivery ended (delivered or failed): its record replaced by ``record`` (None: kept
        as it is), its lease gone; it joins the finished ones (the oldest past
        ``DELIVERY_LOG_SIZE`` forgotten). False, nothing written, unless ``owner`` held its lease."""

    async def take_expired(self, now: float, owner: str, lease: float, limit: int = 100) -> list[tuple[str, dict | None]]:
        """Lease to ``owner`` until ``now + lease`` the pending deliveries whose lease expired by
        ``now`` (at most ``limit``), in one step: each is taken by one caller. (id, record) each;
        None for a record that cannot be read (the caller finishes it: ``finish_delivery``)."""

    async def deliveries(self) -> list[dict]:
        """The kept delivery records, pending and finished, newest first."""

    async def delivery(self, delivery_id: str) -> dict | None:
        """One kept delivery record (None: none, or unreadable)."""

    async def count_rule(self, rule_id: str, fires: Callable[[int], bool]) -> tuple[int, bool]:
        """Count one more match of the rule and whether it applies (``fires(nth match)``), in one
        step: ``first: N`` fires N times in all, however many callers race."""

    async def rule_counts(self) -> dict[str, tuple[int, int]]:
        """Each counted rule's (matched, applied)."""

    def know_tenants(self, tenants: Iterable[Tenant]) -> None:
        """Keep the fixtures' tenants without touching the state (a process joining a shared namespace)."""

    async def setup_claim(self) -> bool:
        """True for the one caller that must load the namespace (the first to ask)."""

    async def setup_finished(self) -> None:
        """The namespace is loaded: ``setup_state`` says ``ready``."""

    async def setup_state(self) -> str | None:
        """``loading`` (claimed, not finished), ``ready``, or None (nobody created it)."""

    async def drop(self) -> None:
        """Delete the namespace's state, its setup marker included."""


def decode_record(text: str | None) -> dict | None:
    """A kept record, decoded; None when there is none or it is not a JSON object (a store shared
    with other programs may hold anything: a reader never fails on one record)."""
    if text is None:
        return None
    try:
        found = json.loads(text)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


class FixtureTenants:
    """The fixtures' tenants as every store keeps them: in this process's memory, whatever holds the
    rest (read on every request, and the same in every process sharing a store)."""

    def know_tenants(self, tenants: Iterable[Tenant]) -> None:
        """These tenants from now on, without touching the state (a process joining a shared
        namespace learns them so): both maps replaced at once, never changed in place."""
        tenants = list(tenants)
        self._tenants = {tenant.name: tenant for tenant in tenants}
        self._tenants_by_token = {tenant.token: tenant for tenant in tenants}

    def tenant_by_token(self, token: str) -> Tenant | None:
        return self._tenants_by_token.get(token)

    def tenant(self, name: str) -> Tenant | None:
        return self._tenants.get(name)

    def tenant_count(self) -> int:
        return len(self._tenants)

    def tenants(self) -> list[Tenant]:
        return sorted(self._tenants.values(), key=lambda tenant: tenant.name)


class InMemoryStore(FixtureTenants):
    """``SandboxStore`` in this process's memory, one lock around each operation. ``journal_budget``:
    the bytes of request bodies the journals of every namespace may hold together."""

    def __init__(self, journal_size: int = 1000, journal_budget: MemoryBudget | None = None) -> None:
        self._lock = threading.RLock()
        self.journal = Journal(journal_size, journal_budget)
        self._setup: str | None = None
        self.know_tenants(())
        self._clear()

    def _clear(self) -> None:
        self._accounts: dict[str, Account] = {}
        self._credentials: dict[tuple[str, str, str], Credential] = {}
        self._requests: dict[str, PixKeyRequest] = {}
        self._requests_by_account: dict[str, list[str]] = {}
        # key value -> request key, for every request that claims its key (not rejected)
        self._claimed_keys: dict[str, str] = {}
        # keys DICT holds for other institutions, by value
        self._dict_entries: dict[str, DictEntry] = {}
        # anti-scan buckets of key lookups, by paying account
        self._buckets: dict[str, TokenBucket] = {}
        # claims, by key; by account (both roles); the unfinished one of each key value
        self._claims: dict[str, Claim] = {}
        self._claims_by_account: dict[str, list[str]] = {}
        self._open_claims: dict[str, str] = {}
        self._logs: dict[str, deque[dict]] = {}
        self._clock = REAL_TIME
        self._due: list[tuple[dt.datetime, int, DueJob]] = []  # a heap, earliest first
        self._due_order = itertools.count()  # ties keep their scheduling order
        self._active_scenarios: list[str] | None = None  # never switched
        self._subscriptions: dict[str, dict] = {}
        self._subscriptions_version = getattr(self, "_subscriptions_version", 0) + 1
        # webhook deliveries: id -> record JSON (text: what is read is a copy, as from Redis), its
        # order of keeping, lease owner and expiry of the pending ones, the finished ones in order
        self._deliveries: dict[str, str] = {}
        self._delivery_order: dict[str, int] = {}
        self._delivery_leases: dict[str, tuple[str, float]] = {}
        self._delivery_done: OrderedDict[str, None] = OrderedDict()
        self._delivery_seq = itertools.count(1)
        self._rule_counts: dict[str, list[int]] = {}
        self._revision = getattr(self, "_revision", 0) + 1

    @property
    def revision(self) -> int:
        return self._revision

    def _changed(self) -> None:
        self._revision += 1

    async def ping(self) -> None:
        return None  # this process's memory always answers

    async def touch(self, at: float) -> None:
        return None  # the process's own registry (services/namespaces.py) knows when it was used

    async def settle_view(self) -> SettleView:
        due = self._due
        # Memory is never lost under a living sandbox: a dropped namespace's sandbox is closed.
        return SettleView(self._clock, due[0][0] if due else None, self._active_scenarios,
                          self._subscriptions_version)

    async def save_subscription(self, subscription: dict) -> None:
        with self._lock:
            self._subscriptions[subscription["id"]] = dict(subscription)
            self._subscriptions_version += 1

    async def remove_subscription(self, subscription_id: str) -> bool:
        with self._lock:
            found = self._subscriptions.pop(subscription_id, None) is not None
            self._subscriptions_version += 1
            return found

    async def subscriptions(self) -> tuple[int, list[dict]]:
        with self._lock:
            return self._subscriptions_version, [dict(s) for s in self._subscriptions.values()]

    async def keep_delivery(self, record: dict, owner: str, until: float, mode: str) -> bool:
        delivery_id = record["delivery"]["id"]
        with self._lock:
            if mode == "new":
                if delivery_id in self._deliveries:
                    return False
                self._delivery_order[delivery_id] = next(self._delivery_seq)
            elif mode == "mine":
                if self._delivery_leases.get(delivery_id, ("",))[0] != owner:
                    return False
            elif mode == "take":
                if delivery_id not in self._deliveries:
                    return False
                self._delivery_done.pop(delivery_id, None)
            else:
                raise ValueError(f"mode is one of {KEEP_MODES}, not {mode!r}")
            self._deliveries[delivery_id] = json.dumps(record)
            self._delivery_leases[delivery_id] = (owner, until)
            return True

    async def renew_deliveries(self, delivery_ids: list[str], owner: str, until: float) -> list[str]:
        lost = []
        with self._lock:
            for delivery_id in delivery_ids:
                if self._delivery_leases.get(delivery_id, ("",))[0] == owner:
                    self._delivery_leases[delivery_id] = (owner, until)
                else:
                    lost.append(delivery_id)
        return lost

    async def finish_delivery(self, delivery_id: str, record: dict | None, owner: str) -> bool:
        with self._lock:
            if self._delivery_leases.get(delivery_id, ("",))[0] != owner:
                return False
            del self._delivery_leases[delivery_id]
            if record is not None:
                self._deliveries[delivery_id] = json.dumps(record)
            self._delivery_done[delivery_id] = None
            while len(self._delivery_done) > DELIVERY_LOG_SIZE:
                oldest, _ = self._delivery_done.popitem(last=False)
                self._deliveries.pop(oldest, None)
                self._delivery_order.pop(oldest, None)
            return True

    async def take_expired(self, now: float, owner: str, lease: float, limit: int = 100) -> list[tuple[str, dict | None]]:
        taken: list[tuple[str, dict | None]] = []
        with self._lock:
            expired = sorted((until, delivery_id) for delivery_id, (_, until) in self._delivery_leases.items()
                             if until <= now)[:limit]
            for _, delivery_id in expired:
                self._delivery_leases[delivery_id] = (owner, now + lease)
                taken.append((delivery_id, decode_record(self._deliveries.get(delivery_id))))
        return taken

    async def deliveries(self) -> list[dict]:
        with self._lock:
            newest_first = sorted(self._delivery_order, key=self._delivery_order.__getitem__, reverse=True)
            found = [decode_record(self._deliveries.get(delivery_id)) for delivery_id in newest_first]
        return [record for record in found if record is not None]

    async def delivery(self, delivery_id: str) -> dict | None:
        with self._lock:
            return decode_record(self._deliveries.get(delivery_id))

    async def set_active_scenarios(self, names: list[str], restart_counts: bool = False) -> None:
        with self._lock:
            self._active_scenarios = list(names)
            if restart_counts:
                self._rule_counts = {}

    async def count_rule(self, rule_id: str, fires: Callable[[int], bool]) -> tuple[int, bool]:
        with self._lock:
            count = self._rule_counts.setdefault(rule_id, [0, 0])
            count[0] += 1
            applied = fires(count[0])
            count[1] += applied
            return count[0], applied

    async def rule_counts(self) -> dict[str, tuple[int, int]]:
        with self._lock:
            return {rule_id: (matched, applied) for rule_id, (matched, applied) in self._rule_counts.items()}

    async def load(self, tenants: Iterable[Tenant], accounts: Iterable[Account]) -> None:
        with self._lock:
            self._clear()
            self.know_tenants(tenants)
            for account in accounts:
                self._accounts[account.account_key] = account

    async def add_account(self, account: Account) -> None:
        with self._lock:
            if account.account_key in self._accounts:
                raise AccountAlreadyExists(account.account_key)
            self._accounts[account.account_key] = account
            self._changed()

    async def account(self, account_key: str) -> Account | None:
        return self._accounts.get(account_key)

    async def accounts(self, tenant: str | None = None) -> list[Account]:
        with self._lock:
            return [a for a in self._accounts.values() if tenant is None or a.tenant == tenant]

    async def save_credential(self, credential: Credential) -> bool:
        slot = (credential.tenant, credential.provider, credential.integration_type)
        with self._lock:
            replaced = slot in self._credentials
            self._credentials[slot] = credential
            self._changed()
            return replaced

    async def credential(self, tenant: str, provider: str, integration_type: str) -> Credential | None:
        return self._credentials.get((tenant, provider, integration_type))

    async def add_key_request(self, request: PixKeyRequest) -> None:
        account = request.account
        with self._lock:
            if request.key_value is not None:
                if request.key_value in self._dict_entries:
                    raise errors.KeyAlreadyExists(pix_key=request.key_value)
                holder_key = self._claimed_keys.get(request.key_value)
                if holder_key is not None:
                    holder = self._requests[holder_key]
                    if holder.status.unfinished:
                        raise errors.KeyCreationNotFinished(pix_key=request.key_value)
                    raise errors.KeyAlreadyExists(pix_key=request.key_value)
            if self._in_use(account.account_key) >= account.key_limit:
                raise errors.KeyLimitReached(account_key=account.account_key)
            self._requests[request.request_key] = copy.deepcopy(request)
            self._requests_by_account.setdefault(account.account_key, []).append(request.request_key)
            if request.key_value is not None:
                self._claimed_keys[request.key_value] = request.request_key
            self._changed()

    def _in_use(self, account_key: str) -> int:
        """Places taken in the account's limit: keys active or being created, and keys it claims."""
        return sum(
            1 for key in self._requests_by_account.get(account_key, ())
            if self._requests[key].claims_key
        ) + sum(
            1 for key in self._claims_by_account.get(account_key, ())
            if self._claims[key].role is ClaimRole.CLAIMANT and self._claims[key].status.unfinished
        )

    async def add_claim(self, claim: Claim, now: dt.datetime) -> None:
        with self._lock:
            if claim.key_value in self._open_claims:
                raise errors.KeyClaimNotFinished(pix_key=claim.key_value)
            if claim.role is ClaimRole.CLAIMANT:
                holder_key = self._claimed_keys.get(claim.key_value)
                if holder_key is not None:
                    if self._requests[holder_key].status.unfinished:
                        raise errors.KeyCreationNotFinished(pix_key=claim.key_value)
                    raise errors.KeyAlreadyExists(pix_key=claim.key_value)
                if claim.key_value not in self._dict_entries:
                    raise errors.ClaimKeyNotFound(pix_key=claim.key_value)
                if self._in_use(claim.account.account_key) >= claim.account.key_limit:
                    raise errors.KeyLimitReached(account_key=claim.account.account_key)
            else:
                holder_key = self._claimed_keys.get(claim.key_value)
                if holder_key is None or holder_key != claim.key_request_key:
                    raise errors.KeyNotFound(pix_key=claim.key_value)
                stored = self._requests[holder_key]
                working = copy.deepcopy(stored)
                claim.lock_donor_key(working, now)
                self._requests[holder_key] = working
                self._reindex(stored, working)
            self._claims[claim.claim_key] = copy.deepcopy(claim)
            self._claims_by_account.setdefault(claim.account.account_key, []).append(claim.claim_key)
            if claim.status.unfinished:
                self._open_claims[claim.key_value] = claim.claim_key
            self._changed()

    async def claim(self, claim_key: str) -> Claim | None:
        with self._lock:
            claim = self._claims.get(claim_key)
            return copy.deepcopy(claim) if claim is not None else None

    async def change_claim(self, claim_key: str, change: Callable[[Claim], T], now: dt.datetime) -> T:
        with self._lock:
            stored = self._claims.get(claim_key)
            if stored is None:
                raise errors.ClaimNotFound(claim_request_key=claim_key)
            working = copy.deepcopy(stored)
            result = change(working)
            if stored.status.unfinished and not working.status.unfinished:
                self._settle_keys(working, now)
                if self._open_claims.get(working.key_value) == claim_key:
                    del self._open_claims[working.key_value]
            self._claims[claim_key] = working
            self._changed()
            return result

    def _settle_keys(self, claim: Claim, now: dt.datetime) -> None:
        if claim.role is ClaimRole.DONATOR:
            stored = self._requests[claim.key_request_key]
            working = copy.deepcopy(stored)
            claim.settle_donor_key(working, now)
            self._requests[claim.key_request_key] = working
            self._reindex(stored, working)
            if claim.status is ClaimStatus.CONCLUDED:
                self._dict_entries[claim.key_value] = claim.resulting_entry(now)
        elif claim.status is ClaimStatus.CONCLUDED:
            self._dict_entries.pop(claim.key_value, None)
            request = claim.claimed_key(now)
            self._requests[request.request_key] = request
            self._requests_by_account.setdefault(claim.account.account_key, []).append(request.request_key)
            self._claimed_keys[claim.key_value] = request.request_key

    async def claims(self, account_key: str) -> list[Claim]:
        with self._lock:
            return [copy.deepcopy(self._claims[key]) for key in self._claims_by_account.get(account_key, ())]

    async def key_request(self, request_key: str) -> PixKeyRequest | None:
        with self._lock:
            request = self._requests.get(request_key)
            return copy.deepcopy(request) if request is not None else None

    async def change_key_request(self, request_key: str, change: Callable[[PixKeyRequest], T]) -> T:
        with self._lock:
            stored = self._requests.get(request_key)
            if stored is None:
                raise errors.KeyRequestNotFound(pix_key_request_key=request_key)
            # Work on a copy so that a rule raising half-way leaves the stored request untouched.
            working = copy.deepcopy(stored)
            result = change(working)
            self._requests[request_key] = working
            self._changed()
            self._reindex(stored, working)
            return result

    async def key_holder(self, key_value: str) -> PixKeyRequest | None:
        with self._lock:
            holder_key = self._claimed_keys.get(key_value)
            return copy.deepcopy(self._requests[holder_key]) if holder_key is not None else None

    async def change_key(self, key_value: str, change: Callable[[PixKeyRequest], T]) -> T:
        with self._lock:
            holder_key = self._claimed_keys.get(key_value)
            if holder_key is None:
                raise errors.KeyNotFound(pix_key=key_value)
            return await self.change_key_request(holder_key, change)

    async def add_dict_entry(self, entry: DictEntry) -> None:
        with self._lock:
            if entry.pix_key in self._dict_entries or entry.pix_key in self._claimed_keys:
                raise KeyAlreadyInDict(entry.pix_key)
            self._dict_entries[entry.pix_key] = entry

    async def dict_entry(self, key_value: str) -> DictEntry | None:
        return self._dict_entries.get(key_value)

    async def dict_entries(self) -> list[DictEntry]:
        with self._lock:
            return list(self._dict_entries.values())

    async def spend_tokens(self, account_key: str, new: Callable[[], TokenBucket],
                     spend: Callable[[TokenBucket], TokenBucket]) -> TokenBucket:
        with self._lock:
            bucket = self._buckets.get(account_key) or new()
            self._buckets[account_key] = bucket = spend(bucket)  # frozen: a raise changes nothing
            return bucket

    async def buckets(self) -> list[TokenBucket]:
        with self._lock:
            return list(self._buckets.values())

    def _reindex(self, before: PixKeyRequest, after: PixKeyRequest) -> None:
        if before.claims_key and before.key_value is not None and not after.claims_key:
            self._claimed_keys.pop(before.key_value, None)
        if after.claims_key and after.key_value is not None:
            self._claimed_keys[after.key_value] = after.request_key

    async def key_requests(self, account_key: str) -> list[PixKeyRequest]:
        with self._lock:
            return [
                copy.deepcopy(self._requests[key])
                for key in self._requests_by_account.get(account_key, ())
            ]

    async def record(self, kind: str, entry: dict) -> None:
        with self._lock:
            self._logs.setdefault(kind, deque(maxlen=LOG_SIZE)).append(entry)
            self._changed()

    async def records(self, kind: str) -> list[dict]:
        with self._lock:
            return list(self._logs.get(kind, ()))

    async def clock(self) -> ClockSetting:
        return self._clock

    async def set_clock(self, change: Callable[[ClockSetting], ClockSetting]) -> ClockSetting:
        with self._lock:
            self._clock = change(self._clock)
            self._changed()
            return self._clock

    async def schedule(self, job: DueJob) -> None:
        with self._lock:
            heapq.heappush(self._due, (job.due_at, next(self._due_order), job))
            self._changed()

    async def take_due(self, now: dt.datetime) -> list[DueJob]:
        taken = []
        with self._lock:
            while self._due and self._due[0][0] <= now:
                taken.append(heapq.heappop(self._due)[2])
            if taken:
                self._changed()
        return taken

    async def next_due(self) -> dt.datetime | None:
        due = self._due
        return due[0][0] if due else None

    async def due_jobs(self) -> list[DueJob]:
        with self._lock:
            return [job for _, _, job in sorted(self._due)]

    async def counts(self) -> dict[str, int]:
        with self._lock:
            return {
                "accounts": len(self._accounts),
                "keys": len(self._claimed_keys) + sum(
                    1 for r in self._requests.values() if r.claims_key and r.key_value is None),
                "key_requests": len(self._requests),
            }

    async def export(self) -> dict:
        with self._lock:
            return {
                "clock": codec.encode_clock(self._clock),
                "accounts": [codec.encode_account(a) for a in self._accounts.values()],
                "key_requests": [codec.encode_key_request(r) for r in self._requests.values()],
                "credentials": [codec.encode_credential(c) for c in self._credentials.values()],
                "outbox": [codec.encode_outbox_message(m) for m in self._logs.get("outbox", ())],
                "due_jobs": [codec.encode_due_job(job) for _, _, job in sorted(self._due)],
                "dict_entries": [codec.encode_dict_entry(e) for e in self._dict_entries.values()],
                "buckets": [codec.encode_bucket(b) for b in self._buckets.values()],
                "claims": [codec.encode_claim(c) for c in self._claims.values()],
            }

    async def replace(self, state: dict) -> None:
        # Everything is built first, outside the lock; the swap is a few assignments under it.
        accounts = {a["account_key"]: codec.decode_account(a) for a in state["accounts"]}
        requests: dict[str, PixKeyRequest] = {}
        by_account: dict[str, list[str]] = {}
        claimed: dict[str, str] = {}
        for data in state["key_requests"]:
            request = codec.decode_key_request(data, accounts)
            requests[request.request_key] = request
            by_account.setdefault(request.account.account_key, []).append(request.request_key)
            if request.claims_key and request.key_value is not None:
                claimed[request.key_value] = request.request_key
        credentials = {}
        for data in state["credentials"]:
            credential = codec.decode_credential(data)
            credentials[(credential.tenant, credential.provider, credential.integration_type)] = credential
        outbox = deque((codec.decode_outbox_message(m) for m in state["outbox"]), maxlen=LOG_SIZE)
        order = itertools.count()
        due = [(job.due_at, next(order), job) for job in map(codec.decode_due_job, state["due_jobs"])]
        heapq.heapify(due)
        clock = codec.decode_clock(state["clock"])
        dict_entries = {e["pix_key"]: codec.decode_dict_entry(e) for e in state.get("dict_entries", ())}
        buckets = {b["account_key"]: codec.decode_bucket(b) for b in state.get("buckets", ())}
        claims: dict[str, Claim] = {}
        claims_by_account: dict[str, list[str]] = {}
        open_claims: dict[str, str] = {}
        for data in state.get("claims", ()):
            claim = codec.decode_claim(data, accounts)
            claims[claim.claim_key] = claim
            claims_by_account.setdefault(claim.account.account_key, []).append(claim.claim_key)
            if claim.status.unfinished:
                open_claims[claim.key_value] = claim.claim_key
        with self._lock:
            self._claims, self._claims_by_account, self._open_claims = claims, claims_by_account, open_claims
            self._dict_entries, self._buckets = dict_entries, buckets
            self._accounts, self._credentials = accounts, credentials
            self._requests, self._requests_by_account, self._claimed_keys = requests, by_account, claimed
            self._logs = {"outbox": outbox}
            self._deliveries, self._delivery_order, self._delivery_leases = {}, {}, {}
            self._delivery_done = OrderedDict()  # the old state's deliveries go (as the dispatcher's do)
            self._clock, self._due, self._due_order = clock, due, order
            self._changed()

    # -- creating a namespace once: what the Redis store shares between processes (here, one) --

    async def setup_claim(self) -> bool:
        with self._lock:
            first, self._setup = self._setup is None, self._setup or "loading"
            return first

    async def setup_finished(self) -> None:
        self._setup = "ready"

    async def setup_state(self) -> str | None:
        return self._setup

    async def drop(self) -> None:
        with self._lock:
            self._clear()
            self.know_tenants(())
            self._setup = None
