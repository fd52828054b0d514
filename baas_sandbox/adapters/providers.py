"""The providers' authentication test, simulated with the sandbox convention of magic prefixes.

Like a card network's test numbers, the key's prefix chooses the provider's answer, so that each
outcome can be produced on purpose: ``invalid…`` is refused, ``unavailable…`` meets an outage,
``timeout…`` a provider that does not answer; any other key authenticates.
"""

from __future__ import annotations

from baas_sandbox.domain import errors


def authenticate(provider: str, key: str) -> None:
    """Raise the platform's error for a provider that does not accept ``key``."""
    if key.startswith("invalid"):
        raise errors.ProviderRejectedCredential(provider=provider)
    if key.startswith("unavailable"):
        raise errors.ProviderUnavailable()
    if key.startswith("timeout"):
        raise errors.ProviderTimeout()
