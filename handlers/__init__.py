"""The spec's operations, by operationId: each handler parses, calls a service, shapes the answer.

The spec keeps the platform's own operationIds (``post-credentials``), so they are mapped here
explicitly rather than derived from module paths.
"""

from __future__ import annotations

from collections.abc import Callable

from handlers import admin, credentials, pix_keys, streams, webhooks

OPERATIONS: dict[str, Callable] = {
    "post-credentials": credentials.post_credentials,
    "create-pix-key": pix_keys.create_pix_key,
    "list-pix-keys": pix_keys.list_pix_keys,
    "validate-pix-key-twofa": pix_keys.validate_twofa,
    "resend-pix-key-twofa": pix_keys.resend_twofa,
    "reset-sandbox": admin.reset_sandbox,
    "list-accounts": admin.list_accounts,
    "create-account": admin.create_account,
    "list-outbox": admin.list_outbox,
    "list-webhooks": admin.list_webhooks,
    "list-scenarios": admin.list_scenarios,
    "set-active-scenarios": admin.set_active_scenarios,
    "list-requests": admin.list_requests,
    "clear-requests": admin.clear_requests,
    "list-webhook-subscriptions": webhooks.list_subscriptions,
    "create-webhook-subscription": webhooks.create_subscription,
    "delete-webhook-subscription": webhooks.delete_subscription,
    "list-webhook-deliveries": webhooks.list_deliveries,
    "redeliver-webhook": webhooks.redeliver,
    "list-events": streams.list_events,
    "stream-events": streams.stream_events,
    "stream-outbox": streams.stream_outbox,
}


def resolve(operation_id: str) -> Callable:
    """connexion's function resolver: the handler of ``operation_id``."""
    return OPERATIONS[operation_id]
