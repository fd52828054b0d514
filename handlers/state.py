"""/__admin/state: the namespace's state as one JSON document; replace it with one."""

from __future__ import annotations

from baas_sandbox.http.context import current_sandbox
from baas_sandbox.http.errors import json_response
from baas_sandbox.services import snapshots


async def get_state():
    return await snapshots.export_state(current_sandbox()), 200


async def put_state(body: dict):
    try:
        return await snapshots.import_state(current_sandbox(), body), 200
    except snapshots.InvalidState as invalid:
        listed = invalid.problems[:snapshots.MAX_PROBLEMS]
        shown = "" if len(listed) == len(invalid.problems) else f" (the first {len(listed)} listed)"
        return json_response(400, {"code": "SBX000400", "message": "Invalid request",
                                   "details": f"the state is refused, nothing was changed: {invalid}{shown}",
                                   "problems": [p.as_dict() for p in listed]})
