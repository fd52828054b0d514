"""One namespace's sandbox: its state (the store), its clock and due work, and what follows each
event in it; and the ``Settings`` of the process that serves every namespace."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from baas_sandbox.adapters.broadcast import Broadcaster
from baas_sandbox.adapters.fixtures import FixtureError, Fixtures
from baas_sandbox.adapters.own_address import targets_own_port
from baas_sandbox.adapters.process_bus import LocalBus, ProcessBus, RedisBus
from baas_sandbox.adapters.repository import InMemoryStore, SandboxStore, StoreUnavailable
from baas_sandbox.adapters.vault import Vault
from baas_sandbox.adapters.webhooks import (
    DeliveryGate,
    DeliveryPolicy,
    Subscription,
    WebhookDispatcher,
    subscription_problem,
)
from baas_sandbox.clock import REAL_TIME, ClockSetting, utcnow
from baas_sandbox.defaults import DEFAULT_FIXTURES, DEFAULT_MAX_BODY_SIZE, LOCAL_ORIGINS, LOOPBACK_HOSTS
from baas_sandbox.domain import errors, events
from baas_sandbox.domain.due_work import DueJob
from baas_sandbox.domain.model import timestamp
from baas_sandbox.http.journal import Journal, MemoryBudget
from baas_sandbox.ids import new_id
from baas_sandbox.scenarios.library import NamespaceScenarios, ScenarioLibrary
from baas_sandbox.services.kept_deliveries import KeptDeliveries
from baas_sandbox.services.data_events import SUBSCRIBABLE, data_event

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
    #: Namespaces (``X-Sandbox-Namespace``): how many may exist at once, and the seconds without a
    #: request after which one is dropped (0: never; the default namespace never is).
    max_namespaces: int = 1000
    namespace_idle_ttl: float = 3600.0
    #: A JSON file every namespace is loaded from at start and saved to (at shutdown, and every
    #: ``state_save_interval`` seconds when something changed); None: no state is kept.
    state_file: Path | None = None
    state_save_interval: float = 5.0
    #: Every verification code this value (6 digits; the provider's sandbox uses 329329), for tests
    #: that type it; None: a new random code each time.
    fixed_verification_code: str | None = None
    #: Where the state lives: None, this process's memory; a Redis URL, a server shared by every
    #: process started with it (adapters/redis_store.py). Each store call waits ``store_timeout``
    #: seconds at most (then 503 SBX000503).
    store_url: str | None = None
    store_timeout: float = 2.0
    #: With a shared store: seconds a process holds a pending webhook delivery without renewing its
    #: lease (it renews every third of that); past it, another process takes the delivery over
    #: (services/kept_deliveries.py).
    webhook_lease: float = 10.0

    def subscription_problem(self, entry: dict, own_ports: Collection[int] = ()) -> tuple[str, str] | None:
        ports = {*own_ports, *([self.listen_port] if self.listen_port else [])}
        return subscription_problem(entry["url"], entry["events"], SUBSCRIBABLE, self.webhook_allowed_hosts, ports)

    @property
    def scenarios_dir(self) -> Path:
        return self.fixtures_dir / "scenarios"


@dataclass
class Shared:
    """What every namespace of a process shares: its settings, the fixtures (read and checked once),
    the scenario files, the vault, the webhook gate, the ports it listens on, the real clock and the
    id source. A namespace's own state is its ``Sandbox``'s."""

    settings: Settings
    fixtures: Fixtures
    scenarios: ScenarioLibrary
    vault: Vault = field(default_factory=Vault.from_environment)
    real_clock: Callable[[], dt.datetime] = utcnow
    ids: Callable[[], str] = new_id
    #: The ports this sandbox listens on (``Settings.listen_port``, and what its requests tell).
    own_ports: set[int] = field(default_factory=set)
    journal_budget: MemoryBudget = field(default_factory=MemoryBudget)
    #: The spec's ``NamespaceState`` schema, as JSON Schema: what a snapshot is checked against.
    state_schema: dict | None = None

    def __post_init__(self) -> None:
        if self.settings.listen_port:
            self.own_ports.add(self.settings.listen_port)
        settings = self.settings
        self.delivery_policy = DeliveryPolicy(
            settings.webhook_attempts, settings.webhook_backoff, timeout=settings.webhook_timeout,
            concurrency=settings.webhook_concurrency, queue_size=settings.webhook_queue_size,
            breaker_failures=settings.webhook_breaker_failures, breaker_cooldown=settings.webhook_breaker_cooldown,
            max_in_flight=settings.webhook_max_in_flight, loop_share=settings.webhook_loop_share)
        self._gate: DeliveryGate | None = None
        #: The Redis client of ``--store redis://…`` (made by ``new_store``), None until then.
        self.redis = None
        self._bus: ProcessBus | None = None
        self._owner: tuple[int, str] | None = None

    @property
    def owner(self) -> str:
        """This process, as the leases of the webhook deliveries it attempts name it: made in the
        process that serves (``--workers`` forks after this object is built), unique to it."""
        pid = os.getpid()
        if self._owner is None or self._owner[0] != pid:
            self._owner = (pid, f"{socket.gethostname()}:{pid}:{secrets.token_hex(4)}")
        return self._owner[1]

    @property
    def store_kind(self) -> str:
        """``memory`` or ``redis`` (``Settings.store_url``)."""
        return "memory" if self.settings.store_url is None else "redis"

    def new_store(self, name: str) -> SandboxStore:
        """An empty store for namespace ``name``: in this process's memory, or in the shared Redis
        (its client made at the first call, on the serving loop, which it belongs to)."""
        settings = self.settings
        if settings.store_url is None:
            return InMemoryStore(settings.journal_size, self.journal_budget)
        from baas_sandbox.adapters.redis_store import RedisStore  # redis-py: only when used

        return RedisStore(self.redis_client(), name, journal_size=settings.journal_size,
                          journal_budget=self.journal_budget)

    def redis_client(self):
        """The client of ``--store redis://…``, made at the first call (on the serving loop)."""
        if self.redis is None:
            from baas_sandbox.adapters.redis_store import connect

            assert self.settings.store_url is not None
            self.redis = connect(self.settings.store_url, timeout=self.settings.store_timeout)
        return self.redis

    @property
    def bus(self) -> ProcessBus:
        """What this process tells the others sharing its store (nobody, with the memory store)."""
        if self._bus is None:
            self._bus = LocalBus() if self.settings.store_url is None else RedisBus(self.redis_client(), self.ids())
        return self._bus

    async def close(self) -> None:
        """The server stops: the store's connections are closed."""
        if self.redis is not None:
            client, self.redis = self.redis, None
            await client.aclose()

    @property
    def delivery_gate(self) -> DeliveryGate:
        """The process's bound on webhook attempts in flight and their share of the loop (made on the
        event loop, at the first delivery)."""
        if self._gate is None:
            self._gate = DeliveryGate(self.delivery_policy)
        return self._gate


