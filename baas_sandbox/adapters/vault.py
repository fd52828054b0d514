"""Encryption of provider keys at rest (AES-256-GCM) and the proxy values that stand for them.

The master key comes from ``BAAS_SANDBOX_MASTER_KEY`` (32 bytes, base64) or is generated at
start: the sandbox keeps no state across restarts, so a per-process key loses nothing.
"""

from __future__ import annotations

import base64
import os
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
MASTER_KEY_VARIABLE = "BAAS_SANDBOX_MASTER_KEY"


class MasterKeyError(ValueError):
    """``BAAS_SANDBOX_MASTER_KEY`` is not 32 bytes in base64: the sandbox cannot start with it."""


class Vault:
    def __init__(self, master_key: bytes | None = None) -> None:
        self._aead = AESGCM(master_key or AESGCM.generate_key(bit_length=256))

    @classmethod
    def from_environment(cls) -> "Vault":
        encoded = os.environ.get(MASTER_KEY_VARIABLE)
        if not encoded:
            return cls(None)
        try:
            key = base64.b64decode(encoded, validate=True)
        except ValueError:
            key = b""
        if len(key) != 32:  # AES-256; a shorter key would silently weaken it
            raise MasterKeyError(f"{MASTER_KEY_VARIABLE} must be 32 bytes in base64 (44 characters), e.g. the "
                                 "output of: python3 -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())'")
        return cls(key)

    def seal(self, secret: str, context: str) -> bytes:
        """Encrypt ``secret``, bound to ``context`` (the credential's slot) as associated data."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, secret.encode(), context.encode())

    def open(self, sealed: bytes, context: str) -> str:
        nonce, ciphertext = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
        return self._aead.decrypt(nonce, ciphertext, context.encode()).decode()


def new_proxy_value() -> str:
    """An opaque value the client keeps instead of the key; it reveals nothing of the key."""
    return "prx_" + secrets.token_urlsafe(18)
