"""Bearer authentication of the product APIs (the spec's ``x-bearerInfoFunc``)."""

from __future__ import annotations

from baas_sandbox.http.context import current_sandbox


def tenant_from_token(token: str) -> dict | None:
    """The tenant a sandbox token belongs to, or None (connexion then answers 401)."""
    tenant = current_sandbox().store.tenant_by_token(token.strip())
    if tenant is None:
        return None
    return {"sub": tenant.name, "tenant": tenant}


def admin_token_checked(token: str) -> dict:
    """The admin API's optional bearer (spec/admin.yaml ``adminToken``), for connexion.

    The token is checked before connexion, in constant time, by ``http/admin_guard.py``, which also
    knows when none is needed; a request reaching connexion has passed it. connexion still needs a
    function for the scheme the spec declares (so Swagger UI can send the token).
    """
    return {"sub": "admin"}
