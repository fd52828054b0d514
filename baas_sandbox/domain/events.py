"""Domain events: what happened, for whatever must follow (the outbox, webhooks, data events).

Each carries the tenant it concerns and ``cid``, the ``tracking_id`` of the request that caused
it (for a key request: of the request that created it), so that everything that follows can be
correlated with the call a partner made.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    """Base of every domain event."""


@dataclass(frozen=True)
class CredentialSaved(Event):
    tenant: str
    cid: str | None
    provider: str
    integration_type: str
    proxy_value: str
    saved_at: str
    replaced: bool


@dataclass(frozen=True)
class KeyRequestCreated(Event):
    tenant: str
    cid: str | None
    pix_key_request_key: str
    account_key: str
    pix_key_type: str
    pix_key: str | None
    request_status: str
    requester_key: str
    created_at: str


@dataclass(frozen=True)
class VerificationCodeSent(Event):
    tenant: str
    cid: str | None
    pix_key_request_key: str
    channel: str
    destination: str
    verification_code: str
    sent_at: str
    expires_at: str


@dataclass(frozen=True)
class TwoStepValidationSucceeded(Event):
    tenant: str
    cid: str | None
    pix_key_request_key: str
    validated_at: str


@dataclass(frozen=True)
class TwoStepValidationFailed(Event):
    tenant: str
    cid: str | None
    pix_key_request_key: str
    reason: str  # wrong_code, expired_code, code_already_verified, too_many_attempts
    error_code: str
    failed_at: str


@dataclass(frozen=True)
class KeyRequestDecided(Event):
    """A key request was approved or rejected: the ``key_inclusion`` webhook.

    Every request ends with exactly one: decided by DICT, or rejected before reaching it (too many
    wrong codes, validation window expired), so a partner waiting on the webhook always hears.
    """

    tenant: str
    cid: str | None
    pix_key: str | None
    pix_key_type: str
    account_key: str
    pix_key_status: str
    pix_key_request_key: str
    pix_key_request_status: str
    request_failure_reason: str | None
    decided_at: str
    #: Why it was rejected (a ``Rejection`` value: dict_rejected, too_many_attempts,
    #: validation_window_expired); None when approved.
    rejection: str | None

    @property
    def approved(self) -> bool:
        return self.pix_key_request_status == "approved"

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
class KeyDeleted(Event):
    """An active key was deleted (DICT reason USER_REQUESTED): its value and place are free."""

    tenant: str
    cid: str | None
    pix_key_request_key: str  # the request that had created the key
    deletion_request_key: str
    account_key: str
    pix_key: str
    pix_key_type: str
    deleted_at: str


@dataclass(frozen=True)
class ClaimStatusChanged(Event):
    """A claim was opened or changed status: the ``claim_request`` webhook (the provider's flat
    body) and a ``pix_key_claim_status_changed`` data event. ``previous_status`` None: opened."""

    tenant: str
    cid: str | None
    claim_request_key: str
    account_key: str
    pix_key: str
    pix_key_type: str
    claim_request_type: str
    role: str
    previous_status: str | None
    claim_request_status: str
    claimant_person_type: str
    claimant_document_number: str
    claimant_account_branch: str
    claimant_account_number: str
    claimant_account_digit: str
    cancelled_by: str | None
    cancellation_reason: str | None
    confirmation_reason: str | None
    request_failure_reason: str | None
    changed_at: str

    def webhook_body(self) -> dict:
        """The ``claim_request`` body, field for field as the provider sends it."""
        return {
            "account_key": self.account_key,
            "pix_key": self.pix_key,
            "pix_key_type": self.pix_key_type,
            "claim_request_type": self.claim_request_type,
            "role": self.role,
            "claim_request_key": self.claim_request_key,
            "claim_request_status": self.claim_request_status,
            "claimant_person_type": self.claimant_person_type,
            "claimant_document_number": self.claimant_document_number,
            "claimant_account_branch": self.claimant_account_branch,
            "claimant_account_number": self.claimant_account_number,
            "claimant_account_digit": self.claimant_account_digit,
            "webhook_type": "claim_request",
        }
