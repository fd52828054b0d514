"""Webhook delivery for real: signed POSTs, in the background, at least once.

Each delivery keeps one id across its attempts (a receiver deduplicates on it). A non-2xx answer,
a refused connection or a time-out is retried with exponential backoff and jitter, up to a
bound; then the delivery is ``failed`` and can be redelivered from the admin API. Nothing here
runs on an API request's path: publishing only schedules a task.

Signature: ``X-Sandbox-Signature: sha256=<hex>``, the HMAC-SHA256 with the subscription's secret of
``<X-Sandbox-Timestamp>.<raw body>``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from baas_sandbox.adapters.own_address import targets_own_port
from baas_sandbox.clock import utcnow
from baas_sandbox.domain.model import timestamp

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger("baas_sandbox.webhooks")

USER_AGENT = "baas-sandbox-webhooks/1"

DELIVERY_LOG_SIZE = 1000


@dataclass(frozen=True)
class DeliveryPolicy:
    max_attempts: int = 6
    backoff: float = 1.0  # seconds before the 2nd attempt; doubles each time (with jitter)
    max_backoff: float = 60.0
    timeout: float = 5.0  # seconds to wait for the receiver's answer

    def delay_before(self, attempt: int, rng: random.Random) -> float:
        """Equal jitter: half the exponential bound, plus a random share of the other half, so the
        retries of many deliveries spread out while each still waits at least half its backoff."""
        bound = min(self.max_backoff, self.backoff * 2 ** (attempt - 2))
        return rng.uniform(bound / 2, bound)


@dataclass
class Subscription:
    id: str
    url: str
    events: list[str]
    secret: str
    created_at: str

    def wants(self, event_type: str) -> bool:
        return "*" in self.events or event_type in self.events


@dataclass
class Attempt:
    at: str
    status: int | None
    error: str | None
    duration_ms: float


MAX_ATTEMPTS_KEPT = 100  # redeliveries append attempts: keep the latest


@dataclass
class Delivery:
    id: str
    subscription_id: str
    url: str
    event_type: str
    body: dict
    created_at: str
    secret: str = field(repr=False, default="")  # signs every attempt, even after an unsubscribe
    state: str = "pending"  # pending, delivered, failed
    attempts: list[Attempt] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {key: value for key, value in asdict(self).items() if key != "secret"}


def subscription_problem(url: str, events: list[str], known_events: frozenset[str],
                         allowed_hosts: tuple[str, ...], own_ports: Collection[int] = ()) -> tuple[str, str] | None:
    """(field, problem) when a subscription cannot be accepted, else None. ``own_ports``: where the
    sandbox listens (a URL that reaches it is refused: ``own_address``)."""
    unknown = [name for name in events if name not in known_events]
    if unknown:
        return "events", (f"unknown {', '.join(map(repr, unknown))} (known: {', '.join(sorted(known_events))})")
    import httpx  # here: webhooks are rarely used, and httpx is slow to import (start-up time)

    try:
        host = (httpx.URL(url).host or "").lower()
    except (httpx.InvalidURL, ValueError) as exc:
        return "url", f"is not a valid URL ({exc})"
    if "*" not in allowed_hosts and host not in allowed_hosts:
        return "url", (f"host {host!r} is not allowed (allowed: {', '.join(allowed_hosts)}; "
                       "start the sandbox with --webhook-allowed-hosts to add one)")
    own = targets_own_port(url, own_ports)
    if own is not None:
        return "url", own
    return None


def sign(secret: str, sent_at: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), sent_at.encode() + b"." + body, hashlib.sha256).hexdigest()


class WebhookDispatcher:
    def __init__(self, policy: DeliveryPolicy, seed: int | None = None,
                 refused: Callable[[str], str | None] = lambda _url: None) -> None:
        self.policy = policy
        #: Why a URL must not be sent to now (it reaches the sandbox itself), checked again before each
        #: delivery: a subscription may predate what the sandbox learned of its own port.
        self._refused = refused
        self._rng = random.Random(seed)
        self._subscriptions: dict[str, Subscription] = {}
        self._deliveries: OrderedDict[str, Delivery] = OrderedDict()
        self._running: dict[str, asyncio.Task] = {}  # delivery id -> its series of attempts
        self._client: httpx.AsyncClient | None = None

    # -- subscriptions ----------------------------------------------------------------------------

    def subscribe(self, url: str, events: list[str], secret: str | None = None) -> Subscription:
        subscription = Subscription(id=str(uuid.uuid4()), url=url, events=list(dict.fromkeys(events)),
                                    secret=secret or "whsec_" + secrets.token_urlsafe(24),
                                    created_at=timestamp(utcnow()))
        self._subscriptions[subscription.id] = subscription
        return subscription

    def unsubscribe(self, subscription_id: str) -> bool:
        return self._subscriptions.pop(subscription_id, None) is not None

    def subscriptions(self) -> list[Subscription]:
        return list(self._subscriptions.values())

    # -- deliveries -------------------------------------------------------------------------------

    def publish(self, event_type: str, body: dict) -> list[Delivery]:
        """A delivery per subscription that wants ``event_type``, sent in the background."""
        made = []
        for subscription in self._subscriptions.values():
            if subscription.wants(event_type):
                delivery = Delivery(id=str(uuid.uuid4()), subscription_id=subscription.id, url=subscription.url,
                                    event_type=event_type, body=body, created_at=timestamp(utcnow()),
                                    secret=subscription.secret)
                self._deliveries[delivery.id] = delivery
                while len(self._deliveries) > DELIVERY_LOG_SIZE:
                    self._deliveries.popitem(last=False)
                self._start(delivery)
                made.append(delivery)
        return made

    def deliveries(self) -> list[Delivery]:
        return list(self._deliveries.values())

    def delivery(self, delivery_id: str) -> Delivery | None:
        return self._deliveries.get(delivery_id)

    def redeliver(self, delivery_id: str) -> Delivery | None:
        """Send a delivery again, same id, with a fresh series of attempts after the old ones."""
        delivery = self._deliveries.get(delivery_id)
        if delivery is None:
            return None
        running = self._running.pop(delivery_id, None)
        if running is not None:  # one series at a time: the new one replaces the running one
            running.cancel()
        delivery.state = "pending"
        self._start(delivery)
        return delivery

    def reset(self, subscriptions: list[Subscription]) -> None:
        """Back to these subscriptions (the fixtures'), with their ids and secrets unchanged."""
        for task in self._running.values():
            task.cancel()
        self._running.clear()
        self._deliveries.clear()
        self._subscriptions = {s.id: Subscription(s.id, s.url, list(s.events), s.secret, s.created_at)
                               for s in subscriptions}

    async def aclose(self) -> None:
        for task in list(self._running.values()):
            task.cancel()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _start(self, delivery: Delivery) -> None:
        try:
            task = asyncio.get_running_loop().create_task(self._deliver(delivery))
        except RuntimeError:  # no event loop: nothing can be sent from here (a unit test, a script)
            logger.warning("webhook %s not sent: no running event loop", delivery.id)
            delivery.state = "failed"
            return
        self._running[delivery.id] = task
        task.add_done_callback(lambda done: self._running.pop(delivery.id, None)
                               if self._running.get(delivery.id) is done else None)

    async def _deliver(self, delivery: Delivery) -> None:
        payload = json.dumps(delivery.body, ensure_ascii=False, separators=(",", ":")).encode()
        refused = await asyncio.to_thread(self._refused, delivery.url)  # may resolve a name: off the loop
        if refused is not None:
            delivery.attempts.append(Attempt(timestamp(utcnow()), None, f"not sent: the URL {refused}", 0.0))
            delivery.state = "failed"
            logger.warning("webhook %s to %s not sent: the URL %s", delivery.id, delivery.url, refused)
            return
        for attempt in range(1, self.policy.max_attempts + 1):
            if attempt > 1:
                await asyncio.sleep(self.policy.delay_before(attempt, self._rng))
            if await self._attempt(delivery, payload):
                delivery.state = "delivered"
                return
        delivery.state = "failed"
        logger.warning("webhook %s to %s failed after %d attempts", delivery.id, delivery.url,
                       self.policy.max_attempts)

    async def _attempt(self, delivery: Delivery, payload: bytes) -> bool:
        sent_at = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Sandbox-Event": delivery.event_type,
            "X-Sandbox-Delivery": delivery.id,
            "X-Sandbox-Timestamp": sent_at,
            "X-Sandbox-Signature": sign(delivery.secret, sent_at, payload),
        }
        import httpx

        started, at = time.perf_counter(), timestamp(utcnow())
        status, error = None, None
        try:
            response = await self._http().post(delivery.url, content=payload, headers=headers,
                                               timeout=self.policy.timeout)
            status = response.status_code
        except httpx.TimeoutException:
            error = f"no answer within {self.policy.timeout} s"
        except Exception as exc:  # noqa: BLE001 - every attempt must end delivered or failed, never stuck
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        delivery.attempts.append(Attempt(at, status, error, round((time.perf_counter() - started) * 1000, 3)))
        del delivery.attempts[:-MAX_ATTEMPTS_KEPT]
        return status is not None and 200 <= status < 300

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False)
        return self._client
