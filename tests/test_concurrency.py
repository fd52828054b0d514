"""The store's rules hold under concurrent requests: one owner per key, and the account limits."""

from __future__ import annotations

import asyncio
import sys
import threading
import uuid
from collections import Counter

import httpx

from baas_sandbox.domain import errors
from baas_sandbox.domain.model import (
    KeyStatus,
    PixKeyRequest,
    PixKeyType,
    RequestStatus,
)
from tests.conftest import live_server
from tests.helpers import NATURAL_ACCOUNT, ORG_A, SEED_ACCOUNT, SEED_CNPJ

CONCURRENCY = 64


async def burst(base_url: str, bodies: list[dict]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=base_url, headers=ORG_A,
                                 limits=httpx.Limits(max_connections=CONCURRENCY)) as client:
        return await asyncio.gather(*(client.post("/baas/pix/keys", json=body) for body in bodies))


def outcomes(responses: list[httpx.Response]) -> Counter:
    return Counter(r.json().get("code", r.status_code) if r.status_code != 201 else 201 for r in responses)


def test_64_concurrent_creates_of_the_same_key_yield_exactly_one():
    body = {"account_key": SEED_ACCOUNT, "pix_key_type": "cnpj", "pix_key": SEED_CNPJ}
    # The winner stays unfinished through the burst, so every loser meets PIX000074.
    with live_server(activation_delay=60) as (base_url, _):
        responses = asyncio.run(burst(base_url, [body] * CONCURRENCY))
    assert outcomes(responses) == Counter({201: 1, "PIX000074": CONCURRENCY - 1})


def test_concurrent_creates_never_pass_the_natural_person_limit(server):
    base_url, _ = server
    body = {"account_key": NATURAL_ACCOUNT, "pix_key_type": "random_key"}
    responses = asyncio.run(burst(base_url, [body] * CONCURRENCY))
    assert outcomes(responses) == Counter({201: 5, "PIX000014": CONCURRENCY - 5})


def test_concurrent_creates_never_pass_the_legal_person_limit(server):
    base_url, _ = server
    body = {"account_key": SEED_ACCOUNT, "pix_key_type": "random_key"}
    responses = asyncio.run(burst(base_url, [body] * CONCURRENCY))
    assert outcomes(responses) == Counter({201: 20, "PIX000014": CONCURRENCY - 20})


def race(sandbox, make_request, threads: int = CONCURRENCY) -> Counter:
    """``threads`` threads released together, each storing one request: the store's own lock."""
    start = threading.Barrier(threads)
    results: list[str] = []

    def attempt() -> None:
        request = make_request()
        start.wait()
        try:
            sandbox.store.add_key_request(request)
            results.append("stored")
        except errors.DomainError as exc:
            results.append(exc.code)

    workers = [threading.Thread(target=attempt) for _ in range(threads)]
    # Switch threads as often as possible, so a missing lock shows as a lost race, not luck.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        sys.setswitchinterval(interval)
    return Counter(results)


def key_request(sandbox, account_key: str, kind: PixKeyType, value: str | None) -> PixKeyRequest:
    return PixKeyRequest(
        request_key=str(uuid.uuid4()), account=sandbox.store.account(account_key),
        requester_key="ef48fbe4-267b-45c1-9049-75345c075486", key_type=kind, key_value=value,
        status=RequestStatus.PENDING, key_status=KeyStatus.PENDING_CONFIRMATION,
        created_at="2026-01-01T00:00:00", updated_at="2026-01-01T00:00:00", key_updated_at="2026-01-01T00:00:00",
    )


ROUNDS = 10  # without the store's lock, most rounds go wrong (measured: 13 of 20)


def test_threads_racing_on_the_store_same_key(server):
    _, sandbox = server
    for _ in range(ROUNDS):
        sandbox.reset()
        counts = race(sandbox, lambda: key_request(sandbox, SEED_ACCOUNT, PixKeyType.CNPJ, SEED_CNPJ))
        assert counts == Counter({"stored": 1, "PIX000074": CONCURRENCY - 1})


def test_threads_racing_on_the_store_limit(server):
    _, sandbox = server
    for _ in range(ROUNDS):
        sandbox.reset()
        counts = race(sandbox, lambda: key_request(sandbox, SEED_ACCOUNT, PixKeyType.RANDOM, None))
        assert counts == Counter({"stored": 20, "PIX000014": CONCURRENCY - 20})
