"""The store's rules hold under concurrent requests: one owner per key, and the account limits.

The HTTP bursts are concurrent for real: one sandbox served by several uvicorn servers, each on an
event loop of its own thread, all accepting on one socket, hit by as many client threads released
together; Python switches threads every microsecond meanwhile (on one event loop they could not
fail: a handler that never awaits runs whole). The limit bursts start one place below the limit,
so every request races for the last place. Measured with the store's lock made a no-op: the
same-key burst over HTTP failed in one run of two (two 201s); the legal-person limit burst over
HTTP in one of five, the natural-person one in none of five (the window between counting and
storing is a small share of a request's work); the store-level races below (threads calling the
store directly) failed in every run, same key and limit alike. With the lock: all pass."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator

import httpx
import uvicorn

from baas_sandbox.app import create_app
from baas_sandbox.domain import errors
from baas_sandbox.domain.model import (
    KeyStatus,
    PixKeyRequest,
    PixKeyType,
    RequestStatus,
)
from baas_sandbox.services.sandbox import Settings
from tests.conftest import FAST, assert_events_valid
from tests.helpers import NATURAL_ACCOUNT, ORG_A, SEED_ACCOUNT, SEED_CNPJ, run

CONCURRENCY = 64
SERVER_THREADS = 4
ROUNDS = 5


@contextlib.contextmanager
def switching_often() -> Iterator[None]:
    """Switch threads as often as possible, so a missing lock shows as a lost race, not luck."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


@contextlib.contextmanager
def served_by_threads(threads: int = SERVER_THREADS, **settings) -> Iterator[tuple[str, object]]:
    """One sandbox served by ``threads`` uvicorn servers (one event loop each) on one socket."""
    app = create_app(Settings(**(FAST | settings)))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(CONCURRENCY * 2)
    servers = [uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1))
               for _ in range(threads)]
    workers = [threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True) for server in servers]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + 10
    while not all(server.started for server in servers):
        assert time.monotonic() < deadline, "the servers did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", app.sandbox
    finally:
        for server in servers:
            server.should_exit = True
        for worker in workers:
            worker.join(timeout=10)
        sock.close()
    assert_events_valid(app.sandbox)


def burst(base_url: str, body: dict, count: int = CONCURRENCY) -> Counter:
    """``count`` client threads, released together, each creating ``body``: their outcomes."""
    start = threading.Barrier(count)
    outcomes: list = []

    def create() -> None:
        with httpx.Client(base_url=base_url, headers=ORG_A, timeout=30) as client:
            start.wait()
            answer = client.post("/baas/pix/keys", json=body)
        outcomes.append(201 if answer.status_code == 201 else answer.json().get("code", answer.status_code))

    clients = [threading.Thread(target=create) for _ in range(count)]
    with switching_often():
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join()
    return Counter(outcomes)


def test_64_concurrent_creates_of_the_same_key_yield_exactly_one():
    body = {"account_key": SEED_ACCOUNT, "pix_key_type": "cnpj", "pix_key": SEED_CNPJ}
    # The winner stays unfinished through the burst, so every loser meets PIX000074.
    with served_by_threads(activation_delay=60) as (base_url, sandbox):
        for _ in range(ROUNDS):
            run(sandbox.reset())
            assert burst(base_url, body) == Counter({201: 1, "PIX000074": CONCURRENCY - 1})


def _one_below_the_limit(base_url: str, body: dict, limit: int) -> None:
    """``limit - 1`` keys on the account first: then the whole burst races for its last place."""
    with httpx.Client(base_url=base_url, headers=ORG_A) as client:
        for _ in range(limit - 1):
            assert client.post("/baas/pix/keys", json=body).status_code == 201


def test_concurrent_creates_never_pass_the_natural_person_limit():
    body = {"account_key": NATURAL_ACCOUNT, "pix_key_type": "random_key"}
    with served_by_threads(activation_delay=60) as (base_url, sandbox):
        for _ in range(ROUNDS):
            run(sandbox.reset())
            _one_below_the_limit(base_url, body, 5)
            assert burst(base_url, body) == Counter({201: 1, "PIX000014": CONCURRENCY - 1})


def test_concurrent_creates_never_pass_the_legal_person_limit():
    body = {"account_key": SEED_ACCOUNT, "pix_key_type": "random_key"}
    with served_by_threads(activation_delay=60) as (base_url, sandbox):
        for _ in range(ROUNDS):
            run(sandbox.reset())
            _one_below_the_limit(base_url, body, 20)
            assert burst(base_url, body) == Counter({201: 1, "PIX000014": CONCURRENCY - 1})


def race(sandbox, make_request, threads: int = CONCURRENCY) -> Counter:
    """``threads`` threads released together, each storing one request: the store's own lock."""
    start = threading.Barrier(threads)
    results: list[str] = []

    def attempt() -> None:
        request = make_request()
        start.wait()
        try:
            run(sandbox.store.add_key_request(request))
            results.append("stored")
        except errors.DomainError as exc:
            results.append(exc.code)

    workers = [threading.Thread(target=attempt) for _ in range(threads)]
    with switching_often():
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    return Counter(results)


def key_request(sandbox, account_key: str, kind: PixKeyType, value: str | None) -> PixKeyRequest:
    return PixKeyRequest(
        request_key=str(uuid.uuid4()), account=run(sandbox.store.account(account_key)),
        requester_key="ef48fbe4-267b-45c1-9049-75345c075486", key_type=kind, key_value=value,
        status=RequestStatus.PENDING, key_status=KeyStatus.PENDING_CONFIRMATION,
        created_at="2026-01-01T00:00:00", updated_at="2026-01-01T00:00:00", key_updated_at="2026-01-01T00:00:00",
    )


STORE_ROUNDS = 10  # without the store's lock, most rounds go wrong (measured: 13 of 20)


def test_threads_racing_on_the_store_same_key(server):
    _, sandbox = server
    for _ in range(STORE_ROUNDS):
        run(sandbox.reset())
        counts = race(sandbox, lambda: key_request(sandbox, SEED_ACCOUNT, PixKeyType.CNPJ, SEED_CNPJ))
        assert counts == Counter({"stored": 1, "PIX000074": CONCURRENCY - 1})


def test_threads_racing_on_the_store_limit(server):
    _, sandbox = server
    for _ in range(STORE_ROUNDS):
        run(sandbox.reset())
        for _ in range(19):  # one place left: every thread races for it
            run(sandbox.store.add_key_request(key_request(sandbox, SEED_ACCOUNT, PixKeyType.RANDOM, None)))
        counts = race(sandbox, lambda: key_request(sandbox, SEED_ACCOUNT, PixKeyType.RANDOM, None))
        assert counts == Counter({"stored": 1, "PIX000014": CONCURRENCY - 1})
