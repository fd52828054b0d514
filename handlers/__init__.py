"""The spec's operations, by operationId: each handler parses, calls a service, shapes the answer.

The spec keeps the platform's own operationIds (``post-credentials``), so they are mapped here
explicitly rather than derived from module paths. A handler's module is imported when the handler
is first resolved: the product API's handlers serve the first requests, while the admin API's
modules (and connexion, which they use) are still loading (``baas_sandbox.app``).

The folder is ``handlers/`` at the checkout's top level and ``baas_sandbox/handlers`` once installed
(pyproject.toml maps it): it is always imported as ``baas_sandbox.handlers``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

#: operationId -> "module:function" (or, in tests, the function itself).
OPERATIONS: dict[str, str | Callable] = {
    "post-credentials": "baas_sandbox.handlers.credentials:post_credentials",
    "create-pix-key": "baas_sandbox.handlers.pix_keys:create_pix_key",
    "list-pix-keys": "baas_sandbox.handlers.pix_keys:list_pix_keys",
    "validate-pix-key-twofa": "baas_sandbox.handlers.pix_keys:validate_twofa",
    "resend-pix-key-twofa": "baas_sandbox.handlers.pix_keys:resend_twofa",
    "lookup-pix-key": "baas_sandbox.handlers.pix_keys:lookup_pix_key",
    "delete-pix-key": "baas_sandbox.handlers.pix_keys:delete_pix_key",
    "create-key-claim": "baas_sandbox.handlers.claims:create_claim",
    "validate-key-claim-twofa": "baas_sandbox.handlers.claims:validate_claim_twofa",
    "confirm-key-claim": "baas_sandbox.handlers.claims:confirm_claim",
    "cancel-key-claim": "baas_sandbox.handlers.claims:cancel_claim",
    "ask-key-claim-donator-validation": "baas_sandbox.handlers.claims:ask_donator_validation",
    "list-account-key-claims": "baas_sandbox.handlers.claims:list_claims",
    "simulate-received-key-claim": "baas_sandbox.handlers.claims:simulate_received_claim",
    "simulate-key-claim-response": "baas_sandbox.handlers.claims:simulate_claim_response",
    "simulate-key-claim-completion": "baas_sandbox.handlers.claims:simulate_claim_completion",
    "reset-sandbox": "baas_sandbox.handlers.admin:reset_sandbox",
    "list-accounts": "baas_sandbox.handlers.admin:list_accounts",
    "create-account": "baas_sandbox.handlers.admin:create_account",
    "list-outbox": "baas_sandbox.handlers.admin:list_outbox",
    "list-dict-entries": "baas_sandbox.handlers.admin:list_dict_entries",
    "create-dict-entry": "baas_sandbox.handlers.admin:create_dict_entry",
    "list-rate-limits": "baas_sandbox.handlers.admin:list_rate_limits",
    "list-webhooks": "baas_sandbox.handlers.admin:list_webhooks",
    "list-scenarios": "baas_sandbox.handlers.admin:list_scenarios",
    "set-active-scenarios": "baas_sandbox.handlers.admin:set_active_scenarios",
    "list-requests": "baas_sandbox.handlers.admin:list_requests",
    "clear-requests": "baas_sandbox.handlers.admin:clear_requests",
    "list-webhook-subscriptions": "baas_sandbox.handlers.webhooks:list_subscriptions",
    "create-webhook-subscription": "baas_sandbox.handlers.webhooks:create_subscription",
    "delete-webhook-subscription": "baas_sandbox.handlers.webhooks:delete_subscription",
    "list-webhook-deliveries": "baas_sandbox.handlers.webhooks:list_deliveries",
    "redeliver-webhook": "baas_sandbox.handlers.webhooks:redeliver",
    "list-events": "baas_sandbox.handlers.streams:list_events",
    "stream-events": "baas_sandbox.handlers.streams:stream_events",
    "stream-outbox": "baas_sandbox.handlers.streams:stream_outbox",
    "list-namespaces": "baas_sandbox.handlers.namespaces:list_namespaces",
    "delete-namespace": "baas_sandbox.handlers.namespaces:delete_namespace",
    "get-clock": "baas_sandbox.handlers.clock:get_clock",
    "set-clock": "baas_sandbox.handlers.clock:set_clock",
    "reset-clock": "baas_sandbox.handlers.clock:reset_clock",
    "advance-clock": "baas_sandbox.handlers.clock:advance_clock",
    "get-state": "baas_sandbox.handlers.state:get_state",
    "put-state": "baas_sandbox.handlers.state:put_state",
    "get-front-door": "baas_sandbox.handlers.front_door:front_door",
    "get-admin-front-door": "baas_sandbox.handlers.front_door:front_door",
    "get-console": "baas_sandbox.handlers.console:console_page",
    "get-console-script": "baas_sandbox.handlers.console:console_script",
    "get-console-style": "baas_sandbox.handlers.console:console_style",
    "list-tenants": "baas_sandbox.handlers.console:list_tenants",
    "get-health": "baas_sandbox.handlers.admin:get_health",
    "list-key-requests": "baas_sandbox.handlers.console:list_key_requests",
}


def resolve(operation_id: str) -> Callable:
    """connexion's function resolver (and the express lane's): the handler of ``operation_id``."""
    handler = OPERATIONS[operation_id]
    if callable(handler):
        return handler
    module, _, name = handler.partition(":")
    return getattr(importlib.import_module(module), name)
