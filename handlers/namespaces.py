"""/__admin/namespaces: the namespaces the sandbox holds; drop one."""

from __future__ import annotations

import datetime as dt

from baas_sandbox.domain.model import timestamp
from baas_sandbox.http.context import current_namespaces
from baas_sandbox.http.errors import json_response


async def list_namespaces():
    namespaces = current_namespaces()
    listed = []
    for name, store, used, made in await namespaces.listed():
        listed.append({"name": name, "created_at": timestamp(_utc(made)), "last_used_at": timestamp(_utc(used)),
                       **await store.counts()})
    return {"max_namespaces": namespaces.max_namespaces, "idle_ttl_seconds": namespaces.idle_ttl,
            "namespaces": listed}, 200


def _utc(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc)


async def delete_namespace(name: str):
    if not await current_namespaces().discard(name):
        return json_response(404, {"code": "SBX000404", "message": "Not Found", "details": f"no namespace {name}"})
    return None, 204
