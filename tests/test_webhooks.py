"""Webhooks delivered for real (signed, retried, logged) and the platform's data events."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import jsonschema
import pytest

from baas_sandbox.adapters.fixtures import FixtureError
from baas_sandbox.app import create_app
from baas_sandbox.services.data_events import EVENT_TYPES, event_schema, schema_files
from baas_sandbox.services.sandbox import DEFAULT_FIXTURES, Settings
from tests.conftest import live_server
from tests.helpers import (
    NATURAL_ACCOUNT,
    ORG_A,
    REJECTED_ACCOUNT,
    REJECTED_CPF,
    SEED_ACCOUNT,
    SEED_CNPJ,
    wait_until,
)
from tests.load import post_request, throughput
from tests.receiver import BlackHole, Receiver

SECRET = "whsec_test_secret_0001"
SEED_001 = {"key": "Tc84Hi3CRyAHFBNIvbc8CuSuvHuGibjf", "provider": "BTG", "type": "PIX",
            "provider_data": {"client_id": "Your client ID"}}


def readme_verify():
    """The README's own verification snippet, run as a receiver would run it."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    snippet = readme.split("Verifying the signature", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(snippet, namespace)  # noqa: S102 (our own documentation)
    return namespace["verify"]


verify = readme_verify()


@contextmanager
def sandbox(**settings) -> Iterator[tuple[httpx.Client, object]]:
    with live_server(**settings) as (base_url, box), httpx.Client(base_url=base_url, timeout=10) as client:
        yield client, box


