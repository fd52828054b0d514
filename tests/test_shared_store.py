"""Several ``baas-sandbox serve --store redis://…`` processes are one sandbox: real processes,
real sockets, a real redis-server (``tests/redis_server.py``).

Each test works in a namespace of its own (the Redis server is the session's), so the tests
neither see nor reset each other's state.
"""

from __future__ import annotations

import asyncio
import base64
import json
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

from baas_sandbox.fuzz import stop
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

    def stop(self) -> None:
        stop(self.process)
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
            # the restarted Redis is empty: the namespace is made again from the fixtures
            listed = httpx.get(f"{served.url}/baas/pix/keys", headers=headers, params={"account_key": SEED_ACCOUNT})
            assert listed.status_code == 200, listed.text
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


# -- webhook deliveries: one sandbox's, taken over when their process dies -----------------------------


def _deliveries(served: Served, headers: dict) -> list[dict]:
    answer = httpx.get(f"{served.url}/__admin/webhooks/deliveries", headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["deliveries"]


def _publish_key_inclusion(served: Served, headers: dict) -> str:
    """A key created, then decided (the clock moved past --activation-delay): one key_inclusion."""
    created = httpx.post(f"{served.url}/baas/pix/keys", headers=headers,
                         json={"account_key": SEED_ACCOUNT, "pix_key_type": "random_key"})
    assert created.status_code == 201, created.text
    moved = httpx.post(f"{served.url}/__admin/clock/advance", headers=headers, json={"seconds": 61})
    assert moved.json()["jobs_run"] == 1
    return created.json()["pix_key_request_key"]


def test_a_pending_delivery_of_a_killed_process_is_taken_over_after_its_lease(redis_url, namespace):
    """A's receiver is down (503), then A's retry hangs and A is SIGKILLed with the delivery
    pending: once A's lease (2 s) expires, B takes the delivery over and goes on with its attempts,
    same id: the receiver accepts it exactly once."""
    options = ("--activation-delay", "60", "--webhook-backoff", "0.2", "--webhook-lease", "2")
    with Receiver([503, "hang"]) as receiver, serving(redis_url, 2, *options) as (a, b):
        made = httpx.post(f"{a.url}/__admin/webhooks/subscriptions", headers=namespace,
                          json={"url": receiver.url, "events": ["key_inclusion"], "secret": "whsec_takeover"})
        assert made.status_code == 201, made.text
        assert _deliveries(b, namespace) == []  # B holds the namespace: it tends its deliveries
        request_key = _publish_key_inclusion(a, namespace)
        wait_until(lambda: not receiver.answers, timeout=10)  # a 503, then an attempt left hanging
        pending = wait_until(lambda: [d for d in _deliveries(b, namespace) if d["attempts"]], timeout=5)
        assert [(d["state"], d["attempts"][0]["status"]) for d in pending] == [("pending", 503)]
        assert "whsec_takeover" not in everything_stored(redis_url, namespace["X-Sandbox-Namespace"])  # sealed
        a.process.send_signal(signal.SIGKILL)
        assert a.process.wait(timeout=10) == -signal.SIGKILL
        wait_until(receiver.accepted, timeout=15)
        delivered = wait_until(lambda: [d for d in _deliveries(b, namespace) if d["state"] == "delivered"], timeout=5)
        time.sleep(2.5)  # a lease more: nobody delivers it again
        assert len(receiver.accepted()) == 1
        accepted = receiver.accepted()[0]
        assert accepted.headers["X-Sandbox-Delivery"] == pending[0]["id"] == delivered[0]["id"]
        assert accepted.body["pix_key_request_key"] == request_key
        statuses = [attempt["status"] for attempt in delivered[0]["attempts"]]
        assert statuses[0] == 503 and statuses[-1] == 200  # the attempts went on from A's


def test_both_processes_show_the_same_deliveries_and_either_redelivers(pair, namespace):
    a, b = pair
    with Receiver() as receiver:
        made = httpx.post(f"{a.url}/__admin/webhooks/subscriptions", headers=namespace,
                          json={"url": receiver.url, "events": ["key_inclusion"]})
        assert made.status_code == 201, made.text
        _publish_key_inclusion(a, namespace)
        _publish_key_inclusion(a, namespace)
        wait_until(lambda: len(receiver.accepted()) == 2, timeout=10)
        on_a = wait_until(lambda: [d for d in _deliveries(a, namespace) if d["state"] == "delivered"][1:] and
                          _deliveries(a, namespace), timeout=5)
        assert [d["state"] for d in on_a] == ["delivered", "delivered"]
        assert _deliveries(b, namespace) == on_a  # newest first, on both
        assert on_a[0]["id"] == receiver.accepted()[1].headers["X-Sandbox-Delivery"]
        redelivered = httpx.post(f"{b.url}/__admin/webhooks/deliveries/{on_a[1]['id']}/redeliver", headers=namespace)
        assert redelivered.status_code == 202, redelivered.text
        assert redelivered.json()["id"] == on_a[1]["id"]
        wait_until(lambda: len(receiver.accepted()) == 3, timeout=10)
        assert receiver.accepted()[2].headers["X-Sandbox-Delivery"] == on_a[1]["id"]
        again = wait_until(lambda: [d for d in _deliveries(a, namespace)
                                    if d["id"] == on_a[1]["id"] and len(d["attempts"]) == 2
                                    and d["state"] == "delivered"], timeout=5)
        assert [d["id"] for d in _deliveries(b, namespace)] == [d["id"] for d in on_a]  # in its place
        assert again
        missing = httpx.post(f"{a.url}/__admin/webhooks/deliveries/nope/redeliver", headers=namespace)
        assert missing.status_code == 404


def test_a_corrupt_delivery_record_does_not_stop_the_takeover(pair, namespace, redis_url):
    """Records nobody can read (not JSON, not a delivery, sealed under another key) whose lease
    expired are logged and left as they are; the processes go on tending and answering."""
    import redis

    a, b = pair
    assert _deliveries(a, namespace) == [] and _deliveries(b, namespace) == []  # both hold it
    prefix = f"sbx:{{{namespace['X-Sandbox-Namespace']}}}:"
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        junk = {"bad-json": "{", "bad-shape": '{"delivery": 1}', "bad-secret": json.dumps(
            {"delivery": {"id": "bad-secret"}, "seq": 1, "tries": 0, "sealed_secret": "AAAA"})}
        for order, (delivery_id, text) in enumerate(junk.items()):
            client.hset(prefix + "deliveries", delivery_id, text)
            client.zadd(prefix + "delivery_order", {delivery_id: order})
            client.zadd(prefix + "delivery_leases", {delivery_id: 0})
            client.hset(prefix + "delivery_owners", delivery_id, "dead")
        wait_until(lambda: client.zcard(prefix + "delivery_leases") == 0, timeout=40)  # every 10/3 s
    finally:
        client.close()
    assert _deliveries(a, namespace) == []  # unreadable: not listed
    assert httpx.post(f"{b.url}/__admin/webhooks/deliveries/bad-json/redeliver", headers=namespace).status_code == 404
    assert a.process.poll() is None and b.process.poll() is None
    logs = a.log() + b.log()
    assert all(f"webhook delivery '{delivery_id}' of namespace" in logs for delivery_id in junk)
    assert "cannot be taken over" in logs and "Traceback" not in logs


def test_a_namespace_dropped_through_one_process_is_made_again_from_the_fixtures_on_the_other(pair, namespace):
    a, b = pair
    created = httpx.post(f"{a.url}/baas/pix/keys", headers=namespace,
                         json={"account_key": SEED_ACCOUNT, "pix_key_type": "random_key"})
    assert created.status_code == 201
    before = httpx.get(f"{b.url}/baas/pix/keys", headers=namespace, params={"account_key": SEED_ACCOUNT})
    assert created.json()["pix_key_request_key"] in [k["pix_key_request_key"] for k in before.json()["pix_keys"]]
    name = namespace["X-Sandbox-Namespace"]
    assert httpx.delete(f"{a.url}/__admin/namespaces/{name}").status_code == 204
    listed = httpx.get(f"{b.url}/baas/pix/keys", headers=namespace, params={"account_key": SEED_ACCOUNT})
    assert listed.status_code == 200  # the fixtures again: the dropped key is gone
    assert created.json()["pix_key_request_key"] not in [k["pix_key_request_key"] for k in listed.json()["pix_keys"]]


def test_the_namespaces_are_every_process_s_listed_and_swept_together():
    """The registry in Redis: the list and the idle sweep count every process's namespaces. (A
    Redis of its own: a sweep after one idle second would take other tests' namespaces.)"""
    redis = RedisServer()
    redis.start()
    try:
        _listed_and_swept(redis.url)
    finally:
        redis.stop()


def _listed_and_swept(redis_url: str) -> None:
    prefix = f"reg-{uuid.uuid4().hex[:8]}"
    with serving(redis_url, 2, "--max-namespaces", "1000", "--namespace-idle-ttl", "1") as (a, b):
        for index in range(2):
            made = httpx.get(f"{a.url}/baas/pix/keys", params={"account_key": SEED_ACCOUNT},
                             headers={**ORG_A, "X-Sandbox-Namespace": f"{prefix}-{index}"})
            assert made.status_code == 200
        listed = {n["name"]: n for n in httpx.get(f"{b.url}/__admin/namespaces").json()["namespaces"]}
        assert {f"{prefix}-0", f"{prefix}-1", "default"} <= set(listed)
        assert listed[f"{prefix}-0"]["accounts"] > 0
        # idle for a second: swept by a process, state and all (the default namespace stays)
        wait_until(lambda: not {f"{prefix}-0", f"{prefix}-1"} & {
            n["name"] for n in httpx.get(f"{b.url}/__admin/namespaces").json()["namespaces"]}, timeout=10)
        assert everything_stored_keys(redis_url, f"{prefix}-0") == []


def test_the_namespace_cap_counts_every_process(redis_url):
    redis = RedisServer()  # a Redis of its own: the cap counts every namespace in it
    redis.start()
    try:
        with serving(redis.url, 2, "--max-namespaces", "3", "--namespace-idle-ttl", "0") as (a, b):
            for name in ("one", "two"):  # with the default one: three
                assert httpx.get(f"{a.url}/__admin/health", headers={"X-Sandbox-Namespace": name}).status_code == 200
            refused = httpx.get(f"{b.url}/__admin/health", headers={"X-Sandbox-Namespace": "three"})
            assert (refused.status_code, refused.json()["code"]) == (429, "SBX000429")
            joined = httpx.get(f"{b.url}/__admin/health", headers={"X-Sandbox-Namespace": "two"})
            assert joined.status_code == 200  # another process's namespace is joined, not made
    finally:
        redis.stop()


def everything_stored_keys(redis_url: str, namespace: str) -> list[str]:
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return list(client.scan_iter(match=f"sbx:{{{namespace}}}:*"))
    finally:
        client.close()
