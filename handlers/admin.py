"""/__admin: reset, accounts, outbox and recorded webhooks."""

from __future__ import annotations

import time

from baas_sandbox.adapters.fixtures import InvalidAccountField
from baas_sandbox.adapters.repository import AccountAlreadyExists, KeyAlreadyInDict
from baas_sandbox.http.context import current_sandbox
from baas_sandbox.http.errors import json_response
from baas_sandbox.scenarios.library import UnknownScenario
from baas_sandbox.services import pix_keys
from baas_sandbox.services.accounts import build_account
from baas_sandbox.services.dict_entries import build_dict_entry


async def reset_sandbox():
    sandbox = current_sandbox()
    await sandbox.reset()
    return {
        "message": "Sandbox reset to fixtures",
        "tenants": sandbox.store.tenant_count(),
        "accounts": len(await sandbox.store.accounts()),
    }, 200


async def list_accounts(tenant: str | None = None):
    return {"accounts": [a.as_dict() for a in await current_sandbox().store.accounts(tenant)]}, 200


async def create_account(body: dict):
    sandbox = current_sandbox()
    store = sandbox.store
    try:
        account = build_account(body, store.tenant, sandbox.ids, sandbox.clock)
        await store.add_account(account)
    except InvalidAccountField as exc:
        return json_response(400, {"code": "SBX000400", "message": "Invalid request",
                                   "details": f"{exc.field}: {exc.problem}"})
    except AccountAlreadyExists:
        return json_response(409, {"code": "SBX000409", "message": "Account already exists",
                                   "details": f"account_key {account.account_key} is taken"})
    return account.as_dict(), 201


async def list_outbox(pix_key_request_key: str | None = None, claim_request_key: str | None = None):
    messages = await current_sandbox().store.records("outbox")
    if pix_key_request_key is not None:
        messages = [m for m in messages if m["pix_key_request_key"] == pix_key_request_key]
    if claim_request_key is not None:
        messages = [m for m in messages if m.get("claim_request_key") == claim_request_key]
    return {"messages": messages}, 200


async def list_webhooks():
    return {"webhooks": await current_sandbox().store.records("webhooks")}, 200


async def list_scenarios():
    return await current_sandbox().scenarios.describe(), 200


async def set_active_scenarios(body: dict):
    scenarios = current_sandbox().scenarios
    try:
        await scenarios.activate(body["names"])
    except UnknownScenario as exc:
        return json_response(400, {"code": "SBX000400", "message": "Invalid request", "details": f"names: {exc}"})
    return await scenarios.describe(), 200


async def list_requests(operation_id: str | None = None, status: int | None = None, limit: int | None = None):
    return {"requests": await current_sandbox().journal.entries(operation_id, status, limit)}, 200


async def clear_requests():
    await current_sandbox().journal.clear()
    return None, 204


async def list_dict_entries():
    return {"dict_entries": [entry.as_dict() for entry in await current_sandbox().store.dict_entries()]}, 200


async def create_dict_entry(body: dict):
    sandbox = current_sandbox()
    try:
        entry = build_dict_entry(body, sandbox.clock)
        await sandbox.store.add_dict_entry(entry)
    except InvalidAccountField as exc:
        return json_response(400, {"code": "SBX000400", "message": "Invalid request",
                                   "details": f"{exc.field}: {exc.problem}"})
    except KeyAlreadyInDict:
        return json_response(409, {"code": "SBX000409", "message": "Pix key already registered",
                                   "details": f"pix_key {body['pix_key']} is held already (a DICT entry, "
                                              "or a key of the sandbox being created or active)"})
    return entry.as_dict(), 201


async def list_rate_limits():
    return {"buckets": await pix_keys.rate_limits(current_sandbox())}, 200


async def get_health():
    """The store answers (a round trip timed); when it cannot, ``StoreUnavailable`` is answered 503
    SBX000503 as on every other operation (http/store_faults.py)."""
    sandbox = current_sandbox()
    started = time.perf_counter()
    await sandbox.store.ping()
    return {"status": "ok", "store": sandbox.shared.store_kind, "store_reachable": True,
            "store_latency_ms": round((time.perf_counter() - started) * 1000, 3)}, 200
