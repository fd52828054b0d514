"""Saving a provider credential: check the pair, test it with the provider, encrypt, store."""

from __future__ import annotations

from baas_sandbox.adapters import providers
from baas_sandbox.adapters.vault import new_proxy_value
from baas_sandbox.domain import errors, events
from baas_sandbox.domain.model import Credential, Tenant, check_supported, timestamp
from baas_sandbox.services.sandbox import Sandbox


async def save_credential(sandbox: Sandbox, tenant: Tenant, provider: str, integration_type: str,
                    key: str, provider_data: dict | None, cid: str | None = None) -> Credential:
    check_supported(integration_type, provider)
    if provider not in tenant.providers:
        raise errors.ProviderConfigurationNotFound(provider=provider)
    providers.authenticate(provider, key)

    slot = f"{tenant.name}/{provider}/{integration_type}"
    sealed = sandbox.vault.seal(key, slot)
    # The platform reads back what it sealed before trusting it (its EBAA0009).
    if sandbox.vault.open(sealed, slot) != key:
        raise errors.EncryptedValueMismatch()
    credential = Credential(
        tenant=tenant.name,
        provider=provider,
        integration_type=integration_type,
        sealed_key=sealed,
        proxy_value=new_proxy_value(),
        provider_data=dict(provider_data or {}),
        saved_at=timestamp(sandbox.clock()),
    )
    replaced = await sandbox.store.save_credential(credential)
    await sandbox.publish(events.CredentialSaved(
        tenant=tenant.name, cid=cid, provider=provider, integration_type=integration_type,
        proxy_value=credential.proxy_value, saved_at=credential.saved_at, replaced=replaced,
    ))
    return credential
