"""Webhook delivery for real: signed POSTs, in the background, at least once.

Each delivery keeps one id across its attempts (a receiver deduplicates on it). A non-2xx answer,
a refused connection or a time-out is retried with exponential backoff and jitter, up to a
bound; then the delivery is ``failed`` and can be redelivered from the admin API. Nothing here
runs on an API request's path: publishing only queues a delivery.

Delivery cannot jam or starve the API (issue 11): each subscription has its own lane
(``delivery_lane``: bounded queue, a few workers, circuit breaker), every attempt passes one gate
(at most ``max_in_flight`` attempts at once, and deliveries take at most ``loop_share`` of the event
loop's time, as ``loop_share`` measures it), every attempt ends within its deadline, and a reset
throws all of it away.

Signature: ``X-Sandbox-Signature: sha256=<hex>``, the HMAC-SHA256 with the subscription's secret of
``<X-Sandbox-Timestamp>.<raw body>``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import hmac
import itertools
import json
import logging
import random
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from baas_sandbox.adapters.delivery_lane import DeliveryLane
from baas_sandbox.adapters.loop_share import LoopShare
from baas_sandbox.adapters.own_address import targets_own_port
from baas_sandbox.clock import utcnow
from baas_sandbox.domain.model import timestamp
from baas_sandbox.ids import new_id

if TYPE_CHECKING:
    import ssl

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
    concurrency: int = 4  # attempts in flight per subscription
    queue_size: int = 1000  # pending deliveries per subscription; past that the oldest is dropped
    breaker_failures: int = 5  # consecutive failed attempts that open a subscription's circuit (0: never)
    breaker_cooldown: float = 30.0  # seconds the circuit stays open before a trial attempt
    max_in_flight: int = 64  # attempts in flight, all subscriptions together
    loop_share: float = 0.2  # most of the event loop's time deliveries may take

    @property
    def deadline(self) -> float:
        """An attempt's whole time, answer included: a receiver that trickles its answer under
        each read's time-out still frees the slot."""
        return 2 * self.timeout

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
    reason: str | None = None  # why it failed without an answer (given up, dropped)
    seq: int = field(repr=False, default=0)  # publication order: the log lists newest first
    _payload: bytes | None = field(repr=False, default=None)  # the body's bytes, encoded once

    def as_dict(self) -> dict:
        return {"id": self.id, "subscription_id": self.subscription_id, "url": self.url,
                "event_type": self.event_type, "body": self.body, "created_at": self.created_at,
                "state": self.state, "attempts": [vars(a).copy() for a in self.attempts], "reason": self.reason}

    @property
    def payload(self) -> bytes:
        if self._payload is None:
            self._payload = json.dumps(self.body, ensure_ascii=False, separators=(",", ":")).encode()
        return self._payload


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


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """Made once per process: building one takes tens of milliseconds."""
    import httpx

    return httpx.create_ssl_context()


def sign(secret: str, sent_at: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), sent_at.encode() + b"." + body, hashlib.sha256).hexdigest()


class DeliveryGate:
    """What every attempt passes: the loop share (waited for before a slot is taken, so a waiting
    attempt holds none) and a slot among ``max_in_flight``."""

    def __init__(self, policy: DeliveryPolicy) -> None:
        self.share = LoopShare(policy.loop_share)
        self._slots = asyncio.Semaphore(policy.max_in_flight)

    async def __aenter__(self) -> None:
        await self.share.turn()
        await self._slots.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self._slots.release()

    def start(self, work: Awaitable[None]) -> asyncio.Task:
        """A delivery task, its loop time charged to the share."""
        return asyncio.get_running_loop().create_task(self.share.run(work))