def subscribe(client: httpx.Client, url: str, events: list[str], secret: str | None = SECRET) -> dict:
    body = {"url": url, "events": events} | ({"secret": secret} if secret else {})
    response = client.post("/__admin/webhooks/subscriptions", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def create_key(client: httpx.Client, account: str, key_type: str, value: str | None = None, **headers) -> dict:
    body = {"account_key": account, "pix_key_type": key_type} | ({"pix_key": value} if value else {})
    response = client.post("/baas/pix/keys", json=body, headers=ORG_A | headers)
    assert response.status_code == 201, response.text
    return response.json()


def deliveries(client: httpx.Client, **params) -> list[dict]:
    return client.get("/__admin/webhooks/deliveries", params=params).json()["deliveries"]


# -- delivery -------------------------------------------------------------------------------------


def test_key_inclusion_arrives_signed_after_the_decision():
    """It follows the DICT decision (the activation delay); how soon after is the benchmark's to
    say, not a test's (an upper bound on a shared machine's timing only makes a flaky test)."""
    with sandbox(activation_delay=0.3) as (client, _), Receiver() as receiver:
        subscribe(client, receiver.url, ["key_inclusion"])
        started = time.monotonic()
        request_key = create_key(client, SEED_ACCOUNT, "cnpj", SEED_CNPJ)["pix_key_request_key"]
        wait_until(lambda: receiver.received, timeout=10)
    hook = receiver.received[0]
    assert hook.at - started >= 0.3
    assert hook.body == {"pix_key": SEED_CNPJ, "account_key": SEED_ACCOUNT, "webhook_type": "key_inclusion",
                         "pix_key_status": "active", "pix_key_request_key": request_key,
                         "pix_key_request_type": "inclusion", "pix_key_request_status": "approved"}
    assert verify(SECRET, hook.headers, hook.raw)
    assert not verify("whsec_another_secret", hook.headers, hook.raw)
    assert hook.headers["X-Sandbox-Event"] == "key_inclusion"
    assert hook.headers["Content-Type"] == "application/json"
    assert abs(int(hook.headers["X-Sandbox-Timestamp"]) - time.time()) < 60


def test_a_rejected_request_is_announced_too():
    with sandbox() as (client, _), Receiver() as receiver:
        subscribe(client, receiver.url, ["key_inclusion"])
        request_key = create_key(client, REJECTED_ACCOUNT, "cpf", REJECTED_CPF)["pix_key_request_key"]
        wait_until(lambda: receiver.received)
    assert receiver.received[0].body["pix_key_request_key"] == request_key
    assert receiver.received[0].body["pix_key_request_status"] == "rejected"
    assert receiver.received[0].body["pix_key_status"] == "inactive"


def test_a_receiver_down_for_three_attempts_still_gets_it_once_with_the_same_id():
    with sandbox() as (client, _), Receiver(answers=[503, 500, 502]) as receiver:
        subscribe(client, receiver.url, ["key_inclusion"])
        create_key(client, SEED_ACCOUNT, "cnpj", SEED_CNPJ)
        wait_until(lambda: receiver.accepted(), timeout=10)
        time.sleep(0.3)  # no further attempt comes after the accepted one
        logged = deliveries(client)
    assert [r.status for r in receiver.received] == [503, 500, 502, 200]
    assert len(receiver.accepted()) == 1
    assert len({r.headers["X-Sandbox-Delivery"] for r in receiver.received}) == 1
    assert all(verify(SECRET, r.headers, r.raw) for r in receiver.received)
    (delivery,) = logged
    assert delivery["id"] == receiver.received[0].headers["X-Sandbox-Delivery"]
    assert delivery["state"] == "delivered"
    assert [a["status"] for a in delivery["attempts"]] == [503, 500, 502, 200]


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/hooks"


def test_a_refused_connection_fails_after_the_configured_attempts():
    with sandbox(webhook_attempts=3) as (client, _):
        subscribe(client, closed_port_url(), ["key_inclusion"])
        create_key(client, SEED_ACCOUNT, "cnpj", SEED_CNPJ)
        delivery = wait_until(lambda: [d for d in deliveries(client) if d["state"] == "failed"], timeout=10)[0]
    assert len(delivery["attempts"]) == 3
    assert all(a["status"] is None and "Connect" in a["error"] for a in delivery["attempts"])
    assert delivery["reason"] == "gave up after 3 attempts (--webhook-attempts)"


def test_a_receiver_that_never_answers_fails_without_blocking_the_api():
    with sandbox(webhook_attempts=2, webhook_timeout=0.5) as (client, _), Receiver(answers=["hang"] * 12) as receiver:
        subscribe(client, receiver.url, ["*"])
        create_key(client, SEED_ACCOUNT, "cnpj", SEED_CNPJ)
        # While every delivery is stuck on the receiver, the API keeps answering.
        for _ in range(5):
            assert client.get("/baas/pix/keys", params={"account_key": SEED_ACCOUNT}, headers=ORG_A).status_code == 200
        assert any(d["state"] == "pending" for d in deliveries(client))
        failed = wait_until(lambda: all(d["state"] == "failed" for d in deliveries(client)) and deliveries(client),
                            timeout=10)
        assert failed
        for delivery in deliveries(client):
            assert [a["error"] for a in delivery["attempts"]] == ["no answer within 0.5 s"] * 2


def test_a_failed_delivery_can_be_redelivered_with_its_id():
    with sandbox(webhook_attempts=2) as (client, _), Receiver(answers=[500, 500]) as receiver:
        subscribe(client, receiver.url, ["key_inclusion"])
        create_key(client, SEED_ACCOUNT, "cnpj", SEED_CNPJ)
        failed = wait_until(lambda: [d for d in deliveries(client) if d["state"] == "failed"])[0]
        response = client.post(f"/__admin/webhooks/deliveries/{failed['id']}/redeliver")
        assert response.status_code == 202 and response.json()["state"] == "pending"
        delivered = wait_until(lambda: [d for d in deliveries(client, state="delivered")])[0]
        assert client.post("/__admin/webhooks/deliveries/nope/redeliver").status_code == 404
    assert delivered["id"] == failed["id"]
    assert [a["status"] for a in delivered["attempts"]] == [500, 500, 200]
    assert len({r.headers["X-Sandbox-Delivery"] for r in receiver.received}) == 1


def test_subscriptions_are_listed_and_removed(sandbox_client_http=None):
    with sandbox() as (client, _):
        created = subscribe(client, "http://127.0.0.1:9/x", ["pix_key_activated"], secret=None)
        assert created["secret"].startswith("whsec_")
        assert client.get("/__admin/webhooks/subscriptions").json()["subscriptions"] == [created]
        assert client.delete(f"/__admin/webhooks/subscriptions/{created['id']}").status_code == 204
        assert client.delete(f"/__admin/webhooks/subscriptions/{created['id']}").status_code == 404
        assert client.get("/__admin/webhooks/subscriptions").json() == {"subscriptions": []}


@pytest.mark.parametrize("body,field", [
    ({"url": "http://127.0.0.1:9/x", "events": ["key_exclusion"]}, "events"),
    ({"url": "ftp://example/x", "events": ["key_inclusion"]}, "url"),
    ({"url": "http://127.0.0.1:9/x", "events": []}, "events"),
    ({"url": "http://127.0.0.1:9/x", "events": ["*"], "secret": "short"}, "secret"),
])
def test_bad_subscriptions_are_refused(body, field):
    with sandbox() as (client, _):
        response = client.post("/__admin/webhooks/subscriptions", json=body)
    assert response.status_code == 400
    assert response.json()["details"].startswith(field)


def fixtures_with_webhooks(tmp_path: Path, text: str) -> Path:
    directory = tmp_path / "fixtures"
    shutil.copytree(DEFAULT_FIXTURES, directory)
    (directory / "webhooks.yaml").write_text(text)
    return directory


def test_subscriptions_come_from_a_fixture_file_and_survive_reset(tmp_path):
    with Receiver() as receiver:
        text = f"subscriptions:\n  - url: {receiver.url}\n    events: [key_inclusion]\n    secret: {SECRET}\n"
        with sandbox(fixtures_dir=fixtures_with_webhooks(tmp_path, text)) as (client, _):
            client.post("/__admin/reset")
            create_key(client, SEED_ACCOUNT, "cnpj", SEED_CNPJ)
            wait_until(lambda: receiver.accepted())
    assert verify(SECRET, receiver.received[0].headers, receiver.received[0].raw)


def test_a_malformed_webhooks_fixture_is_refused_with_its_line(tmp_path):
    text = "subscriptions:\n  - url: http://127.0.0.1:9/x\n    events: [key_inclusion, key_exclusion]\n"
    with pytest.raises(FixtureError, match=r"webhooks.yaml:3: subscriptions\[0\].events: unknown .key_exclusion."):
        create_app(Settings(fixtures_dir=fixtures_with_webhooks(tmp_path, text), hot_reload=False))


# -- data events ----------------------------------------------------------------------------------


def test_every_event_type_has_a_draft_07_schema_in_the_seed_style():
    assert {p.stem for p in schema_files()} == set(EVENT_TYPES)
    for event_type in EVENT_TYPES:
        schema = event_schema(event_type)
        jsonschema.Draft7Validator.check_schema(schema)
        assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
        assert schema["title"] and schema["description"]
        for name, prop in {**schema["properties"], **schema["properties"]["data"]["properties"]}.items():
            assert prop.get("title") and prop.get("description"), f"{event_type}.{name}"
            if name != "data":
                assert prop.get("examples"), f"{event_type}.{name} has no examples"


def run_every_flow(client: httpx.Client) -> dict[str, str]:
    """A flow that makes every event type; returns the tracking_id sent with each step."""
    client.post("/banking-auth/v1/credentials", json=SEED_001,
                headers=ORG_A | {"account_token": "t", "tracking_id": "trk-credential-1"})
    client.post("/banking-auth/v1/credentials", json=SEED_001 | {"key": "another"},
                headers=ORG_A | {"account_token": "t", "tracking_id": "trk-credential-2"})
    email = create_key(client, NATURAL_ACCOUNT, "email", "maria@example.com", tracking_id="trk-email")
    code = client.get("/__admin/outbox").json()["messages"][-1]["verification_code"]
    path = f"/baas/pix/keys/{email['pix_key_request_key']}/twofa_validation"
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    client.patch(path, json={"verification_code": wrong}, headers=ORG_A | {"tracking_id": "trk-wrong"})
    client.patch(path, json={"verification_code": code}, headers=ORG_A | {"tracking_id": "trk-right"})
    create_key(client, REJECTED_ACCOUNT, "cpf", REJECTED_CPF, tracking_id="trk-rejected")
    wait_until(lambda: {"pix_key_activated", "pix_key_request_rejected"}
               <= {e["event_type"] for e in client.get("/__admin/events").json()["events"]})
    deleted = client.delete("/baas/pix/keys/maria@example.com", headers=ORG_A | {"tracking_id": "trk-delete"})
    assert deleted.status_code == 200, deleted.text
    claimed = client.post("/mock/pix_keys/key_claim_simulation/receive",
                          json={"pix_key": "financeiro@padaria-aurora.com.br", "pix_key_type": "email"},
                          headers=ORG_A | {"tracking_id": "trk-claim"})
    assert claimed.status_code == 201, claimed.text
    return {"code": code}


def test_every_state_change_is_a_data_event_in_the_platforms_envelope():
    with sandbox() as (client, _):
        secrets = run_every_flow(client)
        events = client.get("/__admin/events").json()["events"]
    by_type = {}
    for event in events:
        by_type.setdefault(event["event_type"], []).append(event)
    assert set(by_type) == set(EVENT_TYPES)
    for event in events:  # each against its own schema (conftest checks every test's events too)
        jsonschema.Draft7Validator(event_schema(event["event_type"])).validate(event)
        assert event["org_id"] == "org-a"
    assert by_type["credential_saved"][0]["cid"] == "trk-credential-1"
    assert by_type["credential_replaced"][0]["cid"] == "trk-credential-2"
    assert by_type["two_step_validation_failed"][0]["cid"] == "trk-wrong"
    assert by_type["two_step_validation_failed"][0]["data"]["reason"] == "wrong_code"
    assert by_type["two_step_validation_succeeded"][0]["cid"] == "trk-right"
    assert by_type["pix_key_request_rejected"][0]["cid"] == "trk-rejected"
    assert by_type["pix_key_activated"][0]["cid"] == "trk-email"  # the flow's creating request
    assert by_type["pix_key_deleted"][0]["cid"] == "trk-delete"
    assert by_type["pix_key_deleted"][0]["data"]["pix_key"] == "maria@example.com"
    assert by_type["pix_key_claim_status_changed"][0]["cid"] == "trk-claim"
    text = json.dumps(events)
    assert SEED_001["key"] not in text and "another" not in text  # no provider key
    assert f'"{secrets["code"]}"' not in text  # no verification code


def test_events_can_be_filtered_by_type_and_time():
    with sandbox() as (client, _):
        run_every_flow(client)
        only = client.get("/__admin/events", params={"type": "credential_saved"}).json()["events"]
        assert [e["event_type"] for e in only] == ["credential_saved"]
        assert client.get("/__admin/events", params={"since": "2999-01-01T00:00:00"}).json() == {"events": []}
        assert client.get("/__admin/events", params={"since": "yesterday"}).status_code == 400


def test_a_subscriber_to_data_events_receives_the_envelopes():
    with sandbox() as (client, _), Receiver() as receiver:
        subscribe(client, receiver.url, ["pix_key_request_created", "pix_key_activated"])
        create_key(client, SEED_ACCOUNT, "cnpj", SEED_CNPJ)
        wait_until(lambda: len(receiver.accepted()) == 2)
    assert [r.headers["X-Sandbox-Event"] for r in receiver.received] == ["pix_key_request_created",
                                                                         "pix_key_activated"]
    for hook in receiver.received:
        jsonschema.Draft7Validator(event_schema(hook.body["event_type"])).validate(hook.body)


# -- Server-Sent Events ---------------------------------------------------------------------------


class StreamReader:
    """Reads an SSE stream in a thread, so a test can act while it waits."""

    def __init__(self, url: str, headers: dict | None = None) -> None:
        self.messages: list[dict] = []
        self._url, self._headers = url, headers or {}
        self._thread = threading.Thread(target=self._read, daemon=True)
        self.connected = threading.Event()

    def _read(self) -> None:
        try:
            self._read_messages()
        except httpx.TransportError:
            pass  # the server went away (the test stops it): the stream ends

    def _read_messages(self) -> None:
        with httpx.stream("GET", self._url, headers=self._headers, timeout=None) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            self.connected.set()
            message: dict = {}
            for line in response.iter_lines():
                if line.startswith(":"):
                    continue
                if not line:
                    if message:
                        self.messages.append(message)
                    message = {}
                    continue
                field, _, value = line.partition(": ")
                message[field] = json.loads(value) if field == "data" else value

    def __enter__(self) -> "StreamReader":
        self._thread.start()
        assert self.connected.wait(5)
        return self

    def __exit__(self, *exc) -> None:
        pass  # the daemon thread ends with the server


def test_a_client_waiting_on_the_stream_sees_the_key_activation():
    with live_server() as (base_url, _):
        with StreamReader(f"{base_url}/__admin/events/stream?type=pix_key_activated") as stream:
            with httpx.Client(base_url=base_url) as client:
                request_key = create_key(client, SEED_ACCOUNT, "cnpj", SEED_CNPJ)["pix_key_request_key"]
            wait_until(lambda: stream.messages, timeout=5)
    (message,) = stream.messages
    assert message["event"] == "pix_key_activated"
    assert message["data"]["data"]["pix_key_request_key"] == request_key
    assert message["id"] == message["data"]["event_id"]


def test_the_stream_replays_after_last_event_id():
    with live_server() as (base_url, _):
        with httpx.Client(base_url=base_url) as client:
            create_key(client, SEED_ACCOUNT, "random_key")
            create_key(client, NATURAL_ACCOUNT, "random_key")
            events = client.get("/__admin/events", params={"type": "pix_key_request_created"}).json()["events"]
        url = f"{base_url}/__admin/events/stream?type=pix_key_request_created"
        with StreamReader(url, {"Last-Event-ID": events[0]["event_id"]}) as stream:
            wait_until(lambda: stream.messages)
            time.sleep(0.2)
    assert [m["id"] for m in stream.messages] == [events[1]["event_id"]]


def test_the_outbox_stream_delivers_the_verification_code():
    with live_server() as (base_url, _):
        with StreamReader(f"{base_url}/__admin/outbox/stream") as stream, httpx.Client(base_url=base_url) as client:
            request_key = create_key(client, SEED_ACCOUNT, "email", "vovo.lucia@gmail.com.br")["pix_key_request_key"]
            # (after the code of the fixture's waiting request, key_requests.yaml: the stream replays)
            ours = lambda: [m for m in stream.messages if m["data"]["pix_key_request_key"] == request_key]  # noqa: E731
            wait_until(ours)
            code = ours()[0]["data"]["verification_code"]
            confirmed = client.patch(f"/baas/pix/keys/{request_key}/twofa_validation",
                                     json={"verification_code": code}, headers=ORG_A)
    assert ours()[0]["event"] == "verification_code"
    assert confirmed.status_code == 200


def test_the_server_stops_promptly_with_a_stream_open():
    """An open EventSource (a browser tab) must not keep `baas-sandbox serve` from stopping."""
    import signal
    import subprocess
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [str(Path(sys.executable).with_name("baas-sandbox")), "serve", "--port", str(port),
               "--log-level", "warning"]
    server = subprocess.Popen(command, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}/__admin/accounts"), timeout=20, interval=0.1)
        with StreamReader(f"http://127.0.0.1:{port}/__admin/events/stream"):
            server.send_signal(signal.SIGINT)
            # It stops (the graceful shutdown is bounded at 2 s); a server held by the stream would
            # hang for ever: the wait's generous bound is what fails then, not a timing claim.
            server.wait(timeout=15)
    finally:
        if server.poll() is None:
            server.kill()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_the_readme_verification_refuses_an_old_delivery():
    with sandbox() as (client, _), Receiver() as receiver:
        subscribe(client, receiver.url, ["key_inclusion"])
        create_key(client, SEED_ACCOUNT, "cnpj", SEED_CNPJ)
        hook = wait_until(lambda: receiver.accepted())[0]
    assert verify(SECRET, hook.headers, hook.raw)
    tampered = hook.raw.replace(b'"active"', b'"inactive"')
    assert not verify(SECRET, hook.headers, tampered)
    from baas_sandbox.adapters.webhooks import sign

    old = str(int(time.time()) - 3600)
    replayed = hook.headers | {"X-Sandbox-Timestamp": old, "X-Sandbox-Signature": sign(SECRET, old, hook.raw)}
    assert not verify(SECRET, replayed, hook.raw)


@pytest.mark.parametrize("url", ["http://example.com/hooks", "https://10.0.0.7:8443/x", "http://localhost.evil.test/"])
def test_webhooks_go_to_this_machine_only_by_default(url):
    with sandbox() as (client, _):
        response = client.post("/__admin/webhooks/subscriptions", json={"url": url, "events": ["*"]})
        assert client.get("/__admin/webhooks/subscriptions").json() == {"subscriptions": []}
    assert response.status_code == 400
    assert response.json()["details"].startswith("url: host")
    assert "--webhook-allowed-hosts" in response.json()["details"]


def test_other_hosts_can_be_allowed():
    with sandbox(webhook_allowed_hosts=("receiver.partner.test",)) as (client, _):
        allowed = client.post("/__admin/webhooks/subscriptions",
                              json={"url": "http://receiver.partner.test:9000/x", "events": ["key_inclusion"]})
        loopback = client.post("/__admin/webhooks/subscriptions",
                               json={"url": "http://127.0.0.1:9000/x", "events": ["key_inclusion"]})
    assert allowed.status_code == 201 and loopback.status_code == 400


def test_a_fixture_subscription_to_another_host_is_refused_with_its_line(tmp_path):
    text = "subscriptions:\n  - url: http://example.com/x\n    events: [key_inclusion]\n"
    with pytest.raises(FixtureError, match=r"webhooks.yaml:2: subscriptions\[0\].url: host 'example.com'"):
        create_app(Settings(fixtures_dir=fixtures_with_webhooks(tmp_path, text), hot_reload=False))


@pytest.mark.parametrize("url", ["http://localhost:abc/x", "http://[::1"])
def test_a_malformed_url_is_a_400_not_a_crash(url):
    with sandbox() as (client, _):
        response = client.post("/__admin/webhooks/subscriptions", json={"url": url, "events": ["*"]})
    assert response.status_code == 400
    assert response.json()["details"].startswith("url: is not a valid URL")


def test_redelivering_a_delivery_in_flight_replaces_its_series():
    """Found in review: each redeliver started another series in parallel."""
    with sandbox(webhook_attempts=3, webhook_backoff=0.3) as (client, _), \
            Receiver(answers=[500] * 3 + [200]) as receiver:
        subscribe(client, receiver.url, ["key_inclusion"])
        create_key(client, SEED_ACCOUNT, "cnpj", SEED_CNPJ)
        delivery = wait_until(lambda: deliveries(client) and deliveries(client)[0]["attempts"])
        delivery_id = deliveries(client)[0]["id"]
        for _ in range(3):
            assert client.post(f"/__admin/webhooks/deliveries/{delivery_id}/redeliver").status_code == 202
        wait_until(lambda: deliveries(client, state="delivered"), timeout=10)
        time.sleep(1.0)  # a parallel series would still be sending
        assert len(receiver.accepted()) == 1
        assert delivery
    statuses = [r.status for r in receiver.received]
    assert statuses.count(200) == 1 and len(statuses) <= 4 + 3


def test_reset_keeps_the_fixture_subscriptions_ids_and_secrets(tmp_path):
    """Found in review: a reset made new ones, so a receiver set up from them stopped verifying."""
    text = "subscriptions:\n  - url: http://127.0.0.1:9/x\n    events: [key_inclusion]\n"
    with sandbox(fixtures_dir=fixtures_with_webhooks(tmp_path, text)) as (client, _):
        before = client.get("/__admin/webhooks/subscriptions").json()
        client.post("/__admin/reset")
        assert client.get("/__admin/webhooks/subscriptions").json() == before


def test_a_fault_damages_a_business_error_too(tmp_path):
    """Found in review: truncate/drip let errors raised by the handler through untouched."""
    from tests.test_scenarios import fixtures_with, raw_request, read_all

    text = "rules:\n  - match: {operation: list-pix-keys}\n    fault: {truncate: {fraction: 0.3}}\n"
    with live_server(fixtures_dir=fixtures_with(tmp_path, cut=text), scenarios=["cut"]) as (base_url, _):
        data, _ = read_all(raw_request(base_url, "/baas/pix/keys?account_key=00000000-0000-4000-8000-000000000000"))
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404 Not Found")
    announced = int([line.split(b":")[1] for line in head.split(b"\r\n") if line.startswith(b"content-length")][0])
    assert 0 < len(body) < announced


# -- a dispatcher that cannot jam or starve the API (issue 11) -------------------------------------


def dispatch(client: httpx.Client, subscription_id: str) -> dict:
    (found,) = [s for s in client.get("/__admin/webhooks/subscriptions").json()["subscriptions"]
                if s["id"] == subscription_id]
    return found


def delivered_to(client: httpx.Client, receiver: Receiver) -> list[dict]:
    """Its deliveries the sandbox has seen answered (a receiver counts one before it answers)."""
    return [d for d in deliveries(client, state="delivered") if d["url"] == receiver.url]


def test_a_subscription_that_keeps_failing_is_paused_by_its_circuit():
    """After the breaker's consecutive failures no attempt goes out until the cool-down ends; then
    one trial, whose success lets the waiting deliveries go (none spent its attempts meanwhile)."""
    settings = {"webhook_breaker_failures": 3, "webhook_breaker_cooldown": 1.0, "webhook_concurrency": 1,
                "webhook_attempts": 4}
    with sandbox(**settings) as (client, _), Receiver(answers=[503] * 3) as receiver:
        subscription = subscribe(client, receiver.url, ["pix_key_request_created", "pix_key_activated",
                                                        "key_inclusion"])
        create_key(client, SEED_ACCOUNT, "cnpj", SEED_CNPJ)
        wait_until(lambda: dispatch(client, subscription["id"])["circuit"] == "open")
        logged = wait_until(lambda: len(delivered_to(client, receiver)) == 3 and deliveries(client), timeout=10)
        state = dispatch(client, subscription["id"])
    assert (state["circuit"], state["pending"]) == ("closed", 0)
    assert [r.status for r in receiver.received] == [503, 503, 503, 200, 200, 200]
    assert receiver.received[3].at - receiver.received[2].at >= 1.0  # the cool-down, not the 0.05 s backoff
    assert [d["state"] for d in logged] == ["delivered"] * 3
    assert all(d["reason"] is None for d in logged)


def test_a_full_queue_drops_its_oldest_delivery_with_the_reason():
    with sandbox(webhook_queue_size=2, webhook_breaker_failures=1, webhook_breaker_cooldown=60) as (client, _):
        subscription = subscribe(client, closed_port_url(), ["*"])
        for n in range(5):
            saved = client.post("/banking-auth/v1/credentials", json=SEED_001, headers=ORG_A | {"account_token": "t"})
            assert saved.status_code in (200, 201)
            if n == 0:  # its refused attempt opens the circuit: the others wait in the queue
                wait_until(lambda: dispatch(client, subscription["id"])["circuit"] == "open")
        logged = deliveries(client)
        state = dispatch(client, subscription["id"])
    assert state["circuit"] == "open" and state["pending"] == 2
    assert [d["state"] for d in logged] == ["pending", "pending", "failed", "failed", "failed"]  # newest first
    for dropped in logged[2:]:
        assert dropped["reason"].startswith("dropped unsent: 2 newer deliveries were pending")
    assert sum(len(d["attempts"]) for d in logged) == 1  # the circuit opened on the first failure


def test_an_answer_that_never_finishes_frees_its_slot_at_the_deadline():
    """A receiver that sends a byte now and then never trips a read time-out: the attempt's whole
    deadline (twice --webhook-timeout) ends it, and the connection is closed."""
    with sandbox(webhook_timeout=1.0, webhook_attempts=1) as (client, _), BlackHole(trickle=0.05) as hole:
        subscribe(client, hole.url, ["key_inclusion"])
        create_key(client, SEED_ACCOUNT, "cnpj", SEED_CNPJ)
        failed = wait_until(lambda: deliveries(client, state="failed"), timeout=10)
        wait_until(lambda: hole.open_connections() == 0)
    assert [a["error"] for a in failed[0]["attempts"]] == ["no complete answer within 2.0 s"]
    assert failed[0]["reason"] == "gave up after 1 attempt (--webhook-attempts)"


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[str]:
    """``baas-sandbox serve`` in its own process: a load test measures the server, not a server
    sharing the test's interpreter lock. A short backoff: a refused port's circuit opens at once; a
    long time-out: a black hole holds its connections until the sandbox lets go of them."""
    import subprocess
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tmp_path_factory.mktemp("served") / "server.log"
    command = [str(Path(sys.executable).with_name("baas-sandbox")), "serve", "--port", str(port), "--no-reload",
               "--log-level", "warning", "--webhook-timeout", "30", "--webhook-backoff", "0.05"]
    with log.open("w") as stderr:
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(f"{base_url}/__admin/accounts"), timeout=20, interval=0.1)
        yield base_url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:  # a jammed dispatcher once kept it from stopping
            server.kill()
            server.wait(timeout=10)


