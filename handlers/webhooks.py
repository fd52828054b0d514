"""/__admin/webhooks/subscriptions and /__admin/webhooks/deliveries."""

from __future__ import annotations

from dataclasses import asdict

from baas_sandbox.adapters.webhooks import Subscription, WebhookDispatcher
from baas_sandbox.http.context import current_sandbox
from baas_sandbox.http.errors import json_response


async def list_subscriptions():
    webhooks = current_sandbox().webhooks
    return {"subscriptions": [subscription_view(webhooks, s) for s in webhooks.subscriptions()]}, 200


async def create_subscription(body: dict):
    sandbox = current_sandbox()
    problem = sandbox.subscription_problem(body)
    if problem is not None:
        return json_response(400, {"code": "SBX000400", "message": "Invalid request",
                                   "details": f"{problem[0]}: {problem[1]}"})
    subscription = await sandbox.add_webhook_subscription(body["url"], body["events"], body.get("secret"))
    return subscription_view(sandbox.webhooks, subscription), 201


async def delete_subscription(subscription_id: str):
    if not await current_sandbox().remove_webhook_subscription(subscription_id):
        return not_found("subscription", subscription_id)
    return None, 204


async def list_deliveries(state: str | None = None, event_type: str | None = None):
    deliveries = [d.as_dict() for d in reversed(current_sandbox().webhooks.deliveries())
                  if (state is None or d.state == state) and (event_type is None or d.event_type == event_type)]
    return {"deliveries": deliveries}, 200


async def redeliver(delivery_id: str):
    delivery = current_sandbox().webhooks.redeliver(delivery_id)
    if delivery is None:
        return not_found("delivery", delivery_id)
    return delivery.as_dict(), 202


def subscription_view(webhooks: WebhookDispatcher, subscription: Subscription) -> dict:
    """The subscription and how its deliveries go (circuit, pending): why they may be waiting."""
    return asdict(subscription) | webhooks.dispatch_state(subscription.id)


def not_found(what: str, key: str):
    return json_response(404, {"code": "SBX000404", "message": "Not Found", "details": f"no {what} {key}"})
