"""/__admin/namespaces: the namespaces the sandbox holds; drop one."""

from __future__ import annotations

import datetime as dt

from baas_sandbox.domain.model import timestamp
from baas_sandbox.http.context import current_namespaces
from baas_sandbox.http.errors import json_response


async def list_namespaces():
    namespaces = current_namespaces()
    now = namespaces.shared.real_clock()
    listed = []
    for sandbox in sorted(namespaces, key=lambda s: s.name):
        last_used = now - dt.timedelta(seconds=namespaces.idle_seconds(sandbox.name))
        listed.append({"name": sandbox.name, "created_at": timestamp(sandbox.created_at),
                       "last_used_at": timestamp(last_used), **await sandbox.store.counts()})
    return {"max_namespaces": namespaces.max_namespaces, "idle_ttl_seconds": namespaces.idle_ttl,
            "namespaces": listed}, 200


async def delete_namespace(name: str):
    if not current_namespaces().drop(name):
        return json_response(404, {"code": "SBX000404", "message": "Not Found", "details": f"no namespace {name}"})
    return None, 204