CREDENTIAL_REQUEST = post_request("http://127.0.0.1", "/banking-auth/v1/credentials", SEED_001,
                                  ORG_A | {"account_token": "t"})
REQUESTS_PER_ROUND = 3000


def credentials_per_second(base_url: str) -> float:
    rate, statuses = throughput(base_url, CREDENTIAL_REQUEST, REQUESTS_PER_ROUND)
    assert set(statuses) <= {200, 201}, set(statuses)
    return rate


@pytest.mark.parametrize("receiver_kind", ["refused", "black_hole", "live"])
def test_a_star_subscription_under_load_neither_starves_the_api_nor_delays_a_new_subscriber(served, receiver_kind):
    """Issue 11, reproductions 8 and 9: with `*` to a dead receiver under load the API kept 1% of
    its throughput (2% with a live one), and a subscriber added afterwards never got its deliveries."""
    import statistics

    with BlackHole() as hole, Receiver() as live, httpx.Client(base_url=served, timeout=10) as client:
        url = {"refused": closed_port_url(), "black_hole": hole.url, "live": live.url}[receiver_kind]
        alone, with_star = [], []
        for _ in range(3):  # in turns, the median of each: another process's burst hits both alike
            client.post("/__admin/reset")
            alone.append(credentials_per_second(served))
            client.post("/__admin/reset")
            star = subscribe(client, url, ["*"])
            with_star.append(credentials_per_second(served))
        ratio = statistics.median(with_star) / statistics.median(alone)
        assert ratio >= 0.5, f"{with_star} req/s with the `*` subscription, {alone} without"

        backlog = dispatch(client, star["id"])["pending"]
        assert backlog <= 1000  # bounded: --webhook-queue-size
        with Receiver() as receiver:
            subscribe(client, receiver.url, ["credential_replaced"])
            client.post("/banking-auth/v1/credentials", json=SEED_001, headers=ORG_A | {"account_token": "t"})
            (delivered,) = wait_until(lambda: delivered_to(client, receiver), timeout=10)
            still_pending = dispatch(client, star["id"])["pending"]
        # Its first attempt went through: it waited neither for a shared connection pool nor for
        # the dead subscription's backlog, which is still there.
        assert [a["status"] for a in delivered["attempts"]] == [200]
        if receiver_kind != "live":
            assert backlog > 0 and still_pending > 0


