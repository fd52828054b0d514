"""The sandbox as an ASGI app: the express lane in front of the full pipeline.

    the express lane (http/express.py): the product operations' everyday requests, in one step
      -> everything else: the full pipeline (pipeline.py: connexion 3 and the sandbox's layers)

Both specs are checked with openapi-spec-validator first, and the fixtures are loaded against
the spec's own account schema, so a broken spec or fixture stops start-up with its reason. The
full pipeline is built in a background thread once the server has started (connexion takes most
of a second to import and build): the lane answers meanwhile, and a request for the full
pipeline waits for it. A start-up is thus ready to answer in well under half a second.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import os
import threading
from dataclasses import dataclass
from collections.abc import Coroutine
from typing import Any

from baas_sandbox import handlers
from baas_sandbox.adapters.fixtures import load_fixtures
from baas_sandbox.adapters.repository import InMemoryStore, StoreUnavailable
from baas_sandbox.adapters.yamlfile import FileProblem
from baas_sandbox.http import express
from baas_sandbox.http.store_faults import AnswerStoreFaults
from baas_sandbox.scenarios.library import ScenarioLibrary
from baas_sandbox.scenarios.watcher import watch
from baas_sandbox.services.accounts import build_account
from baas_sandbox.services.dict_entries import build_dict_entry
from baas_sandbox.services.namespaces import DEFAULT, Namespaces
from baas_sandbox.services.sandbox import Sandbox, Settings, Shared
from baas_sandbox.spec import (
    ADMIN_BASE_PATH,
    ADMIN_SPEC,
    PRODUCT_SPEC,
    SPEC_DIR,
    Contract,
    load_checked,
    resolve_refs,
    to_json_schema,
)

logger = logging.getLogger("baas_sandbox")

#: Seconds from the server's start to the full pipeline's build (see SandboxApp._lifespan).
BUILD_DELAY = 0.2

@dataclass
class Specs:
    """Both documents, checked; ``*_raw`` as written (for connexion), the others with refs inlined."""

    product_raw: dict
    admin_raw: dict
    product: dict
    admin: dict

    @classmethod
    def load(cls) -> "Specs":
        product = load_checked(SPEC_DIR / PRODUCT_SPEC)
        admin = load_checked(SPEC_DIR / ADMIN_SPEC)
        return cls(product, admin, resolve_refs(product), resolve_refs(admin))

    @functools.cached_property
    def contract(self) -> Contract:
        return Contract(("", self.product), (ADMIN_BASE_PATH, self.admin))

    @property
    def account_schema(self) -> dict:
        return to_json_schema(self.admin["components"]["schemas"]["AccountRequest"])

    @functools.cached_property
    def state_schema(self) -> dict:
        """A namespace's snapshot (``GET|PUT /__admin/state``, the state file's namespaces)."""
        return to_json_schema(self.admin["components"]["schemas"]["NamespaceState"])
    @property
    def dict_entry_schema(self) -> dict:
        return to_json_schema(self.admin["components"]["schemas"]["DictEntryRequest"])


def build_namespaces(settings: Settings, specs: Specs) -> Namespaces:
    """The namespaces of ``settings``' fixtures and scenarios, the default one made (its fixture key
    requests checked against the rules); a ``FileProblem`` with every problem of both when some are
    broken (one start-up shows them all)."""
    product_operations = [op for path in specs.product["paths"].values() for method, op in path.items()
                          if isinstance(op, dict) and "operationId" in op]
    problems: list[FileProblem] = []
    try:
        fixtures = load_fixtures(settings.fixtures_dir, specs.account_schema, build_account,
                                 settings.subscription_problem, specs.dict_entry_schema, build_dict_entry)
    except FileProblem as exc:
        problems.append(exc)
    try:
        scenarios = ScenarioLibrary(settings.scenarios_dir, specs.contract,
                                    [op["operationId"] for op in product_operations],
                                    seed=settings.seed, active=settings.scenarios)
    except FileProblem as exc:
        problems.append(exc)
    if problems:
        raise type(problems[0]).several(problems)
    namespaces = Namespaces(Shared(settings, fixtures, scenarios, state_schema=specs.state_schema),
                            max_namespaces=settings.max_namespaces, idle_ttl=settings.namespace_idle_ttl)
    shared = namespaces.shared
    # The fixtures' key requests and claims meet the store's rules at start-up (a broken fixture
    # stops the start), in a namespace made in memory before the server's loop runs.
    default = _made_now(Sandbox.start(shared, DEFAULT, InMemoryStore(settings.journal_size, shared.journal_budget)))
    if settings.store_url is None:
        namespaces.hold(default)  # it is the default namespace
    else:
        default.close()  # the shared one is made (or joined) on the serving loop: SandboxApp._lifespan
    return namespaces


def _made_now(starting: Coroutine[Any, Any, Sandbox]) -> Sandbox:
    """A namespace made on a loop of its own, which it outlives: the in-memory store holds nothing of
    a loop but its timer, stopped here (the server's start sets it again: ``Sandbox.wake``)."""
    sandbox = asyncio.run(starting)
    sandbox.stop_timers()
    return sandbox


class SandboxApp:
    """The ASGI app: the express lane first, the full pipeline for everything else.

    ``namespaces`` are its sandboxes (``sandbox``: the default one, for the CLI and the tests),
    ``express_counts`` how many requests the lane answered and handed over.
    """

    def __init__(self, settings: Settings, specs: Specs, namespaces: Namespaces) -> None:
        self.settings, self.specs, self.namespaces = settings, specs, namespaces
        self.express_counts = express.ExpressCounts()
        self._pipeline: Any = None
        self._building: concurrent.futures.Future | None = None
        self._lock = threading.Lock()
        self._entry: Any = self._full_pipeline
        self.requests_seen = 0  # HTTP requests and WebSocket connections so far
        self._saved: tuple | None = None  # the fingerprint of the state last saved to --state-file
        self._write_lock = threading.Lock()
        self._port_learned = False
        if settings.express_lane:
            operations = express.compile_operations(
                specs.product, handlers.resolve,
                specs.contract.operations,
                settings.validate_responses)
            # starlette's CORS middleware adds "Vary: Origin" to every answer to a request without
            # an Origin when the allowed origins are a pattern (they always are here).
            self._entry = express.ExpressLane(self._full_pipeline, namespaces, operations, cors_vary=True,
                                              counts=self.express_counts, max_body_size=settings.max_body_size)
        # A store that cannot answer (Redis down): 503 wherever it is met (http/store_faults.py).
        self._entry = AnswerStoreFaults(self._entry)

    @property
    def sandbox(self) -> Sandbox:
        """The default namespace."""
        sandbox = self.namespaces.existing(DEFAULT)
        assert sandbox is not None  # made at start-up (a shared store's: once the server started)
        return sandbox

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        else:
            self.requests_seen += 1
            if not self._port_learned:
                self._learn_port(scope)
            await self._entry(scope, receive, send)

    def _learn_port(self, scope) -> None:
        """The port the server listens on, from the socket a request came in on (the ASGI ``server``):
        known before the server starts only with a fixed ``--port``, and webhooks may not point there."""
        import ipaddress

        host, port = (scope.get("server") or (None, None))[:2]
        try:
            ipaddress.ip_address(host)  # a socket's address; not a test client's made-up name
        except ValueError:
            return
        if isinstance(port, int):
            self.namespaces.shared.own_ports.add(port)
            self._port_learned = True

    def test_client(self, **kwargs):
        """An in-process client (starlette's), as connexion's apps give; its requests name the host
        ``localhost``, one the admin API answers to (http/admin_guard.py), not starlette's ``testserver``."""
        kwargs.setdefault("base_url", "http://localhost")
        import warnings

        with warnings.catch_warnings():  # starlette's advice to its own users, noise in a test report
            warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette.testclient`")
            from starlette.testclient import TestClient

        return TestClient(self, **kwargs)

    # -- the full pipeline, built once, in the background --------------------------------------------

    @property
    def pipeline_built(self) -> bool:
        return self._pipeline is not None

    async def _full_pipeline(self, scope, receive, send) -> None:
        pipeline = self._pipeline
        if pipeline is None:
            pipeline = await asyncio.wrap_future(self.start_building())
        await pipeline(scope, receive, send)

    def start_building(self) -> concurrent.futures.Future:
        """Build the full pipeline in a thread, once; the future of the built app."""
        with self._lock:
            if self._building is None:
                self._building = concurrent.futures.Future()
                threading.Thread(target=self._build, args=(self._building,), name="baas-sandbox-pipeline",
                                 daemon=True).start()
            return self._building

    async def _built(self) -> None:
        """Once the full pipeline is built (the build started as the lifespan does)."""
        await asyncio.sleep(BUILD_DELAY)
        await asyncio.wrap_future(self.start_building())

    def _build(self, future: concurrent.futures.Future) -> None:
        try:
            from baas_sandbox.pipeline import build_pipeline

            self._pipeline = build_pipeline(self.settings, self.specs, self.namespaces)
        except BaseException as exc:  # a bug: each request that needs the pipeline gets it raised
            logger.error("the full request pipeline could not be built", exc_info=exc)
            future.set_exception(exc)
        else:
            future.set_result(self._pipeline)

    # -- lifespan ------------------------------------------------------------------------------------

    async def _lifespan(self, receive, send) -> None:
        """ASGI lifespan: scenario hot reload and the pipeline's build start with the server; the
        scheduled decisions, webhook deliveries and the watcher stop with it."""
        await receive()  # lifespan.startup
        stop = asyncio.Event()
        tasks = []
        if self.settings.hot_reload:
            tasks.append(asyncio.create_task(watch(self.namespaces.shared.scenarios, stop)))
        tasks.append(asyncio.create_task(_drop_idle_namespaces(self.namespaces, stop)))
        if self.namespaces.existing(DEFAULT) is None:  # a shared store: made, or joined, now
            try:
                await self.namespaces.get(DEFAULT)
            except StoreUnavailable as exc:  # the sandbox starts anyway, and heals: its first request makes it
                logger.warning("the shared store cannot be reached yet (%s): the sandbox answers 503 until it is", exc)
        if self.settings.store_url is not None:  # news from the other processes sharing the store
            tasks.append(asyncio.create_task(self.namespaces.shared.bus.run(self._hear, self._reconnected, stop)))
            # leases of the webhook deliveries this process attempts; those of a dead one taken over
            tasks.append(asyncio.create_task(_tend_deliveries(self.namespaces, self.settings.webhook_lease / 3, stop)))
        for sandbox in self.namespaces:
            await sandbox.wake()  # due work already stored (a state file) gets its timer
        # The build takes most of a second of CPU in a thread that shares the interpreter's lock with
        # the server: it starts a moment after the server does, so the first answers do not wait
        # for it (a request that needs the full pipeline sooner starts it at once).
        starting = asyncio.get_running_loop().call_later(BUILD_DELAY, self.start_building)
        if self.settings.state_file is not None:
            tasks.append(asyncio.create_task(self._save_periodically(stop)))
        if self.settings.collect_when_idle:
            from baas_sandbox.gc_policy import collect_when_idle

            tasks.append(asyncio.create_task(collect_when_idle(lambda: self.requests_seen, self._built(), stop)))
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        starting.cancel()
        stop.set()
        for sandbox in self.namespaces:
            sandbox.stop_timers()
        if self.settings.state_file is not None:
            await self.save_state()  # first: whatever happens to the tasks below, the state is saved
        for sandbox in self.namespaces:
            await sandbox.webhooks.aclose()
        for task in tasks:
            await asyncio.wait_for(task, timeout=5)
        await self.namespaces.shared.close()
        await send({"type": "lifespan.shutdown.complete"})

    def _hear(self, namespace: str, topic: str, payload: dict) -> None:
        sandbox = self.namespaces.existing(namespace)
        if sandbox is not None:  # a namespace this process does not hold has nothing to update
            sandbox.hear(topic, payload)

    def _reconnected(self) -> None:
        for sandbox in self.namespaces:
            sandbox.hear("reconnected", {})

    # -- the state file ------------------------------------------------------------------------------

    async def save_state(self) -> bool:
        """Write every namespace to ``--state-file`` now (at shutdown); False, logged, when it cannot."""
        from baas_sandbox.services import snapshots

        path = self.settings.state_file
        assert path is not None
        try:
            self._write_state(path, await snapshots.export_all(self.namespaces))
        except OSError as exc:
            logger.error("the state could not be saved to %s: %s", path, exc)
            return False
        self._saved = snapshots.fingerprint(self.namespaces)
        return True

    def _write_state(self, path, document: dict) -> None:
        """One write at a time, in the order they were asked for: a periodic save still writing in its
        thread finishes before the shutdown's save, which is newer, replaces it."""
        from baas_sandbox.adapters import state_file

        with self._write_lock:
            state_file.write(path, document)

    async def _save_periodically(self, stop: asyncio.Event) -> None:
        """Every ``--state-save-interval`` seconds, when something changed (or nothing was saved yet):
        the snapshot taken on the loop (consistent), the file written in a thread."""
        from baas_sandbox.services import snapshots

        path = self.settings.state_file
        assert path is not None
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.settings.state_save_interval)
            except TimeoutError:
                pass
            else:
                return  # the shutdown saves
            seen = snapshots.fingerprint(self.namespaces)
            if seen == self._saved:
                continue
            document = await snapshots.export_all(self.namespaces)
            try:
                await asyncio.to_thread(self._write_state, path, document)
            except OSError as exc:
                logger.error("the state could not be saved to %s: %s", path, exc)
                continue
            self._saved = seen


async def _tend_deliveries(namespaces: Namespaces, every: float, stop: asyncio.Event) -> None:
    """Every ``every`` seconds (a third of ``--webhook-lease``), in each namespace this process
    holds: renew the leases of its pending webhook deliveries, take over those whose process died
    (services/kept_deliveries.py). Nothing a namespace's store or records do stops the others."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=every)
        except TimeoutError:
            for sandbox in list(namespaces):
                try:
                    await sandbox.tend_deliveries()
                except StoreUnavailable as exc:  # the next turn tries again
                    logger.warning("webhook deliveries of namespace %s wait: %s", sandbox.name, exc)
                except Exception:  # a bug to see, not a reason to stop tending every namespace
                    logger.exception("webhook deliveries of namespace %s could not be tended", sandbox.name)


async def _drop_idle_namespaces(namespaces: Namespaces, stop: asyncio.Event) -> None:
    """Drop the namespaces idle past ``--namespace-idle-ttl``, checking a tenth as often as that
    (at most every minute): memory stays bounded without a request having to pay for it."""
    if not namespaces.idle_ttl:
        return
    every = min(max(namespaces.idle_ttl / 10, 0.05), 60.0)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=every)
        except TimeoutError:
            dropped = namespaces.drop_idle()
            try:
                dropped += await namespaces.drop_idle_shared()  # with a shared store: every process's
            except StoreUnavailable as exc:
                logger.warning("idle namespaces not swept: %s", exc)
            for name in dropped:
                logger.info("namespace %s dropped after %s s idle", name, namespaces.idle_ttl)


def create_app(settings: Settings | None = None) -> SandboxApp:
    """A ready ASGI app (every namespace of ``--state-file`` loaded); raises ``SpecError``,
    ``FixtureError``, ``ScenarioError``, ``UnknownScenario`` or ``StateFileError`` with the reason it
    cannot start."""
    settings = settings or Settings()
    specs = Specs.load()
    namespaces = build_namespaces(settings, specs)
    if settings.state_file is not None:
        load_state_file(namespaces, settings.state_file)
    return SandboxApp(settings, specs, namespaces)


def load_state_file(namespaces: Namespaces, path) -> list[str]:
    """Every namespace of the state file (none when it does not exist yet); ``StateFileError``, one
    line, when it cannot be read or holds a state the sandbox refuses (the file is left as it is)."""
    from baas_sandbox.adapters.state_file import StateFileError, read
    from baas_sandbox.services.snapshots import InvalidState, load_all

    folder = path.parent
    if not folder.is_dir():
        raise StateFileError(f"{path}: its folder {folder} does not exist (the file is saved there)")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StateFileError(f"{path}: its folder {folder} is not writable (the file is saved there)")
    document = read(path)
    if document is None:
        return []
    try:
        names = asyncio.run(load_all(namespaces, document))  # before the server's loop, as _made_now
    except InvalidState as exc:
        raise StateFileError(f"{path}: is not a valid state file: {exc}") from None
    for name in names:
        loaded = namespaces.existing(name)
        if loaded is not None:
            loaded.stop_timers()  # set again on the server's loop (its lifespan wakes each namespace)
    return names
