"""The running sandbox: settings, store, vault, clock, scheduler and what follows each event."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from baas_sandbox.adapters.broadcast import Broadcaster
from baas_sandbox.adapters.fixtures import FixtureError, Fixtures
from baas_sandbox.adapters.own_address import targets_own_port
from baas_sandbox.adapters.repository import InMemoryStore, SandboxStore
from baas_sandbox.adapters.vault import Vault
from baas_sandbox.adapters.webhooks import (
    DeliveryPolicy,
    WebhookDispatcher,
    subscription_problem,
)
from baas_sandbox.clock import utcnow
from baas_sandbox.defaults import DEFAULT_FIXTURES, DEFAULT_MAX_BODY_SIZE, LOCAL_ORIGINS, LOOPBACK_HOSTS
from baas_sandbox.domain import errors, events
from baas_sandbox.domain.model import timestamp
from baas_sandbox.http.journal import Journal
from baas_sandbox.ids import new_id
from baas_sandbox.scenarios.library import ScenarioLibrary
from baas_sandbox.services.data_events import SUBSCRIBABLE, data_event
from baas_sandbox.services.scheduler import Scheduler

logger = logging.getLogger("baas_sandbox")


@dataclass
class Settings:
    fixtures_dir: Path = DEFAULT_FIXTURES
    #: Seconds from a request becoming ``pending`` to the DICT decision.
    activation_delay: float = 1.0
    #: Seconds a verification code stays valid.
    code_ttl: float = 600.0
    #: Validate responses against the spec (on in tests; a violation answers 500).
    validate_responses: bool = False
    #: Answer the product operations' everyday requests in one step (http/express.py); off, every
    #: request takes the full pipeline (the same answers, slower: for comparison and diagnosis).
    express_lane: bool = True
    #: The process's full garbage collections only when the server is idle (``baas_sandbox.gc_policy``);
    #: a process-wide setting, for the process that serves one sandbox (``baas-sandbox serve``).
    collect_when_idle: bool = False
    #: Regular expression of the browser origins allowed by CORS.
    cors_origin_regex: str = LOCAL_ORIGINS
    #: Scenarios active from the start, in order.
    scenarios: list[str] = field(default_factory=list)
    #: Seed of the scenarios' random choices (probability budgets, latency): reproducible runs.
    seed: int | None = None
    #: How many requests the journal keeps.
    journal_size: int = 1000
    #: Watch the scenario folder and reload edited files.
    hot_reload: bool = True
    #: Webhook delivery: attempts, backoff before the 2nd attempt (doubling), receiver time-out.
    webhook_attempts: int = 6
    webhook_backoff: float = 1.0
    webhook_timeout: float = 5.0
    #: Hosts webhooks may be sent to ("*": any); by default this machine only.
    webhook_allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS
    #: The names the admin API answers to (its ``Host``; "*": any): DNS rebinding (http/admin_guard.py).
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS
    #: The admin API's bearer token; None: none needed (loopback, or ``--no-admin-auth``). Never shown.
    admin_token: str | None = field(default=None, repr=False)
    #: The port the server listens on, when known before it starts (the CLI's ``--port``); the app
    #: also learns it from its first request. Webhooks may not point there (adapters/own_address.py).
    listen_port: int | None = None
    #: Seconds an email or phone key request waits for its code before it is rejected (key freed).
    validation_window: float = 3600.0
    #: The largest request body accepted, in bytes (413 past it; ``http/body_limit.py``).
    max_body_size: int = DEFAULT_MAX_BODY_SIZE
    #: Webhook dispatch (adapters/delivery_lane.py): attempts in flight per subscription, pending
    #: deliveries kept per subscription (past that the oldest is dropped, ``failed``), consecutive
    #: failed attempts that open its circuit (0: never) and for how many seconds, attempts in flight
    #: for all subscriptions, and the most of the event loop's time deliveries may take.
    webhook_concurrency: int = 4
    webhook_queue_size: int = 1000
    webhook_breaker_failures: int = 5
    webhook_breaker_cooldown: float = 30.0
    webhook_max_in_flight: int = 64
    webhook_loop_share: float = 0.2

    def subscription_problem(self, entry: dict, own_ports: Collection[int] = ()) -> tuple[str, str] | None:
        ports = {*own_ports, *([self.listen_port] if self.listen_port else [])}
        return subscription_problem(entry["url"], entry["events"], SUBSCRIBABLE, self.webhook_allowed_hosts, ports)

    @property
    def scenarios_dir(self) -> Path:
        return self.fixtures_dir / "scenarios"


class Sandbox:
    """Everything a handler needs, built once per app."""

    def __init__(self, settings: Settings, fixtures: Fixtures, scenarios: ScenarioLibrary,
                 store: SandboxStore | None = None, vault: Vault | None = None,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.settings = settings
        self.fixtures = fixtures
        self.scenarios = scenarios
        self.journal = Journal(settings.journal_size)
        self.store: SandboxStore = store or InMemoryStore()
        self.vault = vault or Vault.from_environment()
        self.clock = clock
        self.scheduler = Scheduler()
        self.live = Broadcaster()
        #: The ports this sandbox listens on (``Settings.listen_port``, and what its requests tell).
        self.own_ports: set[int] = {settings.listen_port} if settings.listen_port else set()
        self.webhooks = WebhookDispatcher(
            DeliveryPolicy(settings.webhook_attempts, settings.webhook_backoff, timeout=settings.webhook_timeout,
                           concurrency=settings.webhook_concurrency, queue_size=settings.webhook_queue_size,
                           breaker_failures=settings.webhook_breaker_failures,
                           breaker_cooldown=settings.webhook_breaker_cooldown,
                           max_in_flight=settings.webhook_max_in_flight, loop_share=settings.webhook_loop_share),
            seed=settings.seed,
            refused=lambda url: targets_own_port(url, self.own_ports),
        )
        # Made once: a reset keeps their ids and secrets, so a receiver set up from them keeps working.
        self._fixture_subscriptions = [
            self.webhooks.subscribe(entry["url"], entry["events"], entry.get("secret"))
            for entry in fixtures.subscriptions
        ]
        self._followers: dict[type, list[Callable[[events.Event], None]]] = {
            events.VerificationCodeSent: [self.record_outbox],
            events.KeyRequestDecided: [self._send_key_inclusion],
            events.CredentialSaved: [self._log_credential],
        }
        self.reset()

    def subscription_problem(self, entry: dict) -> tuple[str, str] | None:
        """Why a subscription cannot be accepted (``Settings.subscription_problem``, this sandbox's ports)."""
        return self.settings.subscription_problem(entry, self.own_ports)

    def reset(self) -> None:
        self.scheduler.cancel_all()
        self.store.load(self.fixtures.tenants, self.fixtures.accounts)
        self._seed_key_requests()
        self.scenarios.reset()
        self.webhooks.reset(self._fixture_subscriptions)

    def _seed_key_requests(self) -> None:
        # Imported here: the use cases import this module (they work on a Sandbox).
        from baas_sandbox.services.pix_keys import seed_waiting_request

        for index, entry in enumerate(self.fixtures.key_requests):
            try:
                seed_waiting_request(self, entry)
            except errors.DomainError as refused:  # a rule of the store (the limit, one owner): the
                # same fixtures are refused the same way at start, so a reset never meets this
                raise FixtureError(self.settings.fixtures_dir / "key_requests.yaml", None,
                                   f"key_requests[{index}]", str(refused)) from None

    def publish(self, *happened: events.Event) -> None:
        for event in happened:
            for follow in self._followers.get(type(event), ()):
                follow(event)
            self._emit_data_event(event)

    def record(self, kind: str, entry: dict) -> None:
        """Keep a log entry, and tell whoever is listening to that log live."""
        self.store.record(kind, entry)
        self.live.publish(kind, entry)

    def subscribe(self, event_type: type, follower: Callable[[events.Event], None]) -> None:
        self._followers.setdefault(event_type, []).append(follower)

    # -- what follows each event ------------------------------------------------------------------

    def _emit_data_event(self, event: events.Event) -> None:
        envelope = data_event(event, self.clock())
        if envelope is not None:
            self.record("events", envelope)
            self.webhooks.publish(envelope["event_type"], envelope)

    def record_outbox(self, event: events.Event) -> None:
        """The code "sent": kept for ``GET /__admin/outbox`` and its stream (what follows a
        ``VerificationCodeSent``, and the fixture key requests' codes)."""
        assert isinstance(event, events.VerificationCodeSent)
        self.record("outbox", {
            "message_id": new_id(),
            "pix_key_request_key": event.pix_key_request_key,
            "channel": event.channel,
            "destination": event.destination,
            "verification_code": event.verification_code,
            "sent_at": event.sent_at,
            "expires_at": event.expires_at,
        })

    def _send_key_inclusion(self, event: events.Event) -> None:
        assert isinstance(event, events.KeyRequestDecided)
        body = event.webhook_body()
        self.record("webhooks", {"webhook_type": "key_inclusion", "recorded_at": timestamp(self.clock()),
                                 "body": body})
        self.webhooks.publish("key_inclusion", body)

    @staticmethod
    def _log_credential(event: events.Event) -> None:
        assert isinstance(event, events.CredentialSaved)
        # Never the key: only which slot changed.
        logger.info("credential %s for tenant=%s provider=%s type=%s",
                    "replaced" if event.replaced else "saved",
                    event.tenant, event.provider, event.integration_type)