def _secret_context(subscription_id: str) -> str:
    """What a subscription's sealed secret is bound to (AES-GCM's associated data): its id."""
    return f"webhook-subscription:{subscription_id}"


#: Seconds a process waits for another one making a namespace (its fixtures stored) before
#: answering 503: making one takes milliseconds.
SETUP_WAIT = 10.0

#: Jobs run per ``run_due`` call at most: a job that keeps scheduling work due at once cannot
#: hold the event loop (what is left runs at the next wake-up).
MAX_JOBS_PER_RUN = 10_000


class Sandbox:
    """One namespace: an independent sandbox (accounts, keys, credentials, codes, webhooks, events,
    journal, scenarios, clock), all of it in its store or its own objects, none shared with another
    namespace. Built from the fixtures on a namespace's first request."""

    def __init__(self, shared: Shared, name: str = "default", store: SandboxStore | None = None) -> None:
        self.name = name
        self.shared = shared
        self.settings = shared.settings
        self.fixtures = shared.fixtures
        self.vault = shared.vault
        self.own_ports = shared.own_ports
        self.ids = shared.ids
        self._real_clock = shared.real_clock
        #: The namespace's clock setting as last read from its store (every request reads it again
        #: first, in ``settle``): the clock is read everywhere, synchronously, and changes rarely.
        self._setting: ClockSetting = REAL_TIME
        self.store: SandboxStore = store or InMemoryStore(self.settings.journal_size, shared.journal_budget)
        self.scenarios = NamespaceScenarios(shared.scenarios, self.store)
        self.live = Broadcaster()
        self.webhooks = WebhookDispatcher(
            shared.delivery_policy, seed=self.settings.seed,
            refused=lambda url: targets_own_port(url, self.own_ports),
            gate=lambda: shared.delivery_gate, clock=self.clock, namespace=name, ids=self.ids)
        #: With a shared store, the deliveries are kept in it (one sandbox's across its processes,
        #: taken over when their process dies); else they live in the dispatcher only.
        self.kept_deliveries: KeptDeliveries | None = None
        if not isinstance(self.store, InMemoryStore):
            self.kept_deliveries = KeptDeliveries(
                self.webhooks, self.store, self.vault, owner=shared.owner, lease=self.settings.webhook_lease,
                real_clock=self._real_clock, namespace=name)
            self.webhooks.keeper = self.kept_deliveries
        now = self._real_clock()
        self.created_at = now
        self.last_used = now  # real time: what the idle time-out measures
        self._alarm: asyncio.TimerHandle | None = None
        self._alarm_for: tuple | None = None  # (due time, clock setting) the alarm was set for
        self._ringing: set[asyncio.Task] = set()
        #: The version of the webhook subscriptions the dispatcher holds (None: not read yet).
        self._subscriptions_version: int | None = None
        #: While a due job runs, the moment it fell due: what it writes is dated then, not at the
        #: end of a clock jump that made several jobs due at once.
        self._running_at: dt.datetime | None = None
        #: While fixtures are stored: what they do is the starting state, not events.
        self._quiet = False
        # Made once: a reset keeps their ids and secrets, so a receiver set up from them keeps working.
        self._fixture_subscriptions = [
            self.webhooks.subscribe(entry["url"], entry["events"], entry.get("secret"))
            for entry in self.fixtures.subscriptions
        ]
        self._followers: dict[type, list[Callable[[events.Event], Awaitable[None] | None]]] = {
            events.VerificationCodeSent: [self.record_outbox],
            events.KeyRequestDecided: [self._send_key_inclusion],
            events.ClaimStatusChanged: [self._send_claim_request],
            events.CredentialSaved: [self._log_credential],
        }

    @classmethod
    async def start(cls, shared: Shared, name: str = "default", store: SandboxStore | None = None) -> "Sandbox":
        """A namespace made from the fixtures (its state stored: ``reset``), or, in a store shared
        with other processes, joined once the process that makes it has made it: made once."""
        sandbox = cls(shared, name, store)
        await sandbox._make_or_join()
        await sandbox.settle()
        return sandbox

    async def _make_or_join(self) -> None:
        """Store the fixtures, unless another process sharing the store does (then wait for it)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETUP_WAIT
        while True:
            if await self.store.setup_claim():
                try:
                    await self.reset()
                except BaseException:
                    await self.store.drop()  # half made: the next first request makes it again
                    raise
                return
            state = await self.store.setup_state()
            if state == "ready":
                self.store.know_tenants(self.fixtures.tenants)
                return
            if state is None:
                continue  # its maker gave up (or died, and its claim expired): claim it again
            if loop.time() > deadline:
                raise StoreUnavailable(f"namespace {self.name} is still being made by another process")
            await asyncio.sleep(0.01)

    def subscription_problem(self, entry: dict) -> tuple[str, str] | None:
        """Why a subscription cannot be accepted (``Settings.subscription_problem``, this sandbox's ports)."""
        return self.settings.subscription_problem(entry, self.own_ports)

    async def reset(self) -> None:
        """Back to the fixtures: state, clock (real time), due work, scenarios, webhooks. The journal
        is kept (``DELETE /__admin/requests`` clears it): it shows what led to the reset."""
        self._disarm()
        await self.store.load(self.fixtures.tenants, self.fixtures.accounts)
        self._setting = REAL_TIME
        for entry in self.fixtures.dict_entries:  # checked at load: none clashes with another key
            await self.store.add_dict_entry(entry)
        await self._seed_key_requests()
        await self._seed_claims()
        await self.store.setup_finished()  # (again, after a reset): other processes may use it
        self.scenarios.adopt(None)  # the load cleared them: the start-up selection, counts at zero
        self.webhooks.reset(self._fixture_subscriptions)
        await self.keep_subscriptions(self._fixture_subscriptions)

    def close(self) -> None:
        """The namespace is dropped: no timer, no delivery, no journal bytes left behind."""
        self._disarm()
        self.webhooks.reset([])
        self.journal.release()

    async def _seed_key_requests(self) -> None:
        # Imported here: the use cases import this module (they work on a Sandbox).
        from baas_sandbox.services.pix_keys import seed_waiting_request

        for index, entry in enumerate(self.fixtures.key_requests):
            try:
                await seed_waiting_request(self, entry)
            except errors.DomainError as refused:  # a rule of the store (the limit, one owner): the
                # same fixtures are refused the same way at start, so a reset never meets this
                raise FixtureError(self.settings.fixtures_dir / "key_requests.yaml", None,
                                   f"key_requests[{index}]", str(refused)) from None

    async def _seed_claims(self) -> None:
        from baas_sandbox.services.claims import seed_claim

        for index, entry in enumerate(self.fixtures.claims):
            try:
                await seed_claim(self, entry)
            except errors.DomainError as refused:
                raise FixtureError(self.settings.fixtures_dir / "claims.yaml", None,
                                   f"claims[{index}]", str(refused)) from None

    # -- time ---------------------------------------------------------------------------------------

    def clock(self) -> dt.datetime:
        """The namespace's now (its ``ClockSetting`` applied to real time)."""
        if self._running_at is not None:
            return self._running_at
        return self._setting.now(self._real_clock())

    @property
    def journal(self) -> Journal:
        return self.store.journal

    def record_request(self, entry) -> None:
        """Keep a request in the journal, dated by the namespace's clock (``entry``: its real time)."""
        entry.wall += self._setting.offset_from(self._real_clock())
        self.store.journal.add(entry)

    def clock_view(self) -> dict:
        setting = self._setting
        real = self._real_clock()
        return {"now": timestamp(setting.now(real)), "frozen": setting.frozen,
                "offset_seconds": round(setting.offset_from(real), 6)}

    async def change_clock(self, change: Callable[[ClockSetting, dt.datetime], ClockSetting]) -> int:
        """Move the namespace's clock, then run everything that fell due (before the caller answers);
        how many jobs ran."""
        real = self._real_clock()
        self._setting = await self.store.set_clock(lambda setting: change(setting, real))
        return await self.run_due()

    async def schedule(self, delay: float, kind: str, subject: str) -> None:
        """Run job ``kind`` about ``subject`` ``delay`` seconds from the namespace's now."""
        await self.schedule_at(self.clock() + dt.timedelta(seconds=delay), kind, subject)

    async def schedule_at(self, due_at: dt.datetime, kind: str, subject: str) -> None:
        """Run job ``kind`` about ``subject`` once the namespace's clock reaches ``due_at``."""
        await self.store.schedule(DueJob(due_at, kind, subject))
        await self._arm()

    async def settle(self) -> None:
        """Read the clock setting and the active scenarios again, and run what is due, if anything
        (every request does this first: correctness never depends on a timer having fired, nor on
        which process set the clock or switched a scenario)."""
        view = await self.store.settle_view()  # one round trip
        if not view.present:  # dropped by another process, or lost with a Redis restarted empty
            logger.warning("namespace %s is gone from the store: made again from the fixtures", self.name)
            await self._make_or_join()
            view = await self.store.settle_view()
        self._setting, due = view.clock, view.next_due
        self.scenarios.adopt(view.active_scenarios)
        if view.subscriptions_version != self._subscriptions_version:  # changed elsewhere (or a reset)
            await self._adopt_subscriptions()
        if due is not None and due <= self.clock():
            await self.run_due()

    async def run_due(self) -> int:
        """Run the jobs due by the namespace's clock, earliest first, each dated at its due time;
        how many ran."""
        from baas_sandbox.services.due_work import run_job  # the use cases import this module

        ran = 0
        while ran < MAX_JOBS_PER_RUN:
            jobs = await self.store.take_due(self.clock())
            if not jobs:
                break
            for job in jobs:
                self._running_at = job.due_at
                try:
                    await run_job(self, job)
                except Exception:  # a failing job must not take the server down; it is a bug to see
                    logger.exception("due job %s failed in namespace %s", job, self.name)
                finally:
                    self._running_at = None
                ran += 1
        await self._arm()
        return ran

    async def _arm(self) -> None:
        """Wake up when the earliest job falls due (a frozen clock makes nothing due by itself)."""
        if self._running_at is not None:
            return  # run_due arms once its jobs are done
        due, setting = await self.store.next_due(), self._setting
        if self._alarm is not None and self._alarm_for == (due, setting):
            return  # armed for this very moment already: every key creation schedules work
        self._disarm()
        if due is None or setting.frozen:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (start-up): the first request settles, the server's start arms
            return
        delay = max((due - self.clock()).total_seconds(), 0.0)
        self._alarm, self._alarm_for = loop.call_later(delay, self._ring), (due, setting)

    def _ring(self) -> None:
        self._alarm = None  # fired: the next _arm sets a new one, even for the same moment
        task = asyncio.ensure_future(self._run_due_on_time())
        self._ringing.add(task)  # a task nobody holds may be collected before it ends
        task.add_done_callback(self._ringing.discard)

    async def _run_due_on_time(self) -> None:
        try:
            await self.settle()
        except StoreUnavailable:  # the next request (or a later wake-up) runs it
            logger.warning("due work of namespace %s waits: the store is unavailable", self.name)

    def _disarm(self) -> None:
        if self._alarm is not None:
            self._alarm.cancel()
            self._alarm = None

    def stop_timers(self) -> None:
        """The server stops: its timer goes (the due work stays stored, for a state file)."""
        self._disarm()

    async def wake(self) -> None:
        """Arm the timer for the due work already stored (a state loaded before the loop ran)."""
        self._setting = await self.store.clock()
        await self._arm()

    # -- what follows each event --------------------------------------------------------------------

    @contextlib.contextmanager
    def quiet(self) -> Iterator[None]:
        """Publish nothing in the block (fixtures: the starting state announces nothing)."""
        self._quiet = True
        try:
            yield
        finally:
            self._quiet = False

    async def publish(self, *happened: events.Event) -> None:
        if self._quiet:
            return
        for event in happened:
            for follow in self._followers.get(type(event), ()):
                followed = follow(event)
                if followed is not None:
                    await followed
            await self._emit_data_event(event)

    async def record(self, kind: str, entry: dict) -> None:
        """Keep a log entry, and tell whoever is listening to that log live, here and in the other
        processes sharing the store."""
        await self.store.record(kind, entry)
        self.live.publish(kind, entry)
        self.shared.bus.tell(self.name, "record", {"kind": kind, "entry": entry})

    # -- webhook subscriptions: the dispatcher's, kept in the store for every process ----------------

    async def add_webhook_subscription(self, url: str, events: list[str], secret: str | None = None) -> Subscription:
        subscription = self.webhooks.subscribe(url, events, secret)
        await self.keep_subscriptions([subscription])
        return subscription

    async def remove_webhook_subscription(self, subscription_id: str) -> bool:
        held = self.webhooks.unsubscribe(subscription_id)
        return await self.store.remove_subscription(subscription_id) or held

    async def keep_subscriptions(self, subscriptions: list[Subscription]) -> None:
        """Store these subscriptions, each secret sealed with the vault's key (which every process
        sharing the store has: BAAS_SANDBOX_MASTER_KEY): a subscription's signing secret is never
        written in clear."""
        for subscription in subscriptions:
            sealed = self.vault.seal(subscription.secret, _secret_context(subscription.id))
            await self.store.save_subscription({
                "id": subscription.id, "url": subscription.url, "events": list(subscription.events),
                "created_at": subscription.created_at, "sealed_secret": base64.b64encode(sealed).decode()})
        self._subscriptions_version = None  # read again at the next request (cheap, and exact)

    async def _adopt_subscriptions(self) -> None:
        version, stored = await self.store.subscriptions()
        adopted = []
        for entry in stored:
            try:
                secret = self.vault.open(base64.b64decode(entry["sealed_secret"]), _secret_context(entry["id"]))
            except Exception:  # noqa: BLE001 - sealed with another master key: it cannot be signed here
                logger.warning("webhook subscription %s of namespace %s is sealed with another master key: "
                               "not delivered by this process", entry["id"], self.name)
                continue
            adopted.append(Subscription(entry["id"], entry["url"], list(entry["events"]), secret, entry["created_at"]))
        self.webhooks.adopt(adopted)
        self._subscriptions_version = version

    # -- webhook deliveries: the dispatcher's, or the store's when it is shared ----------------------

    async def webhook_deliveries(self) -> list[dict]:
        """Newest first: this process's (memory store), or every process's (a shared store)."""
        if self.kept_deliveries is None:
            return [delivery.as_dict() for delivery in reversed(self.webhooks.deliveries())]
        return await self.kept_deliveries.deliveries()

    async def redeliver_webhook(self, delivery_id: str) -> dict | None:
        """Send a delivery again (from this process, whichever one attempted it); None: none."""
        if self.kept_deliveries is None:
            delivery = self.webhooks.redeliver(delivery_id)
            return None if delivery is None else delivery.as_dict()
        return await self.kept_deliveries.redeliver(delivery_id)

    async def tend_deliveries(self) -> None:
        """Renew this process's delivery leases and take over the expired ones (shared store only)."""
        if self.kept_deliveries is not None:
            await self.kept_deliveries.tend()

    def hear(self, topic: str, payload: dict) -> None:
        """News from another process sharing the store (``adapters/process_bus.py``)."""
        if topic == "record":
            self.live.publish(payload["kind"], payload["entry"])

    def subscribe(self, event_type: type, follower: Callable[[events.Event], Awaitable[None] | None]) -> None:
        self._followers.setdefault(event_type, []).append(follower)

    async def _emit_data_event(self, event: events.Event) -> None:
        envelope = data_event(event, self.clock(), self.ids)
        if envelope is not None:
            await self.record("events", envelope)
            self.webhooks.publish(envelope["event_type"], envelope)

    async def record_outbox(self, event: events.Event) -> None:
        """The code "sent": kept for ``GET /__admin/outbox`` and its stream (what follows a
        ``VerificationCodeSent``, and the fixture key requests' codes)."""
        assert isinstance(event, events.VerificationCodeSent)
        await self.record("outbox", {
            "message_id": self.ids(),
            "pix_key_request_key": event.pix_key_request_key,
            "channel": event.channel,
            "destination": event.destination,
            "verification_code": event.verification_code,
            "sent_at": event.sent_at,
            "expires_at": event.expires_at,
        })

    async def _send_key_inclusion(self, event: events.Event) -> None:
        assert isinstance(event, events.KeyRequestDecided)
        body = event.webhook_body()
        await self.record("webhooks", {"webhook_type": "key_inclusion", "recorded_at": timestamp(self.clock()),
                                 "body": body})
        self.webhooks.publish("key_inclusion", body)

    async def _send_claim_request(self, event: events.Event) -> None:
        assert isinstance(event, events.ClaimStatusChanged)
        body = event.webhook_body()
        await self.record("webhooks", {"webhook_type": "claim_request", "recorded_at": timestamp(self.clock()),
                                 "body": body})
        self.webhooks.publish("claim_request", body)

    @staticmethod
    def _log_credential(event: events.Event) -> None:
        assert isinstance(event, events.CredentialSaved)
        # Never the key: only which slot changed.
        logger.info("credential %s for tenant=%s provider=%s type=%s",
                    "replaced" if event.replaced else "saved",
                    event.tenant, event.provider, event.integration_type)
