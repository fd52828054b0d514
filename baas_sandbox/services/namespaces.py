"""Namespaces: independent sandboxes in one server, made on first use, dropped when idle, capped.

A CI job, a pytest-xdist worker or a developer picks a namespace with ``X-Sandbox-Namespace`` and
sees nothing of the others. A new namespace is a ``Sandbox`` started from the fixtures, which were
read and checked once at start-up (``Shared``): making one is a few dictionary inserts.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable, Iterator

from baas_sandbox.adapters.repository import SandboxStore
from baas_sandbox.services.sandbox import Sandbox, Shared

DEFAULT = "default"
#: 1 to 64 of letters, digits, ``_``, ``.``, ``-``: safe in a header, a URL path, a file and a Redis key.
NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
NAME_RULE = "1 to 64 characters among A-Z a-z 0-9 _ . -"


class InvalidNamespace(ValueError):
    def __init__(self, name: str) -> None:
        self.name = name
        shown = name if len(name) <= 80 else name[:77] + "..."
        super().__init__(f"{shown!r} is not a valid namespace name ({NAME_RULE})")


class TooManyNamespaces(Exception):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(
            f"the sandbox holds its most namespaces ({limit}): drop one (DELETE /__admin/namespaces/{{name}}), "
            "wait for idle ones to expire (--namespace-idle-ttl), or start it with a higher --max-namespaces")


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise InvalidNamespace(name)
    return name


class Namespaces:
    """The namespaces of one server. ``max_namespaces``: how many may exist at once;
    ``idle_ttl``: seconds without a request after which one is dropped (0: never); the default
    namespace is never dropped for idleness (it is the sandbox of everyone who does not ask for one)."""

    def __init__(self, shared: Shared, max_namespaces: int = 1000, idle_ttl: float = 3600.0,
                 new_store: Callable[[str], SandboxStore] | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.shared = shared
        self.max_namespaces, self.idle_ttl = max_namespaces, idle_ttl
        self._new_store = new_store or shared.new_store
        self._monotonic = monotonic
        self._sandboxes: dict[str, Sandbox] = {}
        self._last_used: dict[str, float] = {}  # monotonic seconds of each namespace's latest request
        self._lock = threading.Lock()
        #: Namespaces being made (their fixtures stored): a second request for one waits for it.
        self._starting: dict[str, asyncio.Future[Sandbox]] = {}
        #: With a shared store, the registry in Redis (``adapters/redis_store.py``) is every process's:
        #: the cap counts it, the idle sweep reads it; each process tells it a namespace is used at
        #: most every ``_touch_every`` seconds (a tenth of the idle time-out).
        self._shared_store = shared.settings.store_url is not None
        self._touched: dict[str, float] = {}
        self._touch_every = min(max(idle_ttl / 10, 0.05), 60.0) if idle_ttl else 60.0

    async def get(self, name: str) -> Sandbox:
        """The namespace ``name`` (checked by the caller with ``check_name``), made from the fixtures
        if it does not exist; ``TooManyNamespaces`` when it would be one too many."""
        sandbox = self._sandboxes.get(name)
        if sandbox is None:
            sandbox = await self._create(name)
        now = self._last_used[name] = self._monotonic()
        if self._shared_store and now - self._touched.get(name, -self._touch_every) >= self._touch_every:
            self._touched[name] = now
            await sandbox.store.touch(self.shared.real_clock().timestamp())
        return sandbox

    async def _create(self, name: str) -> Sandbox:
        starting = self._starting.get(name)
        if starting is not None:
            return await asyncio.shield(starting)
        with self._lock:
            if len(self._sandboxes) + len(self._starting) >= self.max_namespaces:
                self._drop_idle_locked()
                if len(self._sandboxes) + len(self._starting) >= self.max_namespaces:
                    raise TooManyNamespaces(self.max_namespaces)
        # Registered before the first await: a request arriving meanwhile waits for this one.
        starting = self._starting[name] = asyncio.get_running_loop().create_future()
        try:
            if self._shared_store:
                await self._check_shared_room(name)
            sandbox = await Sandbox.start(self.shared, name, self._new_store(name))
        except BaseException as exc:
            starting.set_exception(exc)
            starting.exception()  # retrieved: the waiters (if any) get it raised, nobody else
            raise
        finally:
            del self._starting[name]
        with self._lock:
            self._sandboxes[name] = sandbox
            self._last_used[name] = self._monotonic()
        starting.set_result(sandbox)
        return sandbox

    async def _check_shared_room(self, name: str) -> None:
        """With a shared store the cap is every process's: a namespace another process made may be
        joined; a new one only below ``max_namespaces`` (after the idle ones are swept)."""
        from baas_sandbox.adapters.redis_store import is_registered, namespace_count

        client = self.shared.redis_client()
        if await namespace_count(client) < self.max_namespaces or await is_registered(client, name):
            return
        await self.drop_idle_shared()
        if await namespace_count(client) >= self.max_namespaces:
            raise TooManyNamespaces(self.max_namespaces)

    async def drop_idle_shared(self) -> list[str]:
        """With a shared store: drop, state and all, the namespaces no process has used for the idle
        time-out (the default one never): Redis holds no abandoned namespace for ever."""
        if not self._shared_store or not self.idle_ttl:
            return []
        from baas_sandbox.adapters.redis_store import namespaces_used

        before = self.shared.real_clock().timestamp() - self.idle_ttl
        dropped = []
        for name, _used, _made in await namespaces_used(self.shared.redis_client(), before):
            if name == DEFAULT:
                continue
            self.drop(name)
            await self._new_store(name).drop()
            dropped.append(name)
        return dropped

    async def listed(self) -> list[tuple[str, SandboxStore, float, float]]:
        """Every namespace as (name, its store, last used, made; epoch seconds): with a shared store,
        every process's (the registry), not only those this process holds."""
        if not self._shared_store:
            now = self.shared.real_clock().timestamp()
            return [(sandbox.name, sandbox.store, now - self.idle_seconds(sandbox.name),
                     sandbox.created_at.timestamp()) for sandbox in sorted(self, key=lambda s: s.name)]
        from baas_sandbox.adapters.redis_store import namespaces_used

        found = []
        for name, used, made in sorted(await namespaces_used(self.shared.redis_client())):
            held = self.existing(name)
            found.append((name, held.store if held is not None else self._new_store(name), used, made))
        return found

    def hold(self, sandbox: Sandbox) -> None:
        """Hold a namespace made outside the loop (the default one, made at start-up)."""
        with self._lock:
            self._sandboxes[sandbox.name] = sandbox
            self._last_used[sandbox.name] = self._monotonic()

    def existing(self, name: str) -> Sandbox | None:
        return self._sandboxes.get(name)

    def __iter__(self) -> Iterator[Sandbox]:
        return iter(list(self._sandboxes.values()))

    def __len__(self) -> int:
        return len(self._sandboxes)

    def idle_seconds(self, name: str) -> float:
        return self._monotonic() - self._last_used.get(name, self._monotonic())

    def drop(self, name: str) -> bool:
        with self._lock:
            return self._drop_locked(name)

    def _drop_locked(self, name: str) -> bool:
        sandbox = self._sandboxes.pop(name, None)
        self._last_used.pop(name, None)
        if sandbox is None:
            return False
        sandbox.close()
        return True

    async def discard(self, name: str) -> bool:
        """Drop the namespace, and its state where the store is shared (another process holding it
        finds it empty); False when it exists nowhere."""
        held = self.drop(name)
        if self.shared.settings.store_url is None:
            return held
        store = self._new_store(name)
        existed = await store.setup_state() is not None
        await store.drop()
        return held or existed

    def drop_idle(self) -> list[str]:
        """Drop the namespaces idle past the time-out; their names."""
        with self._lock:
            return self._drop_idle_locked()

    def _drop_idle_locked(self) -> list[str]:
        if not self.idle_ttl:
            return []
        now = self._monotonic()
        idle = [name for name, used in self._last_used.items()
                if name != DEFAULT and now - used > self.idle_ttl]
        for name in idle:
            self._drop_locked(name)
        return idle

    def adopt(self, sandbox: Sandbox) -> None:
        """Hold ``sandbox`` (made from a state file) under its name, replacing any namespace there."""
        with self._lock:
            self._drop_locked(sandbox.name)
            self._sandboxes[sandbox.name] = sandbox
            self._last_used[sandbox.name] = self._monotonic()

    async def new_sandbox(self, name: str) -> Sandbox:
        """A namespace's sandbox, not yet held (to fill from a state before it is adopted)."""
        return await Sandbox.start(self.shared, name, self._new_store(name))

    def close(self) -> None:
        with self._lock:
            for name in list(self._sandboxes):
                self._drop_locked(name)
