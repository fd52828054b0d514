"""POST /banking-auth/v1/credentials."""

from __future__ import annotations

from baas_sandbox.http.context import current_sandbox
from baas_sandbox.http.tracking import current_tracking_id
from baas_sandbox.services.credentials import save_credential


async def post_credentials(body: dict, token_info: dict):
    credential = await save_credential(
        current_sandbox(),
        token_info["tenant"],
        provider=body["provider"],
        integration_type=body["type"],
        key=body["key"],
        provider_data=body.get("provider_data"),
        cid=current_tracking_id(),
    )
    return {"message": "Credential saved", "proxy_value": credential.proxy_value}, 201
