"""Bearer authentication of the product APIs (the spec's ``x-bearerInfoFunc``)."""

from __future__ import annotations

from baas_sandbox.http.context import current_sandbox


def tenant_from_token(token: str) -> dict | None:
    """The tenant a sandbox token belongs to, or None (connexion then answers 401)."""
    tenant = current_sandbox().store.tenant_by_token(token.strip())
    if tenant is None:
        return None
    return {"sub": tenant.name, "tenant": tenant}
