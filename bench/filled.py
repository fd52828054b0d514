"""A store holding many Pix keys, for ``python -m bench.launch --keys N`` (the memory section) and
``python -m bench.filled --redis URL`` (the Redis section: see ``fill_redis``).

Filling a million keys through HTTP would take longer than the whole benchmark, so the keys are
put in the in-memory store in-process, just after the app is built and before it serves: no admin
path, nothing added to the product API.

The keys are what the API makes, made by the sandbox's own use cases (``services.pix_keys``), which
reach the store through its interface: legal-person accounts of org-a, opened as the admin API
opens them, with 20 keys each (DICT's limit): the owner's CNPJ, email, phone and random keys,
email and phone keys confirmed with their code, every request approved by ``decide``. What follows
each event (the data-event and webhook logs, the delayed decision) is left out: those logs are not
the store of keys, and the decision is made at once instead of a second later.
"""

from __future__ import annotations

import asyncio
import uuid

from bench.data import KEYS_PER_LEGAL_ACCOUNT, valid_cnpj

#: The key types of the 19 keys that follow each account's CNPJ key.
OTHER_TYPES = ("email", "phone_number", "random_key") * 6 + ("random_key",)


class _Quiet:
    """The sandbox as the use cases see it, without what follows each event or the due work."""

    def __init__(self, sandbox) -> None:
        self.store, self.clock, self.settings, self.ids = sandbox.store, sandbox.clock, sandbox.settings, sandbox.ids

    async def publish(self, *happened) -> None:
        pass

    async def schedule(self, delay: float, kind: str, subject: str) -> None:
        pass

    async def schedule_at(self, due_at, kind: str, subject: str) -> None:
        pass


def fill(sandbox, keys: int) -> None:
    """Before the server's loop runs (the memory store holds nothing of a loop): on a loop of its own."""
    asyncio.run(_fill(sandbox, keys))


async def _fill(sandbox, keys: int) -> None:
    quiet = _Quiet(sandbox)
    tenant = sandbox.store.tenant("org-a")
    serial = 0
    while serial * KEYS_PER_LEGAL_ACCOUNT < keys:
        serial += 1
        await fill_account(quiet, tenant, serial, min(KEYS_PER_LEGAL_ACCOUNT, keys - (serial - 1) * KEYS_PER_LEGAL_ACCOUNT))


async def fill_account(quiet: _Quiet, tenant, serial: int, count: int) -> None:
    """Account number ``serial`` (its CNPJ and key values follow from the number alone, so accounts
    filled concurrently, or by several processes, never collide) with its first ``count`` keys."""
    from baas_sandbox.services import pix_keys
    from baas_sandbox.services.accounts import build_account

    store = quiet.store
    account = build_account({
        "owner_name": f"BENCH FILL {serial} LTDA", "owner_document_number": valid_cnpj(5_000_000 + serial),
        "owner_person_type": "legal", "status": "open", "tenant": tenant.name,
    }, store.tenant)
    await store.add_account(account)
    for index in range(count):
        kind = "cnpj" if index == 0 else OTHER_TYPES[index - 1]
        made = (serial - 1) * KEYS_PER_LEGAL_ACCOUNT + index + 1
        value = {
            "cnpj": account.owner_document_number,
            "email": f"pessoa{made}@bench.example.com",
            "phone_number": f"+55119{60_000_000 + made:08d}",
            "random_key": None,
        }[kind]
        cid = str(uuid.uuid4())  # the tracking_id of the request that made it
        request = await pix_keys.create_key_request(quiet, tenant, account.account_key, kind, value, cid=cid)
        if request.code is not None:
            await pix_keys.validate_code(quiet, tenant, request.request_key, request.code.code, cid=cid)
        await pix_keys.decide(quiet, request.request_key)


# -- the Redis store ---------------------------------------------------------------------------------------
# ``python -m bench.filled --redis URL --keys N [--from K] [--tasks T]``: the default namespace of the
# Redis store at URL made (or joined) as a server makes it, then keys K+1 .. K+N stored as above, by
# the same use cases through ``RedisStore``'s own operations (Lua scripts and WATCH/MULTI), so the
# layout measured is the one a server writes. Every step waits for its round trips to Redis, so one
# account after another would take an hour for a million keys: ``--tasks`` accounts are filled at
# once on the process's loop, and the bench runs one such process per CPU, on disjoint accounts.


def fill_redis(url: str, first: int, keys: int, tasks: int) -> None:
    """``first``: keys already stored by others (a multiple of 20: whole accounts)."""
    from baas_sandbox.app import create_app
    from baas_sandbox.services.namespaces import DEFAULT
    from baas_sandbox.services.sandbox import Sandbox, Settings

    if first % KEYS_PER_LEGAL_ACCOUNT:
        raise SystemExit(f"bench.filled: --from must be a multiple of {KEYS_PER_LEGAL_ACCOUNT}, not {first}")
    # Built before any loop runs (it makes its own, in memory); its Shared makes the Redis client.
    shared = create_app(Settings(store_url=url)).namespaces.shared

    async def run() -> None:
        sandbox = await Sandbox.start(shared, DEFAULT, shared.new_store(DEFAULT))
        try:
            quiet, tenant = _Quiet(sandbox), sandbox.store.tenant("org-a")
            end = first + keys
            serials = iter(range(first // KEYS_PER_LEGAL_ACCOUNT + 1, -(-end // KEYS_PER_LEGAL_ACCOUNT) + 1))

            async def worker() -> None:
                for serial in serials:  # one iterator shared by the workers: each account once
                    await fill_account(quiet, tenant, serial,
                                       min(KEYS_PER_LEGAL_ACCOUNT, end - (serial - 1) * KEYS_PER_LEGAL_ACCOUNT))

            await asyncio.gather(*(worker() for _ in range(max(1, tasks))))
        finally:
            sandbox.close()
            await shared.close()

    asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys
    import time

    parser = argparse.ArgumentParser(prog="python -m bench.filled")
    parser.add_argument("--redis", required=True, help="the store, redis://HOST:PORT/DB")
    parser.add_argument("--from", dest="first", type=int, default=0, help="keys stored before these (whole accounts)")
    parser.add_argument("--keys", type=int, default=0, help="keys to store (0: only make the namespace)")
    parser.add_argument("--tasks", type=int, default=16, help="accounts filled at once")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    fill_redis(args.redis, args.first, args.keys, args.tasks)
    print(f"bench.filled: keys {args.first + 1}..{args.first + args.keys} stored in "
          f"{time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
