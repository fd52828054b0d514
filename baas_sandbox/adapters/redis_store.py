"""``SandboxStore`` on Redis: one namespace's state shared by every process that serves it.

The in-memory store (``adapters/repository.py``) serialises its operations with a lock; here every
rule that must hold under concurrency is one atomic step in Redis instead, so several sandbox
processes (or several event-loop tasks of one process) can serve one namespace:

* rules that need no Python (one owner per key, one unfinished request per key, the per-account
  limit, one unfinished claim per key, DICT entries, a job taken once) are Lua scripts: Redis runs a
  script whole, nothing runs between its reads and its writes;
* steps that apply a Python callback (``change_key_request``, ``change_key``, ``change_claim``, a
  donor's ``add_claim``, ``spend_tokens``, ``set_clock``) are optimistic transactions: WATCH every
  key the step reads, decode, apply the callback to the copy, queue the writes in MULTI, EXEC; when
  another client changed a watched key in between, EXEC does nothing and the step starts again
  (``WATCH_ATTEMPTS`` at most). A callback may therefore run more than once: it must only change
  its argument (as it already must for the in-memory store, whose copy is dropped when it raises).

What is read is decoded from JSON each time: every read returns a copy. The encodings are
``adapters/state_codec.py``'s, the ones snapshots use.

Key layout (``P`` = ``sbx:{<namespace>}:``). Every key of a namespace carries the hash tag
``{<namespace>}``, so Redis Cluster keeps a namespace in one slot, where scripts and MULTI may touch
several keys. Scripts derive per-entity keys (``P req:<id>``...) from the prefix instead of receiving
each one in KEYS: they are in the slot of the keys they declare.

====================================  =======  =====================================================
key                                   type     holds
====================================  =======  =====================================================
``P setup``                           string   ``loading`` / ``ready``: who creates the namespace
``P seq``                             string   a counter: the order of due jobs and DICT entries
``P accounts``                        hash     account key -> account JSON
``P account_order``                   list     account keys, in the order they were added
``P req:<request key>``               string   a key request's JSON (one key each: WATCHed alone)
``P requests``                        list     request keys, oldest first
``P account_requests:<account key>``  list     the account's request keys, oldest first
``P holders``                         hash     key value -> the request that holds it
``P keyless``                         set      requests that hold a place but no value yet (random)
``P places``                          hash     account key -> places taken in its limit
``P indexed``                         set      accounts that have per-account lists (for a wipe)
``P creds``                           hash     [tenant, provider, type] -> credential JSON
``P cred_order``                      list     credential slots, in the order first saved
``P dict``                            hash     key value -> DICT entry JSON (another institution's)
``P dict_order``                      zset     key value -> ``seq`` when added
``P bucket:<account key>``            string   an anti-scan token bucket's JSON
``P buckets``                         list     account keys that have a bucket
``P claim:<claim key>``               string   a claim's JSON
``P claims``                          list     claim keys, oldest first
``P account_claims:<account key>``    list     the account's claim keys (both roles), oldest first
``P open_claims``                     hash     key value -> its unfinished claim
``P log:<kind>``                      list     a log's latest ``LOG_SIZE`` entries (JSON), oldest first
``P log_kinds``                       set      the logs that exist (for a wipe)
``P clock``                           string   the clock setting's JSON (absent: real time)
``P due``                             zset     ``<instant>|<seq>|[kind, subject]``, all of score 0:
                                               lexical order is due order, ties in scheduling order
``P scenarios``                       string   the active scenarios (JSON list; absent: never switched)
``P rule_counts``                     hash     ``<rule id>:matched`` / ``:applied`` -> counts (HINCRBY)
``P subscriptions``                   hash     webhook subscription id -> JSON, its secret sealed (AES-GCM)
``P subscriptions_version``           string   moves with every change of them (INCR): read by each request
``P deliveries``                      hash     webhook delivery id -> its record JSON (secret sealed)
``P delivery_order``                  zset     delivery id -> order kept (``delivery_seq``): newest first
``P delivery_seq``                    string   the deliveries' counter (INCR)
``P delivery_owners``                 hash     pending delivery id -> the process holding its lease
``P delivery_leases``                 zset     pending delivery id -> lease expiry (epoch seconds)
``P delivery_done``                   zset     finished delivery id -> order (the latest kept)
``P journal``                         list     the latest requests, ``<id>|<JSON>`` (adapters/redis_journal.py)
``P journal_ids``                     string   the journal's counter (INCR): ids unique across processes
``P journal_bytes``                   string   the bytes the journal holds (capped: redis_journal.py)

Besides the namespaces' own keys, two sorted sets list them (no hash tag: each is one key, touched
alone): ``sbx:namespaces`` (name -> when a request last used it, epoch seconds; what the idle sweep
and ``GET /__admin/namespaces`` read, and what ``--max-namespaces`` counts) and
``sbx:namespaces:created`` (name -> when it was made).
====================================  =======  =====================================================

Credentials keep their sealed (AES-GCM encrypted) key in base64 and their metadata; never
``provider_data`` (a partner may put secrets there, and nothing reads it back): no plaintext secret
is written to Redis.

``revision`` counts this process's writes (a sync property cannot ask Redis): what a periodic save
in this process compares. The fixtures' tenants, the request journal and the scenario switches stay
in process memory, like the in-memory store's.

A Redis that cannot be reached, does not answer in time or is still loading raises
``repository.StoreUnavailable`` from every operation (``_outages_unavailable``).

A store takes a client (``connect``) or a ``PerLoopClient``: a redis.asyncio connection belongs to
the event loop that opened it, so a store prepared on one loop and served on another needs a client
per loop. Scripts (``LuaScript``) are therefore bound to no client: each runs on the client of the
moment.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime as dt
import functools
import hashlib
import inspect
import json
import random
import re
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.exceptions import NoScriptError, WatchError

from baas_sandbox.adapters import state_codec as codec
from baas_sandbox.adapters.repository import (
    DELIVERY_LOG_SIZE,
    KEEP_MODES,
    LOG_SIZE,
    AccountAlreadyExists,
    FixtureTenants,
    KeyAlreadyInDict,
    SettleView,
    StoreUnavailable,
    decode_record,
)
from baas_sandbox.clock import REAL_TIME, ClockSetting
from baas_sandbox.domain import errors
from baas_sandbox.domain.antiscan import TokenBucket
from baas_sandbox.domain.claims import Claim, ClaimRole, ClaimStatus
from baas_sandbox.domain.due_work import DueJob
from baas_sandbox.domain.model import Account, Credential, DictEntry, PixKeyRequest, Tenant
from baas_sandbox.adapters.redis_journal import RedisJournal
from baas_sandbox.http.journal import MemoryBudget

T = TypeVar("T")

#: What a namespace may be called: the characters that need no escaping in a key or a SCAN pattern.
NAMESPACE_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")

#: Tries of an optimistic transaction before giving up (``StoreUnavailable``: the caller may retry).
#: Each lost try means another client's step on the same keys succeeded, so 64 racers on one key
#: all finish well within it.
WATCH_ATTEMPTS = 100

#: The registry of namespaces (see the module's docstring): last used, and made, epoch seconds.
REGISTRY = "sbx:namespaces"
CREATED = "sbx:namespaces:created"


async def namespaces_used(client: aioredis.Redis, before: float | None = None) -> list[tuple[str, float, float]]:
    """The registered namespaces, as (name, last used, made), oldest used first; ``before``: only
    those last used before then (the idle ones). An outage is ``StoreUnavailable``."""
    try:
        used = await client.zrangebyscore(REGISTRY, "-inf", "+inf" if before is None else f"({before}",
                                          withscores=True)
        made = await client.zmscore(CREATED, [name for name, _ in used]) if used else []
    except OUTAGES as error:
        raise StoreUnavailable(f"redis: {error}") from error
    return [(name, at, created or at) for (name, at), created in zip(used, made, strict=True)]


async def namespace_count(client: aioredis.Redis) -> int:
    try:
        return await client.zcard(REGISTRY)
    except OUTAGES as error:
        raise StoreUnavailable(f"redis: {error}") from error


async def is_registered(client: aioredis.Redis, namespace: str) -> bool:
    try:
        return await client.zscore(REGISTRY, namespace) is not None
    except OUTAGES as error:
        raise StoreUnavailable(f"redis: {error}") from error


#: Milliseconds a namespace's maker has to store its fixtures (it takes a few) before another
#: process may take over its claim.
SETUP_CLAIM_TTL_MS = 15_000

#: Redis failures that mean "not reachable now" (``BusyLoadingError`` is a ``ConnectionError``).
OUTAGES = (RedisConnectionError, RedisTimeoutError)


def connect(url: str, *, timeout: float = 2.0, max_connections: int = 64) -> aioredis.Redis:
    """A client for ``url`` (``redis://host:port/db``) whose every wait is bounded by ``timeout``.

    A command waits at most ``timeout`` for a free connection of the pool (``max_connections``
    at most: a burst queues instead of opening sockets without end), at most ``timeout`` to
    connect, and at most ``timeout`` for its answer: a hung Redis (accepting, never answering)
    fails a caller after ``timeout``, a stopped one at once (connection refused), and never later
    than about 3 × ``timeout`` when all three waits add up. Nothing is retried by the client
    (``Retry(NoBackoff(), 0)``): a retried write whose answer was lost could apply twice; the
    store's steps are whole or nothing, and the caller decides. A connection found dead when taken
    from the pool is replaced (redis-py checks it), so a restarted Redis is used again by the same
    client. Replies are decoded (UTF-8): the store keeps JSON text only. hiredis parses replies
    when it is installed (``redis[hiredis]``; redis-py picks it).
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=timeout,
        socket_connect_timeout=timeout, socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0), decode_responses=True,
    )
    return aioredis.Redis(connection_pool=pool)


