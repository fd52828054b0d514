"""Domain events: what happened, for whatever must follow (the outbox, webhooks, data events)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    """Base of every domain event."""


@dataclass(frozen=True)
class VerificationCodeSent(Event):
    pix_key_request_key: str
    channel: str
    destination: str
    verification_code: str
    sent_at: str
    expires_at: str


@dataclass(frozen=True)
class KeyRequestDecided(Event):
    """A key request was approved or rejected by DICT: the ``key_inclusion`` webhook."""

    tenant: str
    pix_key: str | None
    account_key: str
    pix_key_status: str
    pix_key_request_key: str
    pix_key_request_status: str
    decided_at: str

    def webhook_body(self) -> dict:
        """The ``key_inclusion`` body, field for field as the platform sends it."""
        return {
            "pix_key": self.pix_key,
            "account_key": self.account_key,
            "webhook_type": "key_inclusion",
            "pix_key_status": self.pix_key_status,
            "pix_key_request_key": self.pix_key_request_key,
            "pix_key_request_type": "inclusion",
            "pix_key_request_status": self.pix_key_request_status,
        }


@dataclass(frozen=True)
class CredentialSaved(Event):
    tenant: str
    provider: str
    integration_type: str
    replaced: bool