def test_reset_returns_a_loaded_dispatcher_to_a_clean_state(served):
    """Issue 11, reproduction 8: after a load to dead receivers, not even a reset healed it."""
    with BlackHole() as hole, httpx.Client(base_url=served, timeout=10) as client:
        client.post("/__admin/reset")
        subscribe(client, hole.url, ["*"])
        subscribe(client, closed_port_url(), ["*"])
        credentials_per_second(served)
        wait_until(lambda: hole.open_connections() >= 4)  # --webhook-concurrency, all hanging
        assert hole.accepted == 4  # and no more, however many deliveries are queued
        assert client.post("/__admin/reset").status_code == 200
        wait_until(lambda: hole.open_connections() == 0)  # every attempt in flight let go, long before its time-out
        assert client.get("/__admin/webhooks/subscriptions").json() == {"subscriptions": []}
        assert deliveries(client) == []
        with Receiver() as receiver:
            subscribe(client, receiver.url, ["credential_saved"])  # the first since the reset
            client.post("/banking-auth/v1/credentials", json=SEED_001, headers=ORG_A | {"account_token": "t"})
            (delivered,) = wait_until(lambda: delivered_to(client, receiver), timeout=10)
            assert len(deliveries(client)) == 1
        assert [a["status"] for a in delivered["attempts"]] == [200]