class PerLoopClient:
    """A ``connect`` client for each event loop that uses it, made on first use.

    A redis.asyncio connection belongs to the event loop it was opened on, and dies with it. A
    process that prepares a namespace on one loop (``asyncio.run`` before the server starts, as the
    app makes its default namespace) and serves it on another would otherwise hand the server's
    loop connections of a closed one. Each loop gets its own pool (``max_connections`` each).
    """

    def __init__(self, url: str, **options: Any) -> None:
        self._url, self._options = url, options
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
            weakref.WeakKeyDictionary())

    def get(self) -> aioredis.Redis:
        """The running loop's client."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = connect(self._url, **self._options)
        return client

    async def aclose(self) -> None:
        """Close the running loop's client (the others close with their loops)."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()


def _outages_unavailable(method: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """The one place where Redis's outages become ``StoreUnavailable`` (503 for the caller)."""

    @functools.wraps(method)
    async def guarded(*args: Any, **kwargs: Any) -> T:
        try:
            return await method(*args, **kwargs)
        except OUTAGES as error:
            raise StoreUnavailable(f"redis: {error}") from error

    return guarded


def _guard_operations(cls: type) -> type:
    """Every public coroutine of ``cls`` through ``_outages_unavailable``: none can be forgotten."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.iscoroutinefunction(member):
            setattr(cls, name, _outages_unavailable(member))
    return cls


class _Again(Exception):
    """What an optimistic step read changed under it in a way WATCH does not see (the holder of a
    key moved between two reads): the step starts again."""


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


class LuaScript:
    """A Lua script run by its SHA1 (EVALSHA), sent again when the server does not know it (a
    restarted Redis). Not bound to a client, unlike redis-py's ``register_script``: each call runs
    on the client the store uses at that moment (``PerLoopClient``), or is queued in a pipeline,
    whose ``execute`` loads the scripts it queued (``sha`` and ``script`` are what it reads)."""

    def __init__(self, text: str) -> None:
        self.script = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()

    async def run(self, client: aioredis.Redis | Pipeline, keys: list[str], args: list[Any]) -> Any:
        if isinstance(client, Pipeline):
            client.scripts.add(self)
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await client.script_load(self.script)
            return await client.evalsha(self.sha, len(keys), *keys, *args)


# -- Lua scripts -------------------------------------------------------------------------------------
# Each runs whole inside Redis: its checks and its writes are one step. ARGV[1] is always the
# namespace's key prefix (``sbx:{ns}:``), from which per-entity keys are built.

#: Why a key value cannot be taken because a sandbox request holds it: 'unfinished' (being created),
#: 'exists' (active), or nil (free). Prepended to the scripts that check it.
_HOLDER_PROBLEM = """
local prefix = ARGV[1]
local function holder_problem(key_value)
  local holder = redis.call('HGET', prefix .. 'holders', key_value)
  if not holder then return nil end
  local data = redis.call('GET', prefix .. 'req:' .. holder)
  if not data then return 'exists' end
  local status = cjson.decode(data)['request_status']
  if status == 'pending_validation' or status == 'pending' then return 'unfinished' end
  return 'exists'
end
"""

#: add_key_request: the key free (no DICT entry, no holder), a place in the account's limit; then
#: the request stored and indexed. KEYS: holders, dict, places, req:<id>, requests,
#: account_requests:<account>, keyless, indexed. ARGV: prefix, has value ('1'/'0'), key value,
#: account key, limit, request key, request JSON, holds a place ('1'/'0').
ADD_KEY_REQUEST = LuaScript(_HOLDER_PROBLEM + """
local has_value, key_value, account, request_key = ARGV[2] == '1', ARGV[3], ARGV[4], ARGV[6]
if has_value then
  if redis.call('HEXISTS', KEYS[2], key_value) == 1 then return 'exists' end
  local problem = holder_problem(key_value)
  if problem then return problem end
end
if tonumber(redis.call('HGET', KEYS[3], account) or '0') >= tonumber(ARGV[5]) then return 'limit' end
redis.call('SET', KEYS[4], ARGV[7])
redis.call('RPUSH', KEYS[5], request_key)
redis.call('RPUSH', KEYS[6], request_key)
redis.call('SADD', KEYS[8], account)
if has_value then
  redis.call('HSET', KEYS[1], key_value, request_key)
elseif ARGV[8] == '1' then
  redis.call('SADD', KEYS[7], request_key)
end
if ARGV[8] == '1' then redis.call('HINCRBY', KEYS[3], account, 1) end
return 'ok'
""")

#: add_claim as claimant: no unfinished claim on the key, no sandbox holder, the key in DICT (at
#: the other institution), a place in the account's limit; then the claim stored, and while
#: unfinished it holds the key's claim and a place. KEYS: open_claims, dict, places, claim:<id>,
#: claims, account_claims:<account>, indexed. ARGV: prefix, key value, account key, limit, claim
#: key, claim JSON, unfinished ('1'/'0').
ADD_CLAIMANT_CLAIM = LuaScript(_HOLDER_PROBLEM + """
local key_value, account, claim_key = ARGV[2], ARGV[3], ARGV[5]
if redis.call('HEXISTS', KEYS[1], key_value) == 1 then return 'claim_unfinished' end
local problem = holder_problem(key_value)
if problem then return problem end
if redis.call('HEXISTS', KEYS[2], key_value) == 0 then return 'no_entry' end
if tonumber(redis.call('HGET', KEYS[3], account) or '0') >= tonumber(ARGV[4]) then return 'limit' end
redis.call('SET', KEYS[4], ARGV[6])
redis.call('RPUSH', KEYS[5], claim_key)
redis.call('RPUSH', KEYS[6], claim_key)
redis.call('SADD', KEYS[7], account)
if ARGV[7] == '1' then
  redis.call('HSET', KEYS[1], key_value, claim_key)
  redis.call('HINCRBY', KEYS[3], account, 1)
end
return 'ok'
""")

#: add_dict_entry: the key held by nobody (no entry, no sandbox holder). KEYS: dict, holders,
#: dict_order, seq. ARGV: prefix, key value, entry JSON.
ADD_DICT_ENTRY = LuaScript("""
if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 1 or redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[3], redis.call('INCR', KEYS[4]), ARGV[2])
return 1
""")

#: add_account: a key taken once. KEYS: accounts, account_order. ARGV: prefix, account key, JSON.
ADD_ACCOUNT = LuaScript("""
if redis.call('HSETNX', KEYS[1], ARGV[2], ARGV[3]) == 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[2])
return 1
""")

#: save_credential: 1 when the slot was replaced (it keeps its place in the order). KEYS: creds,
#: cred_order. ARGV: prefix, slot, JSON.
SAVE_CREDENTIAL = LuaScript("""
local replaced = redis.call('HEXISTS', KEYS[1], ARGV[2])
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
if replaced == 0 then redis.call('RPUSH', KEYS[2], ARGV[2]) end
return replaced
""")

#: schedule: the job's member gets the next ``seq``, so equal due times keep scheduling order and
#: two equal jobs are two members. KEYS: due, seq. ARGV: prefix, due instant, [kind, subject] JSON.
SCHEDULE = LuaScript("""
local seq = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], 0, ARGV[2] .. '|' .. string.format('%020d', seq) .. '|' .. ARGV[3])
""")

#: keep_delivery: a delivery's record kept pending, leased to ARGV[4] until ARGV[5], if ``mode``
#: (ARGV[6]) allows it (``repository.KEEP_MODES``). KEYS: deliveries, delivery_owners,
#: delivery_leases, delivery_order, delivery_seq, delivery_done. ARGV: prefix, id, record JSON,
#: owner, until, mode.
KEEP_DELIVERY = LuaScript("""
local id, owner, mode = ARGV[2], ARGV[4], ARGV[6]
if mode == 'new' then
  if redis.call('HEXISTS', KEYS[1], id) == 1 then return 0 end
  redis.call('ZADD', KEYS[4], redis.call('INCR', KEYS[5]), id)
