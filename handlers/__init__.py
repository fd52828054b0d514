"""The spec's operations, by operationId: each handler parses, calls a service, shapes the answer.

The spec keeps the platform's own operationIds (``post-credentials``), so they are mapped here
explicitly rather than derived from module paths. A handler's module is imported when the handler
is first resolved: the product API's handlers serve the first requests, while the admin API's
modules (and connexion, which they use) are still loading (``baas_sandbox.app``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

#: operationId -> "module:function" (or, in tests, the function itself).
OPERATIONS: dict[str, str | Callable] = {
    "post-credentials": "handlers.credentials:post_credentials",
    "create-pix-key": "handlers.pix_keys:create_pix_key",
    "list-pix-keys": "handlers.pix_keys:list_pix_keys",
    "validate-pix-key-twofa": "handlers.pix_keys:validate_twofa",
    "resend-pix-key-twofa": "handlers.pix_keys:resend_twofa",
    "reset-sandbox": "handlers.admin:reset_sandbox",
    "list-accounts": "handlers.admin:list_accounts",
    "create-account": "handlers.admin:create_account",
    "list-outbox": "handlers.admin:list_outbox",
    "list-webhooks": "handlers.admin:list_webhooks",
    "list-scenarios": "handlers.admin:list_scenarios",
    "set-active-scenarios": "handlers.admin:set_active_scenarios",
    "list-requests": "handlers.admin:list_requests",
    "clear-requests": "handlers.admin:clear_requests",
    "list-webhook-subscriptions": "handlers.webhooks:list_subscriptions",
    "create-webhook-subscription": "handlers.webhooks:create_subscription",
    "delete-webhook-subscription": "handlers.webhooks:delete_subscription",
    "list-webhook-deliveries": "handlers.webhooks:list_deliveries",
    "redeliver-webhook": "handlers.webhooks:redeliver",
    "list-events": "handlers.streams:list_events",
    "stream-events": "handlers.streams:stream_events",
    "stream-outbox": "handlers.streams:stream_outbox",
}


def resolve(operation_id: str) -> Callable:
    """connexion's function resolver (and the express lane's): the handler of ``operation_id``."""
    handler = OPERATIONS[operation_id]
    if callable(handler):
        return handler
    module, _, name = handler.partition(":")
    return getattr(importlib.import_module(module), name)
