"""Several ``baas-sandbox serve --store redis://…`` processes are one sandbox: real processes,
real sockets, a real redis-server (``tests/redis_server.py``).

Each test works in a namespace of its own (the Redis server is the session's), so the tests
neither see nor reset each other's state.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.helpers import NATURAL_ACCOUNT, ORG_A, SEED_ACCOUNT, wait_until
from tests.receiver import Receiver
from tests.redis_server import RedisServer

MASTER_KEY = base64.b64encode(b"k" * 32).decode()
START_TIMEOUT = 60.0


class Served:
    """One ``baas-sandbox serve`` process on a free port; its log kept for a failure's report."""

    def __init__(self, store: str, *options: str, env: dict | None = None) -> None:
        self._log_file = tempfile.NamedTemporaryFile(prefix="sbx-serve-", suffix=".log", delete=False)
        self.log_path = Path(self._log_file.name)
        command = [sys.executable, "-m", "baas_sandbox", "serve", "--port", "0", "--store", store,
                   "--no-reload", "--log-level", "warning", *options]
        self.process = subprocess.Popen(command, stdout=self._log_file, stderr=subprocess.STDOUT,
                                        env={**os.environ, "BAAS_SANDBOX_MASTER_KEY": MASTER_KEY, **(env or {})})
        self.url = self._announced()

    def _announced(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            found = re.search(r"serving on (http://\S+)", self.log())
            if found:
                return found.group(1)
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"the sandbox did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()


@contextmanager
def serving(store: str, count: int = 2, *options: str) -> Iterator[list[Served]]:
    started: list[Served] = []
    try:
        for _ in range(count):
            started.append(Served(store, *options))
        yield started
    finally:
        for served in started:
            served.stop()
        for served in started:
            served.log_path.unlink(missing_ok=True)


@pytest.fixture
def namespace() -> dict[str, str]:
    """The header of a namespace of the test's own, with the tenant's token."""
    return {**ORG_A, "X-Sandbox-Namespace": f"shared-{uuid.uuid4().hex[:12]}"}


@pytest.fixture(scope="module")
def pair(redis_url) -> Iterator[list[Served]]:
    """Two sandbox processes on the session's Redis (activation after 60 s unless the clock moves)."""
    with serving(redis_url, 2, "--activation-delay", "60") as started:
        yield started


async def _spread(pair: list[Served], headers: dict, requests: list[tuple[str, str, dict | None]]) -> list[httpx.Response]:
    """The requests sent at once, alternately to each process."""
    clients = [httpx.AsyncClient(base_url=served.url, headers=headers, timeout=30) for served in pair]
    try:
        return await asyncio.gather(*(
            clients[index % len(clients)].request(method, path, json=body)
            for index, (method, path, body) in enumerate(requests)))
    finally:
        for client in clients:
            await client.aclose()


def outcome(answer: httpx.Response) -> int | str:
    return 201 if answer.status_code == 201 else answer.json().get("code", answer.status_code)


# -- one sandbox across processes ------------------------------------------------------------------


def test_a_key_created_on_one_process_is_listed_on_the_other(pair, namespace):
    a, b = pair
    created = httpx.post(f"{a.url}/baas/pix/keys", headers=namespace,
                         json={"account_key": SEED_ACCOUNT, "pix_key_type": "random_key"})
    assert created.status_code == 201, created.text
    listed = httpx.get(f"{b.url}/baas/pix/keys", headers=namespace, params={"account_key": SEED_ACCOUNT})
    assert listed.status_code == 200
    keys = [entry["pix_key_request_key"] for entry in listed.json()["pix_keys"]]
    assert created.json()["pix_key_request_key"] in keys


def test_64_concurrent_creates_of_one_key_over_both_processes_give_one(pair, namespace):
    body = {"account_key": SEED_ACCOUNT, "pix_key_type": "email", "pix_key": "same.key@example.com"}
    answers = asyncio.run(_spread(pair, namespace, [("POST", "/baas/pix/keys", body)] * 64))
    assert Counter(map(outcome, answers)) == Counter({201: 1, "PIX000074": 63})


def test_50_random_keys_on_a_natural_person_over_both_processes_give_five(pair, namespace):
    body = {"account_key": NATURAL_ACCOUNT, "pix_key_type": "random_key"}
    answers = asyncio.run(_spread(pair, namespace, [("POST", "/baas/pix/keys", body)] * 50))
    assert Counter(map(outcome, answers)) == Counter({201: 5, "PIX000014": 45})
    for served in pair:
        listed = httpx.get(f"{served.url}/baas/pix/keys", headers=namespace, params={"account_key": NATURAL_ACCOUNT})
        assert len(listed.json()["pix_keys"]) == 5


def test_the_clock_moved_on_one_process_decides_on_the_other(pair, namespace):
    """Due work is stored with the namespace: the decision made once, whichever process runs it."""
    a, b = pair
    created = httpx.post(f"{a.url}/baas/pix/keys", headers=namespace,
                         json={"account_key": SEED_ACCOUNT, "pix_key_type": "random_key"})
    request_key = created.json()["pix_key_request_key"]
    moved = httpx.post(f"{b.url}/__admin/clock/advance", headers=namespace, json={"seconds": 61})
    assert moved.status_code == 200 and moved.json()["jobs_run"] == 1, moved.text
    for served in pair:
        listed = httpx.get(f"{served.url}/baas/pix/keys", headers=namespace,
                           params={"account_key": SEED_ACCOUNT, "pix_key_status": "active"})
        assert request_key in [k["pix_key_request_key"] for k in listed.json()["pix_keys"]]
    again = httpx.post(f"{a.url}/__admin/clock/advance", headers=namespace, json={"seconds": 61})
    assert again.json()["jobs_run"] == 0  # taken once: the other process finds nothing left


def test_the_health_check_names_the_shared_store(pair):
    answer = httpx.get(f"{pair[0].url}/__admin/health")
    assert answer.status_code == 200
    assert answer.json()["store"] == "redis" and answer.json()["store_reachable"] is True


# -- faults -------------------------------------------------------------------------------------------


def test_a_redis_outage_answers_503_in_bounded_time_and_heals():
    redis = RedisServer()
    redis.start()
    try:
        with serving(redis.url, 1, "--store-timeout", "1") as (served,):
            headers = {**ORG_A, "X-Sandbox-Namespace": "outage"}
            body = {"account_key": SEED_ACCOUNT, "pix_key_type": "random_key"}
            assert httpx.post(f"{served.url}/baas/pix/keys", headers=headers, json=body).status_code == 201
            redis.stop()
            for method, path, api_code in (("POST", "/baas/pix/keys", "code"), ("GET", "/__admin/health", "code")):
                started = time.monotonic()
                answer = httpx.request(method, f"{served.url}{path}", headers=headers, timeout=30,
                                       json=body if method == "POST" else None)
                assert time.monotonic() - started < 5  # bounded: --store-timeout, not a hang
                assert answer.status_code == 503, answer.text
                assert answer.json()[api_code] == "SBX000503"
                assert answer.headers["retry-after"] == "1"
            redis.start()  # the same port: Redis restarted, empty (no persistence in this test)
            healed = None
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                healed = httpx.get(f"{served.url}/__admin/health")
                if healed.status_code == 200:
                    break
                time.sleep(0.1)
            assert healed is not None and healed.status_code == 200, healed.text if healed else None
    finally:
        redis.stop()


# -- starting ----------------------------------------------------------------------------------------


def test_a_shared_store_needs_the_master_key(redis_url):
    env = {key: value for key, value in os.environ.items() if key != "BAAS_SANDBOX_MASTER_KEY"}
    finished = subprocess.run([sys.executable, "-m", "baas_sandbox", "serve", "--port", "0", "--store", redis_url],
                              capture_output=True, text=True, env=env, timeout=60)
    assert finished.returncode == 2
    assert "needs BAAS_SANDBOX_MASTER_KEY" in finished.stderr


def test_several_workers_need_a_shared_store():
    finished = subprocess.run([sys.executable, "-m", "baas_sandbox", "serve", "--port", "0", "--workers", "2"],
                              capture_output=True, text=True, timeout=60)
    assert finished.returncode == 2
    assert "--workers 2 needs a shared store" in finished.stderr


# -- processes dying, workers ------------------------------------------------------------------------


def test_a_process_killed_during_a_load_loses_nothing_it_answered(redis_url, namespace):
    """SIGKILL in the middle of creates: every key answered 201 is stored whole (one atomic step
    each), as the other process shows."""
    with serving(redis_url, 2, "--activation-delay", "60") as (a, b):
        accounts = []
        for index in range(10):  # legal accounts of org-a: 20 keys each
            made = httpx.post(f"{b.url}/__admin/accounts", headers=namespace, json={
                "owner_name": f"LOAD {index} LTDA", "owner_document_number": _cnpj(40_000_000 + index),
                "owner_person_type": "legal", "status": "open", "tenant": "org-a"})
            assert made.status_code == 201, made.text
            accounts.append(made.json()["account_key"])
        answered: list[str] = []

        async def load() -> None:
            async with httpx.AsyncClient(base_url=a.url, headers=namespace, timeout=10) as client:
                async def one(account_key: str) -> None:
                    try:
                        created = await client.post("/baas/pix/keys", json={"account_key": account_key,
                                                                            "pix_key_type": "random_key"})
                    except httpx.HTTPError:  # the process died under it: not answered
                        return
                    if created.status_code == 201:
                        answered.append(created.json()["pix_key_request_key"])

                for round_ in range(40):
                    await asyncio.gather(*(one(account) for account in accounts))
                    if round_ == 3:
                        a.process.send_signal(signal.SIGKILL)

        asyncio.run(load())
        assert a.process.wait(timeout=10) == -signal.SIGKILL
        assert len(answered) >= 40  # the load ran before the kill
        stored = set()
        for account in accounts:
            listed = httpx.get(f"{b.url}/baas/pix/keys", headers=namespace, params={"account_key": account})
            assert listed.status_code == 200
            stored |= {key["pix_key_request_key"] for key in listed.json()["pix_keys"]}
        assert set(answered) <= stored


def _cnpj(base: int) -> str:
    """A valid CNPJ from 12 digits (python-stdnum computes the check digits)."""
    from stdnum.br import cnpj

    digits = f"{base:08d}0001"
    return digits + cnpj.calc_check_digits(digits)


def test_two_workers_serve_one_sandbox(redis_url, namespace):
    with serving(redis_url, 1, "--workers", "2") as (served,):
        assert "2 workers on" in served.log()
        body = {"account_key": NATURAL_ACCOUNT, "pix_key_type": "random_key"}

        async def burst() -> list[httpx.Response]:
            # one connection per request: the kernel spreads them over both workers
            async def one() -> httpx.Response:
                async with httpx.AsyncClient(base_url=served.url, headers=namespace, timeout=30) as client:
                    return await client.post("/baas/pix/keys", json=body)

            return await asyncio.gather(*(one() for _ in range(30)))

        assert Counter(map(outcome, asyncio.run(burst()))) == Counter({201: 5, "PIX000014": 25})
        health = httpx.get(f"{served.url}/__admin/health")
        assert health.status_code == 200 and health.json()["store"] == "redis"


def test_a_stream_on_one_process_sees_a_key_activated_on_the_other(pair, namespace):
    a, b = pair
    name = namespace["X-Sandbox-Namespace"]
    seen: list[str] = []

    async def watch_and_create() -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            async with client.stream("GET", f"{b.url}/__admin/events/stream", params={"namespace": name}) as stream:
                lines = stream.aiter_lines()
                async for line in lines:  # the backlog, then the stream follows live
                    if line.startswith(": following live"):
                        break
                created = await client.post(f"{a.url}/baas/pix/keys", headers=namespace,
                                            json={"account_key": SEED_ACCOUNT, "pix_key_type": "random_key"})
                request_key = created.json()["pix_key_request_key"]
                moved = await client.post(f"{a.url}/__admin/clock/advance", headers=namespace, json={"seconds": 61})
                assert moved.json()["jobs_run"] == 1
                async for line in lines:
                    if line.startswith("event: "):
                        seen.append(line.removeprefix("event: "))
                    if line.startswith("data: ") and "pix_key_activated" in line and request_key in line:
                        return

    asyncio.run(asyncio.wait_for(watch_and_create(), timeout=20))
    assert seen[0] == "pix_key_request_created" and seen[-1] == "pix_key_activated"


def test_a_scenario_switched_on_one_process_applies_on_both_and_counts_once(pair, namespace):
    """crypto-failure: every 2nd credential save answers EBAA0010, the others EBAA0009, counted in
    the store: alternate processes give 0009, 0010, 0009, 0010 (counted per process they would
    give 0009, 0009, 0010, 0010)."""
    a, b = pair
    switched = httpx.put(f"{a.url}/__admin/scenarios/active", headers=namespace, json={"names": ["crypto-failure"]})
    assert switched.status_code == 200 and switched.json()["active"] == ["crypto-failure"]
    body = {"key": "Tc84Hi3CRyAHFBNIvbc8CuSuvHuGibjf", "provider": "BTG", "type": "PIX"}
    headers = {**namespace, "account_token": "Your account token"}
    codes = [httpx.post(f"{served.url}/banking-auth/v1/credentials", headers=headers, json=body).json()["code"]
             for served in (a, b, a, b)]
    assert codes == ["EBAA0009", "EBAA0010", "EBAA0009", "EBAA0010"]
    described = httpx.get(f"{b.url}/__admin/scenarios", headers=namespace).json()
    rules = {r["name"]: (r["matched"], r["applied"]) for s in described["scenarios"] if s["name"] == "crypto-failure"
             for r in s["rules"]}
    assert rules == {"decrypt-error": (4, 2), "decrypted-value-differs": (2, 2)}
    off = httpx.put(f"{b.url}/__admin/scenarios/active", headers=namespace, json={"names": []})
    assert off.status_code == 200
    saved = httpx.post(f"{a.url}/banking-auth/v1/credentials", headers=headers, json=body)
    assert saved.status_code == 201, saved.text


def test_the_journal_holds_the_requests_of_every_process(pair, namespace):
    a, b = pair
    for served in (a, b, a):
        assert httpx.get(f"{served.url}/baas/pix/keys", headers=namespace,
                         params={"account_key": SEED_ACCOUNT}).status_code == 200
    for served in (a, b):
        # an entry is written just after its answer (the request does not wait for it): a read on
        # the other process may come a moment before it
        entries = wait_until(lambda: (lambda found: found if len(found) == 3 else None)(
            httpx.get(f"{served.url}/__admin/requests", headers=namespace,
                      params={"operation_id": "list-pix-keys"}).json()["requests"]), timeout=5)
        assert len({entry["id"] for entry in entries}) == 3
    assert httpx.delete(f"{b.url}/__admin/requests", headers=namespace).status_code == 204
    assert httpx.get(f"{a.url}/__admin/requests", headers=namespace).json()["requests"] == []


def test_a_subscription_made_on_one_process_gets_one_delivery_of_what_the_other_decides(pair, namespace, redis_url):
    """Subscriptions are shared (their secret sealed in the store); the process that publishes an
    event delivers it: the receiver accepts exactly one delivery, with the id the deliveries show."""
    a, b = pair
    with Receiver() as receiver:
        made = httpx.post(f"{a.url}/__admin/webhooks/subscriptions", headers=namespace,
                          json={"url": receiver.url, "events": ["key_inclusion"], "secret": "whsec_shared"})
        assert made.status_code == 201, made.text
        listed = httpx.get(f"{b.url}/__admin/webhooks/subscriptions", headers=namespace).json()["subscriptions"]
        assert made.json()["id"] in [s["id"] for s in listed]
        assert "whsec_shared" not in everything_stored(redis_url, namespace["X-Sandbox-Namespace"])  # sealed
        created = httpx.post(f"{b.url}/baas/pix/keys", headers=namespace,
                             json={"account_key": SEED_ACCOUNT, "pix_key_type": "random_key"})
        request_key = created.json()["pix_key_request_key"]
        assert httpx.post(f"{b.url}/__admin/clock/advance", headers=namespace, json={"seconds": 61}).json()["jobs_run"] == 1
        wait_until(receiver.accepted, timeout=10)  # a real HTTP delivery: real time
        assert httpx.post(f"{a.url}/__admin/clock/advance", headers=namespace, json={"seconds": 61}).json()["jobs_run"] == 0
        deliveries = httpx.get(f"{b.url}/__admin/webhooks/deliveries", headers=namespace).json()["deliveries"]
        assert [d["state"] for d in deliveries] == ["delivered"]
        assert len(receiver.accepted()) == 1
        accepted = receiver.accepted()[0]
        assert accepted.headers["X-Sandbox-Delivery"] == deliveries[0]["id"]
        assert accepted.body["pix_key_request_key"] == request_key
        removed = httpx.delete(f"{b.url}/__admin/webhooks/subscriptions/{made.json()['id']}", headers=namespace)
        assert removed.status_code == 204
        assert httpx.get(f"{a.url}/__admin/webhooks/subscriptions", headers=namespace).json()["subscriptions"] == []


def everything_stored(redis_url: str, namespace: str) -> str:
    """Every key and value of a namespace in Redis, as one text (to look for a secret in it)."""
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    found = []
    for key in client.scan_iter(match=f"sbx:{{{namespace}}}:*"):
        kind = client.type(key)
        value = {"string": client.get, "hash": client.hgetall, "list": lambda k: client.lrange(k, 0, -1),
                 "set": client.smembers, "zset": lambda k: client.zrange(k, 0, -1)}[kind](key)
        found.append(f"{key} {value}")
    client.close()
    assert found  # the namespace is there: the search means something
    return "\n".join(found)
