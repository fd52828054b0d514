"""A store holding many Pix keys, for ``python -m bench.launch --keys N`` (the memory section).

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
    from baas_sandbox.services import pix_keys
    from baas_sandbox.services.accounts import build_account

    quiet = _Quiet(sandbox)
    store = sandbox.store
    tenant = store.tenant("org-a")
    made, serial = 0, 0
    while made < keys:
        serial += 1
        account = build_account({
            "owner_name": f"BENCH FILL {serial} LTDA", "owner_document_number": valid_cnpj(5_000_000 + serial),
            "owner_person_type": "legal", "status": "open", "tenant": tenant.name,
        }, store.tenant)
        await store.add_account(account)
        for index in range(min(KEYS_PER_LEGAL_ACCOUNT, keys - made)):
            kind = "cnpj" if index == 0 else OTHER_TYPES[index - 1]
            made += 1
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