class WebhookDispatcher:
    """One namespace's subscriptions and deliveries. ``gate`` is the process's (shared by every
    namespace: the bound on attempts in flight and the loop share are the server's); ``clock`` is
    the namespace's (the times of attempts and subscriptions); each delivery names ``namespace``
    in its ``X-Sandbox-Namespace`` header."""

    def __init__(self, policy: DeliveryPolicy, seed: int | None = None,
                 refused: Callable[[str], str | None] = lambda _url: None, *,
                 gate: Callable[[], DeliveryGate] | None = None, clock: Callable[[], dt.datetime] = utcnow,
                 namespace: str = "default", ids: Callable[[], str] = new_id) -> None:
        self.policy = policy
        self.namespace = namespace
        self._clock, self._ids = clock, ids
        self._shared_gate = gate  # the process's gate, made at its first use (on the event loop)
        #: Why a URL must not be sent to now (it reaches the sandbox itself), checked again before each
        #: delivery: a subscription may predate what the sandbox learned of its own port.
        self._refused = refused
        self._rng = random.Random(seed)
        self._subscriptions: dict[str, Subscription] = {}
        self._lanes: dict[str, DeliveryLane] = {}  # subscription id -> its pending deliveries
        self._finished: OrderedDict[str, Delivery] = OrderedDict()  # the latest DELIVERY_LOG_SIZE
        self._seq = itertools.count(1)
        self._gate: DeliveryGate | None = None
        self._stopping: set[asyncio.Task] = set()  # workers cancelled by a reset, closing their sockets

    # -- subscriptions ----------------------------------------------------------------------------

    def subscribe(self, url: str, events: list[str], secret: str | None = None, *,
                  subscription_id: str | None = None, created_at: str | None = None) -> Subscription:
        subscription = Subscription(id=subscription_id or self._ids(), url=url,
                                    events=list(dict.fromkeys(events)),
                                    secret=secret or "whsec_" + secrets.token_urlsafe(24),
                                    created_at=created_at or timestamp(self._clock()))
        self._subscriptions[subscription.id] = subscription
        return subscription

    def unsubscribe(self, subscription_id: str) -> bool:
        """Its deliveries already pending go on (signed with its secret); none are made after."""
        found = self._subscriptions.pop(subscription_id, None) is not None
        self._forget_lane_if_idle(subscription_id)
        return found

    def subscriptions(self) -> list[Subscription]:
        return list(self._subscriptions.values())

    def adopt(self, subscriptions: list[Subscription]) -> None:
        """Deliver to exactly these from now on (as another process changed them in the store):
        deliveries already pending go on, as after an unsubscribe."""
        gone = set(self._subscriptions) - {s.id for s in subscriptions}
        self._subscriptions = {s.id: s for s in subscriptions}
        for subscription_id in gone:
            self._forget_lane_if_idle(subscription_id)

    def dispatch_state(self, subscription_id: str) -> dict:
        """How its deliveries go: the circuit and the number pending."""
        lane = self._lanes.get(subscription_id)
        if lane is None:
            return {"circuit": "closed", "pending": 0}
        return {"circuit": lane.circuit(), "pending": len(lane.pending)}

    # -- deliveries -------------------------------------------------------------------------------

    def publish(self, event_type: str, body: dict) -> list[Delivery]:
        """A delivery per subscription that wants ``event_type``, queued in its lane."""
        made = []
        for subscription in self._subscriptions.values():
            if subscription.wants(event_type):
                delivery = Delivery(id=new_id(), subscription_id=subscription.id, url=subscription.url,
                                    event_type=event_type, body=body, created_at=timestamp(self._clock()),
                                    secret=subscription.secret, seq=next(self._seq))
                self._enqueue(delivery)
                made.append(delivery)
        return made

    def deliveries(self) -> list[Delivery]:
        """Oldest first: the finished ones kept and every pending one."""
        pending = [d for lane in self._lanes.values() for d in lane.pending.values()]
        return sorted([*self._finished.values(), *pending], key=lambda d: d.seq)

    def delivery(self, delivery_id: str) -> Delivery | None:
        if delivery_id in self._finished:
            return self._finished[delivery_id]
        return next((lane.pending[delivery_id] for lane in self._lanes.values() if delivery_id in lane.pending),
                    None)

    def redeliver(self, delivery_id: str) -> Delivery | None:
        """Send a delivery again, same id, with a fresh series of attempts after the old ones."""
        delivery = self.delivery(delivery_id)
        if delivery is None:
            return None
        self._finished.pop(delivery_id, None)
        lane = self._lane(delivery.subscription_id)
        if lane is None:
            self._fail_unsent(delivery)
        else:
            lane.restart(delivery)
        return delivery

    def reset(self, subscriptions: list[Subscription]) -> None:
        """Back to these subscriptions (the fixtures'), with their ids and secrets unchanged, and
        nothing pending: every lane, worker, timer and connection of before is dropped."""
        self._stop_lanes()
        self._finished.clear()
        self._gate = None  # a fresh semaphore and share (unless the process's): nothing of a jammed past
        # carries over
        self._subscriptions = {s.id: Subscription(s.id, s.url, list(s.events), s.secret, s.created_at)
                               for s in subscriptions}

    async def aclose(self) -> None:
        self._stop_lanes()
        if self._stopping:
            await asyncio.wait(list(self._stopping), timeout=5)

    # -- inside -----------------------------------------------------------------------------------

    def _enqueue(self, delivery: Delivery) -> None:
        lane = self._lane(delivery.subscription_id)
        if lane is None:
            self._fail_unsent(delivery)
        else:
            lane.enqueue(delivery)

    def _lane(self, subscription_id: str) -> DeliveryLane | None:
        """The subscription's lane, made on first use; None with no running event loop."""
        lane = self._lanes.get(subscription_id)
        if lane is not None:
            return lane
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # a unit test or a script: nothing can be sent from here
            return None
        if self._gate is None:
            self._gate = self._shared_gate() if self._shared_gate is not None else DeliveryGate(self.policy)
        lane = self._lanes[subscription_id] = DeliveryLane(
            self.policy, self._gate, self._attempt, self._new_client,
            lambda delivery: self._finish(delivery, subscription_id), self._rng)
        return lane

    def _finish(self, delivery: Delivery, subscription_id: str) -> None:
        if delivery.state == "failed" and not delivery.reason.startswith("dropped"):
            logger.warning("webhook %s to %s failed: %s", delivery.id, delivery.url, delivery.reason)
        self._finished[delivery.id] = delivery
        if len(self._finished) > DELIVERY_LOG_SIZE:
            self._finished.popitem(last=False)
        if subscription_id not in self._subscriptions:
            self._forget_lane_if_idle(subscription_id)

    def _forget_lane_if_idle(self, subscription_id: str) -> None:
        lane = self._lanes.get(subscription_id)
        if lane is not None and subscription_id not in self._subscriptions and not lane.pending:
            del self._lanes[subscription_id]  # its workers, if any, end with their last attempt

    def _fail_unsent(self, delivery: Delivery) -> None:
        logger.warning("webhook %s not sent: no running event loop", delivery.id)
        delivery.state, delivery.reason = "failed", "not sent: no running event loop"
        self._finished[delivery.id] = delivery

    def _stop_lanes(self) -> None:
        for lane in self._lanes.values():
            for worker in lane.close():
                self._stopping.add(worker)
                worker.add_done_callback(self._stopping.discard)
        self._lanes.clear()

    def _new_client(self) -> httpx.AsyncClient:
        """A worker's own client: one connection, never waited for by another delivery."""
        import httpx  # here: webhooks are rarely used, and httpx is slow to import (start-up time)

        return httpx.AsyncClient(follow_redirects=False, trust_env=False, verify=_ssl_context(),
                                 timeout=self.policy.timeout,
                                 limits=httpx.Limits(max_connections=1, max_keepalive_connections=1))

    async def _attempt(self, client: httpx.AsyncClient, delivery: Delivery) -> tuple[Attempt, bool, bool]:
        """One POST; (what happened, whether ``client`` may be used again, whether it is final:
        a URL that must not be sent to is not retried)."""
        import httpx

        refused = await asyncio.to_thread(self._refused, delivery.url)  # may resolve a name: off the loop
        if refused is not None:
            attempt = Attempt(timestamp(self._clock()), None, f"not sent: the URL {refused}", 0.0)
            delivery.attempts.append(attempt)
            return attempt, True, True
        payload = delivery.payload
        # Real time, not the namespace's: a receiver checks the signature's freshness with its own clock.
        sent_at = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Sandbox-Event": delivery.event_type,
            "X-Sandbox-Namespace": self.namespace,
            "X-Sandbox-Delivery": delivery.id,
            "X-Sandbox-Timestamp": sent_at,
            "X-Sandbox-Signature": sign(delivery.secret, sent_at, payload),
        }
        started, at = time.perf_counter(), timestamp(self._clock())
        status, error, reusable = None, None, True
        try:
            async with asyncio.timeout(self.policy.deadline):
                response = await client.post(delivery.url, content=payload, headers=headers)
            status = response.status_code
        except httpx.TimeoutException:
            error = f"no answer within {self.policy.timeout} s"
        except TimeoutError:  # our deadline cancelled the request: its connection may be left half-made
            error, reusable = f"no complete answer within {self.policy.deadline} s", False
        except Exception as exc:  # noqa: BLE001 - every attempt must end delivered or failed, never stuck
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        attempt = Attempt(at, status, error, round((time.perf_counter() - started) * 1000, 3))
        delivery.attempts.append(attempt)
        del delivery.attempts[:-MAX_ATTEMPTS_KEPT]
        return attempt, reusable, False
