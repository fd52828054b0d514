"""The platform's data events: every state change, in the platform's envelope.

``{event_id, domain, event_type, schema_version, org_id, cid, timestamp, data}``: ``org_id`` is
the tenant, ``cid`` the ``tracking_id`` of the request that caused the change. Each event type has
a JSON Schema in ``spec/events/<event_type>.json`` (draft-07); no event carries a secret (not the
provider key, not the verification code).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from baas_sandbox.domain import events
from baas_sandbox.domain.model import timestamp
from baas_sandbox.ids import new_id
from baas_sandbox.spec import SPEC_DIR

EVENTS_DIR = SPEC_DIR / "events"
SCHEMA_VERSION = "1.0"

#: event type -> domain, for every data event the sandbox emits
EVENT_TYPES = {
    "credential_saved": "banking_auth",
    "credential_replaced": "banking_auth",
    "pix_key_request_created": "pix",
    "verification_code_sent": "pix",
    "two_step_validation_succeeded": "pix",
    "two_step_validation_failed": "pix",
    "pix_key_activated": "pix",
    "pix_key_request_rejected": "pix",
    "pix_key_deleted": "pix",
    "pix_key_claim_status_changed": "pix",
}

#: What a webhook subscription can ask for: the platform's webhook, any data event, or everything.
SUBSCRIBABLE = frozenset({"*", "key_inclusion", "claim_request", *EVENT_TYPES})


def data_event(event: events.Event, now, ids=new_id) -> dict | None:
    """The envelope for a domain event, or None when the event is not a data event (``now``: the
    namespace's time, ``ids``: its id source)."""
    translated = _translate(event)
    if translated is None:
        return None
    event_type, data = translated
    return {
        "event_id": ids(),
        "domain": EVENT_TYPES[event_type],
        "event_type": event_type,
        "schema_version": SCHEMA_VERSION,
        "org_id": event.tenant,  # type: ignore[attr-defined]
        "cid": event.cid,  # type: ignore[attr-defined]
        "timestamp": timestamp(now),
        "data": data,
    }


def _translate(event: events.Event) -> tuple[str, dict] | None:
    match event:
        case events.CredentialSaved():
            return ("credential_replaced" if event.replaced else "credential_saved",
                    {"provider": event.provider, "type": event.integration_type,
                     "proxy_value": event.proxy_value, "saved_at": event.saved_at})
        case events.KeyRequestCreated():
            return "pix_key_request_created", {
                "pix_key_request_key": event.pix_key_request_key, "account_key": event.account_key,
                "pix_key_type": event.pix_key_type, "pix_key": event.pix_key,
                "request_status": event.request_status, "requester_key": event.requester_key,
                "created_at": event.created_at}
        case events.VerificationCodeSent():  # the code itself stays out: events go to analytics
            return "verification_code_sent", {
                "pix_key_request_key": event.pix_key_request_key, "channel": event.channel,
                "destination": event.destination, "sent_at": event.sent_at, "expires_at": event.expires_at}
        case events.TwoStepValidationSucceeded():
            return "two_step_validation_succeeded", {
                "pix_key_request_key": event.pix_key_request_key, "validated_at": event.validated_at}
        case events.TwoStepValidationFailed():
            return "two_step_validation_failed", {
                "pix_key_request_key": event.pix_key_request_key, "reason": event.reason,
                "error_code": event.error_code, "failed_at": event.failed_at}
        case events.KeyRequestDecided() if event.approved:
            return "pix_key_activated", {
                "pix_key_request_key": event.pix_key_request_key, "account_key": event.account_key,
                "pix_key": event.pix_key, "pix_key_type": event.pix_key_type, "activated_at": event.decided_at}
        case events.KeyRequestDecided():
            return "pix_key_request_rejected", {
                "pix_key_request_key": event.pix_key_request_key, "account_key": event.account_key,
                "pix_key": event.pix_key, "pix_key_type": event.pix_key_type,
                "request_failure_reason": event.request_failure_reason, "reason": event.rejection,
                "rejected_at": event.decided_at}
        case events.KeyDeleted():
            return "pix_key_deleted", {
                "pix_key_request_key": event.pix_key_request_key,
                "deletion_request_key": event.deletion_request_key, "account_key": event.account_key,
                "pix_key": event.pix_key, "pix_key_type": event.pix_key_type, "pix_key_status": "inactive",
                "reason": "user_requested", "deleted_at": event.deleted_at}
        case events.ClaimStatusChanged():
            return "pix_key_claim_status_changed", {
                "claim_request_key": event.claim_request_key, "account_key": event.account_key,
                "pix_key": event.pix_key, "pix_key_type": event.pix_key_type,
                "claim_request_type": event.claim_request_type, "role": event.role,
                "previous_status": event.previous_status, "claim_request_status": event.claim_request_status,
                "cancelled_by": event.cancelled_by, "cancellation_reason": event.cancellation_reason,
                "confirmation_reason": event.confirmation_reason,
                "request_failure_reason": event.request_failure_reason, "changed_at": event.changed_at}
    return None


@cache
def event_schema(event_type: str) -> dict:
    """The JSON Schema of an event type, as published in ``spec/events``."""
    return json.loads((EVENTS_DIR / f"{event_type}.json").read_text(encoding="utf-8"))


def schema_files() -> list[Path]:
    return sorted(EVENTS_DIR.glob("*.json"))