elseif mode == 'mine' then
  if redis.call('HGET', KEYS[2], id) ~= owner then return 0 end
else
  if redis.call('HEXISTS', KEYS[1], id) == 0 then return 0 end
  redis.call('ZREM', KEYS[6], id)
end
redis.call('HSET', KEYS[1], id, ARGV[3])
redis.call('HSET', KEYS[2], id, owner)
redis.call('ZADD', KEYS[3], ARGV[5], id)
return 1
""")

#: renew_deliveries: the leases ARGV[2] still holds moved to ARGV[3]; the ids it does not hold.
#: KEYS: delivery_owners, delivery_leases. ARGV: prefix, owner, until, id...
RENEW_DELIVERIES = LuaScript("""
local lost = {}
for i = 4, #ARGV do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[2] then
    redis.call('ZADD', KEYS[2], ARGV[3], ARGV[i])
  else
    table.insert(lost, ARGV[i])
  end
end
return lost
""")

#: finish_delivery: if ARGV[3] holds the lease, the record replaced (unless ARGV[4] is empty), the
#: lease gone, the delivery among the finished ones, the oldest past ARGV[5] forgotten.
#: KEYS: deliveries, delivery_owners, delivery_leases, delivery_order, delivery_done.
#: ARGV: prefix, id, owner, record JSON or '', finished kept.
FINISH_DELIVERY = LuaScript("""
local id = ARGV[2]
if redis.call('HGET', KEYS[2], id) ~= ARGV[3] then return 0 end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], id, ARGV[4]) end
redis.call('HDEL', KEYS[2], id)
redis.call('ZREM', KEYS[3], id)
redis.call('ZADD', KEYS[5], redis.call('ZSCORE', KEYS[4], id) or 0, id)
local extra = redis.call('ZCARD', KEYS[5]) - tonumber(ARGV[5])
if extra > 0 then
  for _, old in ipairs(redis.call('ZRANGE', KEYS[5], 0, extra - 1)) do
    redis.call('HDEL', KEYS[1], old)
    redis.call('ZREM', KEYS[4], old)
  end
  redis.call('ZREMRANGEBYRANK', KEYS[5], 0, extra - 1)
end
return 1
""")

#: take_expired: the pending deliveries whose lease ended by ARGV[2] leased to ARGV[3] until ARGV[4]
#: (ARGV[5] at most), in the same step: each is taken once. {id, record or '', ...}.
#: KEYS: deliveries, delivery_owners, delivery_leases. ARGV: prefix, now, owner, until, limit.
TAKE_EXPIRED = LuaScript("""
local taken = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[5]))) do
  redis.call('ZADD', KEYS[3], ARGV[4], id)
  redis.call('HSET', KEYS[2], id, ARGV[3])
  table.insert(taken, id)
  table.insert(taken, redis.call('HGET', KEYS[1], id) or '')
end
return taken
""")

#: take_due: the jobs due (members below the bound), removed in the same step, so concurrent
#: takers each get a job once. KEYS: due. ARGV: prefix, exclusive upper bound ('(<now>}').
TAKE_DUE = LuaScript("""
local taken = redis.call('ZRANGEBYLEX', KEYS[1], '-', ARGV[2])
if #taken > 0 then redis.call('ZREMRANGEBYLEX', KEYS[1], '-', ARGV[2]) end
return taken
""")

#: A key request with its account (decoding needs both), by request key or by key value held:
#: {request JSON, account JSON} or nil. KEYS: accounts. ARGV: prefix, 'key'|'holder', id.
READ_REQUEST = LuaScript("""
local prefix, request_key = ARGV[1], ARGV[3]
if ARGV[2] == 'holder' then
  request_key = redis.call('HGET', prefix .. 'holders', ARGV[3])
  if not request_key then return nil end
end
local data = redis.call('GET', prefix .. 'req:' .. request_key)
if not data then return nil end
return {data, redis.call('HGET', KEYS[1], cjson.decode(data)['account_key']) or ''}
""")

#: A claim with its account: {claim JSON, account JSON} or nil. KEYS: accounts. ARGV: prefix, id.
READ_CLAIM = LuaScript("""
local data = redis.call('GET', ARGV[1] .. 'claim:' .. ARGV[2])
if not data then return nil end
return {data, redis.call('HGET', KEYS[1], cjson.decode(data)['account_key']) or ''}
""")

#: An account's requests or claims, oldest first, after the account's JSON ('' when unknown):
#: {account JSON, item JSON...}. KEYS: accounts. ARGV: prefix, list prefix, item prefix, account.
READ_ACCOUNT_ITEMS = LuaScript("""
local prefix = ARGV[1]
local items = {redis.call('HGET', KEYS[1], ARGV[4]) or ''}
for _, id in ipairs(redis.call('LRANGE', prefix .. ARGV[2] .. ARGV[4], 0, -1)) do
  local data = redis.call('GET', prefix .. ARGV[3] .. id)
  if data then items[#items + 1] = data end
end
return items
""")

#: The items a list names, in its order. ARGV: prefix, list name, item prefix. KEYS: the list.
READ_EACH = LuaScript("""
local items = {}
for _, id in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  local data = redis.call('GET', ARGV[1] .. ARGV[3] .. id)
  if data then items[#items + 1] = data end
end
return items
""")

#: export: everything, read in one step (a consistent state). ARGV: prefix. KEYS: accounts.
EXPORT = LuaScript("""
local prefix = ARGV[1]
local function each(list, item_prefix)
  local items = {}
  for _, id in ipairs(redis.call('LRANGE', prefix .. list, 0, -1)) do
    local data = redis.call('GET', prefix .. item_prefix .. id)
    if data then items[#items + 1] = data end
  end
  return items
end
local function from_hash(order, hash, command)
  local items = {}
  local ids = command == 'ZRANGE' and redis.call('ZRANGE', prefix .. order, 0, -1)
    or redis.call('LRANGE', prefix .. order, 0, -1)
  for _, id in ipairs(ids) do
    local data = redis.call('HGET', prefix .. hash, id)
    if data then items[#items + 1] = data end
  end
  return items
end
return {
  {redis.call('GET', prefix .. 'clock') or ''},
  from_hash('account_order', 'accounts', 'LRANGE'),
  each('requests', 'req:'),
  from_hash('cred_order', 'creds', 'LRANGE'),
  redis.call('LRANGE', prefix .. 'log:outbox', 0, -1),
  redis.call('ZRANGE', prefix .. 'due', 0, -1),
  from_hash('dict_order', 'dict', 'ZRANGE'),
  each('buckets', 'bucket:'),
  each('claims', 'claim:'),
}
""")

#: The namespace's state deleted (not ``setup``, nor ``seq``, which must never go back: due jobs
#: and DICT entries of a replaced state take numbers after it). Every key is found from the
#: indexes, not by scanning the whole keyspace (a shared Redis holds many namespaces). Run inside
#: the MULTI that writes the new state, so readers see the old state or the new one.
#: KEYS: requests. ARGV: prefix.
WIPE = LuaScript("""
local prefix = ARGV[1]
local function drop_each(list, item_prefixes, command)
  local ids = command == 'SMEMBERS' and redis.call('SMEMBERS', prefix .. list)
    or redis.call('LRANGE', prefix .. list, 0, -1)
  for _, id in ipairs(ids) do
    for _, each_prefix in ipairs(item_prefixes) do redis.call('UNLINK', prefix .. each_prefix .. id) end
  end
end
drop_each('requests', {'req:'}, 'LRANGE')
drop_each('claims', {'claim:'}, 'LRANGE')
drop_each('buckets', {'bucket:'}, 'LRANGE')
drop_each('indexed', {'account_requests:', 'account_claims:'}, 'SMEMBERS')
drop_each('log_kinds', {'log:'}, 'SMEMBERS')
for _, name in ipairs({'accounts', 'account_order', 'requests', 'holders', 'keyless', 'places',
                       'indexed', 'creds', 'cred_order', 'dict', 'dict_order', 'buckets', 'claims',
                       'open_claims', 'log_kinds', 'clock', 'due', 'scenarios', 'rule_counts',
                       'subscriptions', 'deliveries', 'delivery_order', 'delivery_owners',
                       'delivery_leases', 'delivery_done', 'delivery_seq'}) do
  redis.call('UNLINK', prefix .. name)
end
for _, name in ipairs({'subscriptions_version'}) do  -- moves on: a process holding the old ones sees it
  redis.call('INCR', prefix .. name)
  redis.call('UNLINK', prefix .. name)
end
""")


class _Keys:
    """The names of a namespace's keys (the layout in the module's docstring; the scripts build
    the per-entity ones from ``prefix`` the same way)."""

    def __init__(self, namespace: str) -> None:
        if not NAMESPACE_PATTERN.fullmatch(namespace):
            raise ValueError(f"a namespace is 1-64 of [A-Za-z0-9_.-], not {namespace!r}")
        self.prefix = p = f"sbx:{{{namespace}}}:"
        self.setup, self.seq = p + "setup", p + "seq"
        self.accounts, self.account_order = p + "accounts", p + "account_order"
        self.requests, self.holders, self.keyless = p + "requests", p + "holders", p + "keyless"
        self.places, self.indexed = p + "places", p + "indexed"
        self.creds, self.cred_order = p + "creds", p + "cred_order"
        self.dict, self.dict_order = p + "dict", p + "dict_order"
        self.buckets = p + "buckets"
        self.claims, self.open_claims = p + "claims", p + "open_claims"
        self.log_kinds, self.clock, self.due = p + "log_kinds", p + "clock", p + "due"
        self.scenarios, self.rule_counts = p + "scenarios", p + "rule_counts"
        self.subscriptions, self.subscriptions_version = p + "subscriptions", p + "subscriptions_version"
        self.journal, self.journal_ids = p + "journal", p + "journal_ids"  # a reset keeps them
        self.deliveries, self.delivery_order, self.delivery_seq = p + "deliveries", p + "delivery_order", p + "delivery_seq"
        self.delivery_owners, self.delivery_leases = p + "delivery_owners", p + "delivery_leases"
        self.delivery_done = p + "delivery_done"

    def request(self, request_key: str) -> str:
        return f"{self.prefix}req:{request_key}"

    def account_requests(self, account_key: str) -> str:
        return f"{self.prefix}account_requests:{account_key}"

    def claim(self, claim_key: str) -> str:
        return f"{self.prefix}claim:{claim_key}"

    def account_claims(self, account_key: str) -> str:
        return f"{self.prefix}account_claims:{account_key}"

    def bucket(self, account_key: str) -> str:
        return f"{self.prefix}bucket:{account_key}"

    def log(self, kind: str) -> str:
        return f"{self.prefix}log:{kind}"


# -- encodings that only the Redis store needs --------------------------------------------------------


#: A stored request's fields left out while empty (null, [], 0): a hundred bytes of most keys' JSON,
#: which then fits a smaller size class of Redis's allocator (1,134 -> about 1,010 bytes per stored
#: key, bench/RESULTS.md). Read back with their empty values (``_request_data``).
_EMPTY_REQUEST_FIELDS: dict = {"pix_key": None, "request_failure_reason": None, "verification_code": None,
                               "accepted_code": None, "cid": None, "history": [], "wrong_codes": 0,
                               "codes_resent": 0, "validation_due": None, "claim_lock": None}


def _request_json(request: PixKeyRequest) -> str:
    data = codec.encode_key_request(request)
    return _dumps({name: value for name, value in data.items()
                   if name not in _EMPTY_REQUEST_FIELDS or value != _EMPTY_REQUEST_FIELDS[name]})


def _request_data(text: str) -> dict:
    """A stored request's JSON with every field (what ``codec.encode_key_request`` gives)."""
    return {**_EMPTY_REQUEST_FIELDS, **json.loads(text)}


def _credential_slot(tenant: str, provider: str, integration_type: str) -> str:
    return _dumps([tenant, provider, integration_type])


def _encode_credential(credential: Credential) -> str:
    """Metadata and the sealed key (ciphertext, base64): never ``provider_data``."""
    sealed = credential.sealed_key
    return _dumps(codec.encode_credential(credential)
                  | {"sealed_key": None if sealed is None else base64.b64encode(sealed).decode()})


def _decode_credential(text: str) -> Credential:
    data = json.loads(text)
    sealed = data.get("sealed_key")
    return Credential(tenant=data["tenant"], provider=data["provider"], integration_type=data["type"],
                      sealed_key=None if sealed is None else base64.b64decode(sealed),
                      proxy_value=data["proxy_value"], provider_data={}, saved_at=data["saved_at"])


def _due_member(job: DueJob, seq: int) -> str:
    """What ``SCHEDULE`` stores: the due instant first (fixed width, UTC), so lexical order is due order."""
    return f"{codec.encode_instant(job.due_at)}|{seq:020d}|{_dumps([job.kind, job.subject])}"


def _decode_due(member: str) -> DueJob:
    instant, _seq, job = member.split("|", 2)
    kind, subject = json.loads(job)
    return DueJob(codec.decode_instant(instant), kind, subject)


def _holds_place(request: PixKeyRequest) -> int:
    return 1 if request.claims_key else 0


@_guard_operations
class RedisStore(FixtureTenants):
    """``SandboxStore`` for one namespace on a ``redis.asyncio.Redis`` client (``connect``).

    ``journal_budget``: the bytes of request bodies the journals of every namespace may hold
    together (the journal stays in this process).
    """

    def __init__(self, client: aioredis.Redis | PerLoopClient, namespace: str, *, journal_size: int = 1000,
                 journal_budget: MemoryBudget | None = None) -> None:
        self._clients = client
        self.namespace = namespace
        self._keys = keys = _Keys(namespace)
        # the journal of every process serving the namespace (journal_budget: the memory store's)
        self.journal = RedisJournal(lambda: self._client, keys.journal, keys.journal_ids, journal_size)
        self.know_tenants(())  # the fixtures' (FixtureTenants): known at load, or when joining
        self._revision = 0
        self._prefix = keys.prefix

    @property
    def _client(self) -> aioredis.Redis:
        clients = self._clients
        return clients.get() if isinstance(clients, PerLoopClient) else clients

    # -- revision, setup of the namespace -------------------------------------------------------------

    @property
    def revision(self) -> int:
        """This process's writes to the namespace, counted (another process's are not seen)."""
        return self._revision

    def _changed(self) -> None:
        self._revision += 1

    async def ping(self) -> None:
        await self._client.ping()

    # -- what each request reads first; the scenarios' switches and counts ----------------------------

    async def settle_view(self) -> SettleView:
        keys = self._keys
        async with self._client.pipeline(transaction=False) as pipe:  # one round trip, read only
            clock, first, active, version, setup = await (
                pipe.get(keys.clock).zrange(keys.due, 0, 0).get(keys.scenarios)
                .get(keys.subscriptions_version).get(keys.setup).execute())
        return SettleView(REAL_TIME if clock is None else codec.decode_clock(json.loads(clock)),
                          _decode_due(first[0]).due_at if first else None,
                          None if active is None else json.loads(active), int(version or 0),
                          present=setup is not None)

    async def save_subscription(self, subscription: dict) -> None:
        keys = self._keys
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hset(keys.subscriptions, subscription["id"], _dumps(subscription))
            await pipe.incr(keys.subscriptions_version).execute()
        self._changed()

    async def remove_subscription(self, subscription_id: str) -> bool:
        keys = self._keys
        async with self._client.pipeline(transaction=True) as pipe:
            removed, _ = await pipe.hdel(keys.subscriptions, subscription_id).incr(keys.subscriptions_version).execute()
        self._changed()
        return bool(removed)

    async def subscriptions(self) -> tuple[int, list[dict]]:
        keys = self._keys
        async with self._client.pipeline(transaction=True) as pipe:
            version, stored = await pipe.get(keys.subscriptions_version).hgetall(keys.subscriptions).execute()
        found = [json.loads(text) for text in stored.values()]
        return int(version or 0), sorted(found, key=lambda s: (s["created_at"], s["id"]))

    # -- webhook deliveries: records, their leases, the finished ones ----------------------------------

    async def keep_delivery(self, record: dict, owner: str, until: float, mode: str) -> bool:
        if mode not in KEEP_MODES:
            raise ValueError(f"mode is one of {KEEP_MODES}, not {mode!r}")
        keys = self._keys
        kept = await KEEP_DELIVERY.run(
            self._client, keys=[keys.deliveries, keys.delivery_owners, keys.delivery_leases, keys.delivery_order,
                                keys.delivery_seq, keys.delivery_done],
            args=[self._prefix, record["delivery"]["id"], _dumps(record), owner, repr(float(until)), mode])
        return bool(kept)

    async def renew_deliveries(self, delivery_ids: list[str], owner: str, until: float) -> list[str]:
        if not delivery_ids:
            return []
        keys = self._keys
        return list(await RENEW_DELIVERIES.run(self._client, keys=[keys.delivery_owners, keys.delivery_leases],
                                               args=[self._prefix, owner, repr(float(until)), *delivery_ids]))

    async def finish_delivery(self, delivery_id: str, record: dict | None, owner: str) -> bool:
        keys = self._keys
        finished = await FINISH_DELIVERY.run(
            self._client, keys=[keys.deliveries, keys.delivery_owners, keys.delivery_leases, keys.delivery_order,
                                keys.delivery_done],
            args=[self._prefix, delivery_id, owner, "" if record is None else _dumps(record), DELIVERY_LOG_SIZE])
        return bool(finished)

    async def take_expired(self, now: float, owner: str, lease: float, limit: int = 100) -> list[tuple[str, dict | None]]:
        keys = self._keys
        taken = await TAKE_EXPIRED.run(
            self._client, keys=[keys.deliveries, keys.delivery_owners, keys.delivery_leases],
            args=[self._prefix, repr(float(now)), owner, repr(float(now + lease)), int(limit)])
        return [(taken[i], decode_record(taken[i + 1] or None)) for i in range(0, len(taken), 2)]

    async def deliveries(self) -> list[dict]:
        keys = self._keys
        async with self._client.pipeline(transaction=True) as pipe:  # one step: the order and the records
            order, records = await pipe.zrevrange(keys.delivery_order, 0, -1).hgetall(keys.deliveries).execute()
        found = [decode_record(records.get(delivery_id)) for delivery_id in order]
        return [record for record in found if record is not None]

    async def delivery(self, delivery_id: str) -> dict | None:
        return decode_record(await self._client.hget(self._keys.deliveries, delivery_id))

    async def set_active_scenarios(self, names: list[str], restart_counts: bool = False) -> None:
        keys = self._keys
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.set(keys.scenarios, _dumps(list(names)))
            if restart_counts:
                pipe.unlink(keys.rule_counts)
            await pipe.execute()
        self._changed()

    async def count_rule(self, rule_id: str, fires: Callable[[int], bool]) -> tuple[int, bool]:
        # HINCRBY is atomic: each racing caller gets its own n, so "first: N" fires for exactly N of
        # them; whether the n-th fires depends on n only (or on this process's random source).
        matched = await self._client.hincrby(self._keys.rule_counts, rule_id + ":matched", 1)
        applied = fires(matched)
        if applied:
            await self._client.hincrby(self._keys.rule_counts, rule_id + ":applied", 1)
        return matched, applied

    async def rule_counts(self) -> dict[str, tuple[int, int]]:
        counted = await self._client.hgetall(self._keys.rule_counts)
        rules = {field.rpartition(":")[0] for field in counted}
        return {rule: (int(counted.get(rule + ":matched", 0)), int(counted.get(rule + ":applied", 0)))
                for rule in rules}

    async def setup_claim(self) -> bool:
        """True for the one caller that must load (and seed) the namespace: SET NX of ``setup``.
        The claim expires (``SETUP_CLAIM_TTL``) unless finished: a maker killed half-way does not
        leave the namespace "loading" for ever; the next first request makes it again."""
        return bool(await self._client.set(self._keys.setup, "loading", nx=True, px=SETUP_CLAIM_TTL_MS))

    async def setup_finished(self) -> None:
        """The namespace is loaded: those that waited for it may use it; it is registered."""
        now = time.time()
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.set(self._keys.setup, "ready").zadd(REGISTRY, {self.namespace: now})
            await pipe.zadd(CREATED, {self.namespace: now}, nx=True).execute()

    async def touch(self, at: float) -> None:
        """A request used the namespace at ``at`` (epoch seconds): the idle sweep leaves it."""
        await self._client.zadd(REGISTRY, {self.namespace: at}, xx=True)

    async def setup_state(self) -> str | None:
        """``loading`` (claimed, not finished), ``ready``, or None (nobody created it)."""
        return await self._client.get(self._keys.setup)

    async def drop(self) -> None:
        """Delete every key of the namespace, ``setup`` and its journal included, and its entry in the
        registry: the state's keys through their indexes (``WIPE``), then the namespace's own; no
        SCAN of the whole keyspace (a sweep of idle namespaces runs it often, on a big Redis)."""
        keys = self._keys
        async with self._client.pipeline(transaction=True) as pipe:
            await WIPE.run(pipe, keys=[keys.requests], args=[self._prefix])
            pipe.unlink(keys.setup, keys.seq, keys.journal, keys.journal_ids, keys.journal + "_bytes",
                        keys.subscriptions_version)
            await pipe.zrem(REGISTRY, self.namespace).zrem(CREATED, self.namespace).execute()
        self._changed()

    # -- loading ------------------------------------------------------------------------------------------

    async def load(self, tenants: Iterable[Tenant], accounts: Iterable[Account]) -> None:
        self.know_tenants(tenants)
        by_key = {account.account_key: account for account in accounts}
        async with self._client.pipeline(transaction=True) as pipe:
            await WIPE.run(pipe, keys=[self._keys.requests], args=[self._prefix])
            self._queue_accounts(pipe, by_key.values())
            await pipe.execute()
        self._changed()

    # -- accounts and credentials -------------------------------------------------------------------------

    async def add_account(self, account: Account) -> None:
        keys = self._keys
        added = await ADD_ACCOUNT.run(self._client, keys=[keys.accounts, keys.account_order],
                                        args=[self._prefix, account.account_key,
                                              _dumps(codec.encode_account(account))])
        if not added:
            raise AccountAlreadyExists(account.account_key)
        self._changed()

    async def account(self, account_key: str) -> Account | None:
        data = await self._client.hget(self._keys.accounts, account_key)
        return None if data is None else codec.decode_account(json.loads(data))

    async def accounts(self, tenant: str | None = None) -> list[Account]:
        keys = self._keys
        async with self._client.pipeline(transaction=True) as pipe:
            order, stored = await pipe.lrange(keys.account_order, 0, -1).hgetall(keys.accounts).execute()
        found = (codec.decode_account(json.loads(stored[key])) for key in order if key in stored)
        return [account for account in found if tenant is None or account.tenant == tenant]

    async def save_credential(self, credential: Credential) -> bool:
        keys = self._keys
        slot = _credential_slot(credential.tenant, credential.provider, credential.integration_type)
        replaced = await SAVE_CREDENTIAL.run(self._client, keys=[keys.creds, keys.cred_order],
                                               args=[self._prefix, slot, _encode_credential(credential)])
        self._changed()
        return bool(replaced)

    async def credential(self, tenant: str, provider: str, integration_type: str) -> Credential | None:
        data = await self._client.hget(self._keys.creds, _credential_slot(tenant, provider, integration_type))
        return None if data is None else _decode_credential(data)

    # -- key requests ----------------------------------------------------------------------------------

    async def add_key_request(self, request: PixKeyRequest) -> None:
        keys, account = self._keys, request.account
        value = request.key_value
        outcome = await ADD_KEY_REQUEST.run(self._client,
            keys=[keys.holders, keys.dict, keys.places, keys.request(request.request_key), keys.requests,
                  keys.account_requests(account.account_key), keys.keyless, keys.indexed],
            args=[self._prefix, "0" if value is None else "1", value or "", account.account_key,
                  account.key_limit, request.request_key, _request_json(request),
                  _holds_place(request)])
        if outcome == "exists":
            raise errors.KeyAlreadyExists(pix_key=value)
        if outcome == "unfinished":
            raise errors.KeyCreationNotFinished(pix_key=value)
        if outcome == "limit":
            raise errors.KeyLimitReached(account_key=account.account_key)
        self._changed()

    async def key_request(self, request_key: str) -> PixKeyRequest | None:
        return self._request_from(await READ_REQUEST.run(self._client,
            keys=[self._keys.accounts], args=[self._prefix, "key", request_key]))

    async def key_holder(self, key_value: str) -> PixKeyRequest | None:
        return self._request_from(await READ_REQUEST.run(self._client,
            keys=[self._keys.accounts], args=[self._prefix, "holder", key_value]))

    async def key_requests(self, account_key: str) -> list[PixKeyRequest]:
        account, *items = await READ_ACCOUNT_ITEMS.run(self._client,
            keys=[self._keys.accounts], args=[self._prefix, "account_requests:", "req:", account_key])
        accounts = self._account_map(account)
        return [codec.decode_key_request(json.loads(item), accounts) for item in items]

    async def change_key_request(self, request_key: str, change: Callable[[PixKeyRequest], T]) -> T:
        async def step(pipe: Pipeline) -> tuple[Callable[[Pipeline], None], T]:
            data = await pipe.get(self._keys.request(request_key))
            if data is None:
                raise errors.KeyRequestNotFound(pix_key_request_key=request_key)
            return await self._changed_request(pipe, data, change)

        result = await self._optimistic(step, self._keys.request(request_key))
        self._changed()
        return result

    async def change_key(self, key_value: str, change: Callable[[PixKeyRequest], T]) -> T:
        keys = self._keys

        async def step(pipe: Pipeline) -> tuple[Callable[[Pipeline], None], T]:
            holder = await self._holder_watched(pipe, key_value)
            if holder is None:
                raise errors.KeyNotFound(pix_key=key_value)
            data = await pipe.get(keys.request(holder))
            if data is None:
                raise _Again()  # replaced meanwhile
            return await self._changed_request(pipe, data, change)

        result = await self._optimistic(step)
        self._changed()
        return result

    async def _changed_request(self, pipe: Pipeline, data: str, change: Callable[[PixKeyRequest], T],
                               ) -> tuple[Callable[[Pipeline], None], T]:
        """Apply ``change`` to a decoded copy of the request; the writes that store it (if it raises,
        nothing is queued and the exception goes to the caller)."""
        stored = await self._decode_request(pipe, data)
        working = copy.deepcopy(stored)
        result = change(working)
        return (lambda queue: self._queue_request_change(queue, stored, working)), result

    async def _holder_watched(self, pipe: Pipeline, key_value: str) -> str | None:
        """The request that holds ``key_value``, its key WATCHed so that the holder cannot change
        before EXEC unnoticed (None: nobody holds it).

        ``holders`` itself is not watched (every new key would then conflict with this step). A key
        value leaves its holder only in a step that writes the holder's request (a deletion, a
        rejection, a claim's end) or deletes it (a load, a replace): once the request is watched,
        reading the holder again tells whether it still holds the key, and if so it will at EXEC.
        """
        holder = await self._client.hget(self._keys.holders, key_value)
        if holder is None:
            return None
        await pipe.watch(self._keys.request(holder))
        if await pipe.hget(self._keys.holders, key_value) != holder:
            raise _Again()  # moved between the two reads: look again who holds it
        return holder

    def _queue_request_change(self, pipe: Pipeline, before: PixKeyRequest, after: PixKeyRequest) -> None:
        """The request stored, and the indexes moved as ``InMemoryStore._reindex`` moves them: the key
        freed (a deletion, a rejection) in the same step, a place in the limit given back."""
        keys, request_key = self._keys, after.request_key
        pipe.set(keys.request(request_key), _request_json(after))
        if before.claims_key and before.key_value is not None and not after.claims_key:
            pipe.hdel(keys.holders, before.key_value)
        if after.claims_key and after.key_value is not None:
            pipe.hset(keys.holders, after.key_value, request_key)
        was_keyless = before.claims_key and before.key_value is None
        is_keyless = after.claims_key and after.key_value is None
        if was_keyless and not is_keyless:
            pipe.srem(keys.keyless, request_key)
        elif is_keyless and not was_keyless:
            pipe.sadd(keys.keyless, request_key)
        places = _holds_place(after) - _holds_place(before)
        if places:
            pipe.hincrby(keys.places, after.account.account_key, places)

    def _queue_new_request(self, pipe: Pipeline, request: PixKeyRequest) -> None:
        """A request made by the store itself (a claimant's key at a claim's conclusion)."""
        keys, account_key = self._keys, request.account.account_key
        pipe.set(keys.request(request.request_key), _request_json(request))
        pipe.rpush(keys.requests, request.request_key)
        pipe.rpush(keys.account_requests(account_key), request.request_key)
        pipe.sadd(keys.indexed, account_key)
        if request.key_value is not None:
            pipe.hset(keys.holders, request.key_value, request.request_key)
        if request.claims_key:
            pipe.hincrby(keys.places, account_key, 1)

    # -- DICT entries, anti-scan buckets --------------------------------------------------------------

    async def add_dict_entry(self, entry: DictEntry) -> None:
        keys = self._keys
        added = await ADD_DICT_ENTRY.run(self._client, keys=[keys.dict, keys.holders, keys.dict_order, keys.seq],
                                           args=[self._prefix, entry.pix_key,
                                                 _dumps(codec.encode_dict_entry(entry))])
        if not added:
            raise KeyAlreadyInDict(entry.pix_key)

    async def dict_entry(self, key_value: str) -> DictEntry | None:
        data = await self._client.hget(self._keys.dict, key_value)
        return None if data is None else codec.decode_dict_entry(json.loads(data))

    async def dict_entries(self) -> list[DictEntry]:
        keys = self._keys
        async with self._client.pipeline(transaction=True) as pipe:
            order, stored = await pipe.zrange(keys.dict_order, 0, -1).hgetall(keys.dict).execute()
        return [codec.decode_dict_entry(json.loads(stored[key])) for key in order if key in stored]

    async def spend_tokens(self, account_key: str, new: Callable[[], TokenBucket],
                           spend: Callable[[TokenBucket], TokenBucket]) -> TokenBucket:
        keys = self._keys

        async def step(pipe: Pipeline) -> tuple[Callable[[Pipeline], None], TokenBucket]:
            data = await pipe.get(keys.bucket(account_key))
            bucket = spend(new() if data is None else codec.decode_bucket(json.loads(data)))  # frozen

            def write(queue: Pipeline) -> None:
                queue.set(keys.bucket(account_key), _dumps(codec.encode_bucket(bucket)))
                if data is None:  # a new bucket: listed once (a racing creator's EXEC fails instead)
                    queue.rpush(keys.buckets, account_key)

            return write, bucket

        return await self._optimistic(step, keys.bucket(account_key))

    async def buckets(self) -> list[TokenBucket]:
        items = await READ_EACH.run(self._client, keys=[self._keys.buckets], args=[self._prefix, "buckets", "bucket:"])
        return [codec.decode_bucket(json.loads(item)) for item in items]

    # -- claims ----------------------------------------------------------------------------------------

    async def add_claim(self, claim: Claim, now: dt.datetime) -> None:
        if claim.role is ClaimRole.CLAIMANT:
            await self._add_claimant_claim_step(claim)
        else:
            await self._add_donor_claim(claim, now)
        self._changed()

    async def _add_claimant_claim_step(self, claim: Claim) -> None:
        keys, account = self._keys, claim.account
        outcome = await ADD_CLAIMANT_CLAIM.run(self._client,
            keys=[keys.open_claims, keys.dict, keys.places, keys.claim(claim.claim_key), keys.claims,
                  keys.account_claims(account.account_key), keys.indexed],
            args=[self._prefix, claim.key_value, account.account_key, account.key_limit, claim.claim_key,
                  _dumps(codec.encode_claim(claim)), "1" if claim.status.unfinished else "0"])
        problems = {
            "claim_unfinished": lambda: errors.KeyClaimNotFinished(pix_key=claim.key_value),
            "unfinished": lambda: errors.KeyCreationNotFinished(pix_key=claim.key_value),
            "exists": lambda: errors.KeyAlreadyExists(pix_key=claim.key_value),
            "no_entry": lambda: errors.ClaimKeyNotFound(pix_key=claim.key_value),
            "limit": lambda: errors.KeyLimitReached(account_key=account.account_key),
        }
        if outcome in problems:
            raise problems[outcome]()

    async def _add_donor_claim(self, claim: Claim, now: dt.datetime) -> None:
        """The donor's key must be active in its account; it is locked in the same step (a Python
        rule, ``Claim.lock_donor_key``: an optimistic transaction, not a script)."""
        keys = self._keys

        async def step(pipe: Pipeline) -> tuple[Callable[[Pipeline], None], None]:
            if await pipe.hexists(keys.open_claims, claim.key_value):
                raise errors.KeyClaimNotFinished(pix_key=claim.key_value)
            holder = await self._holder_watched(pipe, claim.key_value)
            if holder is None or holder != claim.key_request_key:
                raise errors.KeyNotFound(pix_key=claim.key_value)
            data = await pipe.get(keys.request(holder))
            if data is None:
                raise _Again()
            stored = await self._decode_request(pipe, data)
            working = copy.deepcopy(stored)
            claim.lock_donor_key(working, now)

            def write(queue: Pipeline) -> None:
                self._queue_request_change(queue, stored, working)
                self._queue_new_claim(queue, claim)

            return write, None

        await self._optimistic(step, keys.open_claims)

    def _queue_new_claim(self, pipe: Pipeline, claim: Claim) -> None:
        keys, account_key = self._keys, claim.account.account_key
        pipe.set(keys.claim(claim.claim_key), _dumps(codec.encode_claim(claim)))
        pipe.rpush(keys.claims, claim.claim_key)
        pipe.rpush(keys.account_claims(account_key), claim.claim_key)
        pipe.sadd(keys.indexed, account_key)
        if claim.status.unfinished:
            pipe.hset(keys.open_claims, claim.key_value, claim.claim_key)

    async def claim(self, claim_key: str) -> Claim | None:
        found = await READ_CLAIM.run(self._client, keys=[self._keys.accounts], args=[self._prefix, claim_key])
        if found is None:
            return None
        data, account = found
        return codec.decode_claim(json.loads(data), self._account_map(account))

    async def claims(self, account_key: str) -> list[Claim]:
        account, *items = await READ_ACCOUNT_ITEMS.run(self._client,
            keys=[self._keys.accounts], args=[self._prefix, "account_claims:", "claim:", account_key])
        accounts = self._account_map(account)
        return [codec.decode_claim(json.loads(item), accounts) for item in items]

    async def change_claim(self, claim_key: str, change: Callable[[Claim], T], now: dt.datetime) -> T:
        keys = self._keys

        async def step(pipe: Pipeline) -> tuple[Callable[[Pipeline], None], T]:
            data = await pipe.get(keys.claim(claim_key))
            if data is None:
                raise errors.ClaimNotFound(claim_request_key=claim_key)
            account = await self._claim_account(pipe, data)
            stored = codec.decode_claim(json.loads(data), {account.account_key: account})
            working = copy.deepcopy(stored)
            result = change(working)
            writes: list[Callable[[Pipeline], Any]] = [
                lambda queue: queue.set(keys.claim(claim_key), _dumps(codec.encode_claim(working)))]
            if stored.status.unfinished and not working.status.unfinished:
                writes += await self._claim_ended(pipe, working, now)

            def write(queue: Pipeline) -> None:
                for each in writes:
                    each(queue)

            return write, result

        result = await self._optimistic(step, keys.claim(claim_key))
        self._changed()
        return result

    async def _claim_ended(self, pipe: Pipeline, claim: Claim, now: dt.datetime) -> list[Callable[[Pipeline], Any]]:
        """What a claim's end does to the keys (``InMemoryStore._settle_keys``), read under WATCH
        and queued for the claim's own MULTI: the key's claim freed, a claimant's place given back,
        the donor's key unlocked or gone, the claimant's key made active."""
        keys = self._keys
        writes: list[Callable[[Pipeline], Any]] = []
        await pipe.watch(keys.open_claims)
        if await pipe.hget(keys.open_claims, claim.key_value) == claim.claim_key:
            writes.append(lambda queue: queue.hdel(keys.open_claims, claim.key_value))
        if claim.role is ClaimRole.DONATOR:
            request_key = claim.key_request_key
            await pipe.watch(keys.request(request_key))
            data = await pipe.get(keys.request(request_key))
            if data is None:
                raise errors.KeyRequestNotFound(pix_key_request_key=request_key)
            before = await self._decode_request(pipe, data)
            after = copy.deepcopy(before)
            claim.settle_donor_key(after, now)
            writes.append(lambda queue: self._queue_request_change(queue, before, after))
            if claim.status is ClaimStatus.CONCLUDED:  # the key now at the claimant's institution
                entry = _dumps(codec.encode_dict_entry(claim.resulting_entry(now)))
                order = await pipe.incr(keys.seq)  # a number for its place; a gap if EXEC fails

                def add_entry(queue: Pipeline) -> None:
                    queue.hset(keys.dict, claim.key_value, entry)
                    queue.zadd(keys.dict_order, {claim.key_value: order}, nx=True)

                writes.append(add_entry)
            return writes
        account_key = claim.account.account_key
        writes.append(lambda queue: queue.hincrby(keys.places, account_key, -1))  # the claim's place
        if claim.status is ClaimStatus.CONCLUDED:  # the key comes from the other institution
            request = claim.claimed_key(now)

            def take_key(queue: Pipeline) -> None:
                queue.hdel(keys.dict, claim.key_value)
                queue.zrem(keys.dict_order, claim.key_value)
                self._queue_new_request(queue, request)

            writes.append(take_key)
        return writes

    # -- logs, clock, due work ----------------------------------------------------------------------------

    async def record(self, kind: str, entry: dict) -> None:
        keys = self._keys
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.rpush(keys.log(kind), _dumps(entry)).ltrim(keys.log(kind), -LOG_SIZE, -1)
            await pipe.sadd(keys.log_kinds, kind).execute()
        self._changed()

    async def records(self, kind: str) -> list[dict]:
        return [json.loads(entry) for entry in await self._client.lrange(self._keys.log(kind), 0, -1)]

    async def clock(self) -> ClockSetting:
        data = await self._client.get(self._keys.clock)
        return REAL_TIME if data is None else codec.decode_clock(json.loads(data))

    async def set_clock(self, change: Callable[[ClockSetting], ClockSetting]) -> ClockSetting:
        keys = self._keys

        async def step(pipe: Pipeline) -> tuple[Callable[[Pipeline], None], ClockSetting]:
            data = await pipe.get(keys.clock)
            setting = change(REAL_TIME if data is None else codec.decode_clock(json.loads(data)))
            return (lambda queue: queue.set(keys.clock, _dumps(codec.encode_clock(setting)))), setting

        setting = await self._optimistic(step, keys.clock)
        self._changed()
        return setting

    async def schedule(self, job: DueJob) -> None:
        keys = self._keys
        await SCHEDULE.run(self._client, keys=[keys.due, keys.seq],
                             args=[self._prefix, codec.encode_instant(job.due_at), _dumps([job.kind, job.subject])])
        self._changed()

    async def take_due(self, now: dt.datetime) -> list[DueJob]:
        # '}' sorts after '|': every member whose instant is <= now is below the bound.
        taken = await TAKE_DUE.run(self._client, keys=[self._keys.due],
                                     args=[self._prefix, f"({codec.encode_instant(now)}}}"])
        if taken:
            self._changed()
        return [_decode_due(member) for member in taken]

    async def next_due(self) -> dt.datetime | None:
        first = await self._client.zrange(self._keys.due, 0, 0)
        return _decode_due(first[0]).due_at if first else None

    async def due_jobs(self) -> list[DueJob]:
        return [_decode_due(member) for member in await self._client.zrange(self._keys.due, 0, -1)]

    # -- the whole state ---------------------------------------------------------------------------------

    async def counts(self) -> dict[str, int]:
        keys = self._keys
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.hlen(keys.accounts).hlen(keys.holders).scard(keys.keyless).llen(keys.requests)
            accounts, held, keyless, requests = await pipe.execute()
        return {"accounts": accounts, "keys": held + keyless, "key_requests": requests}

    async def export(self) -> dict:
        clock, accounts, requests, credentials, outbox, due, entries, buckets, claims = await EXPORT.run(self._client,
            keys=[self._keys.accounts], args=[self._prefix])
        return {
            "clock": json.loads(clock[0]) if clock and clock[0] else codec.encode_clock(REAL_TIME),
            "accounts": [json.loads(item) for item in accounts],
            "key_requests": [_request_data(item) for item in requests],
            "credentials": [codec.encode_credential(_decode_credential(item)) for item in credentials],
            "outbox": [codec.encode_outbox_message(json.loads(item)) for item in outbox],
            "due_jobs": [codec.encode_due_job(_decode_due(member)) for member in due],
            "dict_entries": [json.loads(item) for item in entries],
            "buckets": [json.loads(item) for item in buckets],
            "claims": [json.loads(item) for item in claims],
        }

    async def replace(self, state: dict) -> None:
        # Decoded and built first; then one MULTI wipes the old state and writes the new one, so a
        # reader (any process) sees one or the other. Decoding normalises the data as the
        # in-memory store does (what ``export`` gives back is what the codec encodes).
        accounts = {a["account_key"]: codec.decode_account(a) for a in state["accounts"]}
        requests = [codec.decode_key_request(data, accounts) for data in state["key_requests"]]
        credentials = {}
        for data in state["credentials"]:
            credential = codec.decode_credential(data)
            slot = _credential_slot(credential.tenant, credential.provider, credential.integration_type)
            credentials[slot] = _encode_credential(credential)
        outbox = [codec.decode_outbox_message(m) for m in state["outbox"]][-LOG_SIZE:]
        due = [codec.decode_due_job(data) for data in state["due_jobs"]]
        entries = {e["pix_key"]: codec.decode_dict_entry(e) for e in state.get("dict_entries", ())}
        buckets = {b["account_key"]: codec.decode_bucket(b) for b in state.get("buckets", ())}
        claims = [codec.decode_claim(data, accounts) for data in state.get("claims", ())]
        clock = codec.decode_clock(state["clock"])
        # Numbers for the order of the jobs and entries, taken before the step (a gap if it fails).
        last = await self._client.incrby(self._keys.seq, len(due) + len(entries) + 1)
        first = last - len(due) - len(entries)
        async with self._client.pipeline(transaction=True) as pipe:
            await WIPE.run(pipe, keys=[self._keys.requests], args=[self._prefix])
            self._queue_accounts(pipe, accounts.values())
            self._queue_requests(pipe, requests, claims)
            self._queue_state_rest(pipe, credentials, outbox, clock, buckets, claims)
            self._queue_ordered(pipe, due, entries, first)
            await pipe.execute()
        self._changed()

    def _queue_accounts(self, pipe: Pipeline, accounts: Iterable[Account]) -> None:
        encoded = {account.account_key: _dumps(codec.encode_account(account)) for account in accounts}
        if encoded:
            pipe.hset(self._keys.accounts, mapping=encoded)
            pipe.rpush(self._keys.account_order, *encoded)

    def _queue_requests(self, pipe: Pipeline, requests: list[PixKeyRequest], claims: list[Claim]) -> None:
        """Requests and their indexes, as ``InMemoryStore.replace`` builds them: a key value held by
        the request that claims it; places = claiming requests + unfinished claimant claims."""
        keys = self._keys
        if requests:
            pipe.mset({keys.request(r.request_key): _request_json(r) for r in requests})
            pipe.rpush(keys.requests, *(r.request_key for r in requests))
        by_account: dict[str, list[str]] = {}
        holders, keyless, places = {}, [], {}
        for request in requests:
            account_key = request.account.account_key
            by_account.setdefault(account_key, []).append(request.request_key)
            if request.claims_key:
                places[account_key] = places.get(account_key, 0) + 1
                if request.key_value is not None:
                    holders[request.key_value] = request.request_key
                else:
                    keyless.append(request.request_key)
        for claim in claims:
            if claim.role is ClaimRole.CLAIMANT and claim.status.unfinished:
                account_key = claim.account.account_key
                places[account_key] = places.get(account_key, 0) + 1
        for account_key, request_keys in by_account.items():
            pipe.rpush(keys.account_requests(account_key), *request_keys)
        if by_account:
            pipe.sadd(keys.indexed, *by_account)
        if holders:
            pipe.hset(keys.holders, mapping=holders)
        if keyless:
            pipe.sadd(keys.keyless, *keyless)
        if places:
            pipe.hset(keys.places, mapping=places)

    def _queue_state_rest(self, pipe: Pipeline, credentials: dict[str, str], outbox: list[dict],
                          clock: ClockSetting, buckets: dict[str, TokenBucket], claims: list[Claim]) -> None:
        keys = self._keys
        if credentials:
            pipe.hset(keys.creds, mapping=credentials)
            pipe.rpush(keys.cred_order, *credentials)
        if outbox:
            pipe.rpush(keys.log("outbox"), *map(_dumps, outbox))
            pipe.sadd(keys.log_kinds, "outbox")
        pipe.set(keys.clock, _dumps(codec.encode_clock(clock)))
        if buckets:
            pipe.mset({keys.bucket(key): _dumps(codec.encode_bucket(b)) for key, b in buckets.items()})
            pipe.rpush(keys.buckets, *buckets)
        if claims:
            # Places of unfinished claimant claims are counted with the requests' (_queue_requests).
            pipe.mset({keys.claim(c.claim_key): _dumps(codec.encode_claim(c)) for c in claims})
            pipe.rpush(keys.claims, *(c.claim_key for c in claims))
            by_account: dict[str, list[str]] = {}
            for claim in claims:
                by_account.setdefault(claim.account.account_key, []).append(claim.claim_key)
            for account_key, claim_keys in by_account.items():
                pipe.rpush(keys.account_claims(account_key), *claim_keys)
            pipe.sadd(keys.indexed, *by_account)
            open_claims = {c.key_value: c.claim_key for c in claims if c.status.unfinished}
            if open_claims:
                pipe.hset(keys.open_claims, mapping=open_claims)

    def _queue_ordered(self, pipe: Pipeline, due: list[DueJob], entries: dict[str, DictEntry], first: int) -> None:
        """Due jobs and DICT entries, numbered from ``first`` in their given order."""
        keys = self._keys
        if due:
            # sorted: a job's number orders ties of due time, as the in-memory heap's counter does
            pipe.zadd(keys.due, {_due_member(job, first + index): 0 for index, job in enumerate(sorted(due))})
        if entries:
            start = first + len(due)
            pipe.hset(keys.dict, mapping={key: _dumps(codec.encode_dict_entry(e)) for key, e in entries.items()})
            pipe.zadd(keys.dict_order, {key: start + index for index, key in enumerate(entries)})

    # -- helpers ---------------------------------------------------------------------------------------------

    async def _optimistic(self, step: Callable[[Pipeline], Awaitable[tuple[Callable[[Pipeline], None], T]]],
                          *watched: str) -> T:
        """Run ``step`` as an optimistic transaction: WATCH ``watched`` (``step`` may WATCH more
        before reading them), let it read and decide, queue its writes in MULTI, EXEC; again when
        a watched key changed meanwhile. A step that raises changes nothing."""
        async with self._client.pipeline(transaction=True) as pipe:
            for attempt in range(WATCH_ATTEMPTS):
                try:
                    if watched:
                        await pipe.watch(*watched)
                    write, result = await step(pipe)
                    pipe.multi()
                    write(pipe)
                    await pipe.execute()
                    return result
                except WatchError as conflict:
                    # redis-py reports a connection lost while watching as a WatchError too.
                    if isinstance(conflict.__context__, OUTAGES):
                        raise conflict.__context__ from conflict
                except _Again:
                    await pipe.reset()
                # Spread the retries of many racers, so each round is not a stampede on one key.
                await asyncio.sleep(random.uniform(0, min(0.0005 * 2 ** attempt, 0.01)))
        raise StoreUnavailable(f"redis: {WATCH_ATTEMPTS} conflicting tries in a row; try again")

    async def _decode_request(self, pipe: Pipeline, data: str) -> PixKeyRequest:
        """A request read inside an optimistic step, with its account (never changed once stored,
        so not watched)."""
        decoded = json.loads(data)
        account = await pipe.hget(self._keys.accounts, decoded["account_key"])
        return codec.decode_key_request(decoded, self._account_map(account or ""))

    async def _claim_account(self, pipe: Pipeline, data: str) -> Account:
        account = await pipe.hget(self._keys.accounts, json.loads(data)["account_key"])
        if account is None:
            raise errors.ClaimNotFound(claim_request_key=json.loads(data)["claim_request_key"])
        return codec.decode_account(json.loads(account))

    @staticmethod
    def _account_map(account: str) -> dict[str, Account]:
        if not account:
            return {}
        decoded = codec.decode_account(json.loads(account))
        return {decoded.account_key: decoded}

    @staticmethod
    def _request_from(found: list[str] | None) -> PixKeyRequest | None:
        if found is None:
            return None
        data, account = found
        return codec.decode_key_request(json.loads(data), RedisStore._account_map(account))
