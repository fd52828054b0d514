"""Namespaces (X-Sandbox-Namespace) and each namespace's clock, through HTTP.

Two namespaces on one server share nothing; a reset of one leaves the other; a namespace's clock
moves its time rules (a code's expiry, the DICT decision) with no sleep."""

from __future__ import annotations

import pytest

from baas_sandbox.services.namespaces import Namespaces
from tests.helpers import NATURAL_ACCOUNT, ORG_A, SEED_ACCOUNT, SEED_CNPJ

KEYS = "/baas/pix/keys"
FIXTURE_REQUEST = "f6209b7e-82da-44a8-9cfa-6ad0a689adb2"  # fixtures/key_requests.yaml: in every namespace


def ns(name: str, headers: dict | None = None) -> dict:
    return {**(headers or ORG_A), "X-Sandbox-Namespace": name}


def create(client, namespace: str, key_type: str = "cnpj", value: str | None = SEED_CNPJ, account=SEED_ACCOUNT):
    body = {"account_key": account, "pix_key_type": key_type, **({"pix_key": value} if value else {})}
    return client.post(KEYS, json=body, headers=ns(namespace))


def keys(client, namespace: str, account=SEED_ACCOUNT) -> list[dict]:
    answer = client.get(KEYS, params={"account_key": account}, headers=ns(namespace))
    assert answer.status_code == 200, answer.text
    return answer.json()["pix_keys"]


def admin(client, method: str, path: str, namespace: str, **kwargs):
    return client.request(method, f"/__admin{path}", headers={"X-Sandbox-Namespace": namespace}, **kwargs)


def freeze(client, namespace: str) -> None:
    assert admin(client, "PUT", "/clock", namespace, json={"frozen": True}).json()["frozen"] is True


def advance(client, namespace: str, seconds: float) -> dict:
    answer = admin(client, "POST", "/clock/advance", namespace, json={"seconds": seconds})
    assert answer.status_code == 200, answer.text
    return answer.json()


# -- isolation --------------------------------------------------------------------------------------


def test_the_same_key_is_owned_once_per_namespace(client):
    assert create(client, "team-a").status_code == 201
    assert create(client, "team-b").status_code == 201  # another sandbox: the key is free there
    again = create(client, "team-a")
    assert again.status_code == 400 and again.json()["code"] == "PIX000074"  # its creation is not finished
    assert [k["pix_key"] for k in keys(client, "team-a")] == [SEED_CNPJ]
    assert keys(client, "default") == []  # no header: the default namespace, untouched


def test_codes_events_journal_and_webhook_records_are_per_namespace(client):
    freeze(client, "b")
    made = create(client, "a", "email", "maria@example.com", NATURAL_ACCOUNT)
    assert made.status_code == 201
    request_key = made.json()["pix_key_request_key"]
    outbox_a = admin(client, "GET", "/outbox", "a").json()["messages"]
    # the fixture's waiting request (key_requests.yaml) is in every namespace's outbox; this one, in a's only
    outbox_a = [m for m in outbox_a if m["pix_key_request_key"] is not None]  # not the fixture claim's code
    assert [m["pix_key_request_key"] for m in outbox_a] == [FIXTURE_REQUEST, request_key]
    assert [m["pix_key_request_key"] for m in admin(client, "GET", "/outbox", "b").json()["messages"]
            if m["pix_key_request_key"] is not None] == [
        FIXTURE_REQUEST]
    assert [e["event_type"] for e in admin(client, "GET", "/events", "a").json()["events"]][:2] == [
        "pix_key_request_created", "verification_code_sent"]
    assert admin(client, "GET", "/events", "b").json()["events"] == []
    journal_a = admin(client, "GET", "/requests", "a").json()["requests"]
    assert [r["operation_id"] for r in journal_a] == ["create-pix-key"]
    assert admin(client, "GET", "/requests", "b").json()["requests"] == []
    # the query parameter names the namespace too (a browser's EventSource cannot send headers)
    by_query = [m for m in client.get("/__admin/outbox", params={"namespace": "a"}).json()["messages"]
                if m["pix_key_request_key"] is not None]
    assert by_query == outbox_a


def test_scenarios_and_their_counts_are_per_namespace(client):
    switched = admin(client, "PUT", "/scenarios/active", "outage", json={"names": ["provider-outage"]})
    assert switched.status_code == 200, switched.text
    body = {"provider": "BTG", "type": "PIX", "key": "Tc84Hi3CRyAHFBNIvbc8CuSuvHuGibjf"}
    token = {"account_token": "t"}
    hit = client.post("/banking-auth/v1/credentials", json=body, headers=ns("outage", ORG_A | token))
    calm = client.post("/banking-auth/v1/credentials", json=body, headers=ns("calm", ORG_A | token))
    assert hit.status_code == 502 and calm.status_code == 201, (hit.text, calm.text)
    assert admin(client, "GET", "/scenarios", "calm").json()["active"] == []
    rules = admin(client, "GET", "/scenarios", "outage").json()["scenarios"]
    applied = sum(rule["applied"] for s in rules if s["name"] == "provider-outage" for rule in s["rules"])
    assert applied == 1


def test_a_reset_resets_its_own_namespace_only(client):
    assert create(client, "keep").status_code == 201
    assert create(client, "wipe").status_code == 201
    assert admin(client, "POST", "/reset", "wipe").status_code == 200
    assert keys(client, "wipe") == []
    assert [k["pix_key"] for k in keys(client, "keep")] == [SEED_CNPJ]


def test_namespaces_are_listed_and_dropped(client):
    assert create(client, "ci-1").status_code == 201
    listed = {n["name"]: n for n in client.get("/__admin/namespaces").json()["namespaces"]}
    # with the fixture key requests (one waiting, four active), in every namespace
    assert listed["ci-1"]["keys"] == 6 and listed["ci-1"]["key_requests"] == 6
    assert listed["default"]["keys"] == 5
    assert listed["ci-1"]["accounts"] == listed["default"]["accounts"] == 9
    assert client.delete("/__admin/namespaces/ci-1").status_code == 204
    assert "ci-1" not in {n["name"] for n in client.get("/__admin/namespaces").json()["namespaces"]}
    gone = client.delete("/__admin/namespaces/ci-1")
    assert gone.status_code == 404 and gone.json()["code"] == "SBX000404"
    assert keys(client, "ci-1") == []  # named again: a fresh namespace from the fixtures


@pytest.mark.parametrize("name", ["", "a" * 65, "team a", "ns/../x", "ñ".encode(), "a;b"])
def test_an_invalid_namespace_is_refused_in_each_apis_format(client, name):
    baas = client.get(KEYS, params={"account_key": SEED_ACCOUNT}, headers=ns(name))
    assert baas.status_code == 400 and baas.json()["code"] == "SBX000400", baas.text
    assert "X-Sandbox-Namespace" in baas.json()["description"] or "x-sandbox-namespace" in baas.json()["description"]
    auth = client.post("/banking-auth/v1/credentials", json={}, headers=ns(name))
    assert auth.status_code == 400 and auth.json()["code"] == "EBAA0004", auth.text  # its invalid payload
    assert "x-sandbox-namespace" in auth.json()["details"]
    control = client.get("/__admin/accounts", headers={"X-Sandbox-Namespace": name})
    assert control.status_code == 400 and control.json()["code"] == "SBX000400"
    query = client.get("/__admin/accounts", params={"namespace": name.decode() if isinstance(name, bytes) else name})
    assert query.status_code == 400 and query.json()["code"] == "SBX000400"
    names = {n["name"] for n in client.get("/__admin/namespaces").json()["namespaces"]}
    assert names == {"default"}  # nothing made, nothing else touched


def test_one_namespace_too_many_is_refused_and_nothing_else_is_affected(client_with):
    with client_with(max_namespaces=3) as client:
        assert create(client, "one").status_code == 201
        assert create(client, "two").status_code == 201  # with default: three
        refused = create(client, "three")
        assert refused.status_code == 429 and refused.json()["code"] == "SBX000429", refused.text
        assert "--max-namespaces" in refused.json()["description"]
        control = client.get("/__admin/accounts", headers={"X-Sandbox-Namespace": "three"})
        assert control.status_code == 429 and control.json()["code"] == "SBX000429"
        assert [k["pix_key"] for k in keys(client, "one")] == [SEED_CNPJ]  # the others work on
        assert client.delete("/__admin/namespaces/two").status_code == 204
        assert create(client, "three").status_code == 201  # room again


def test_idle_namespaces_are_dropped_but_never_the_default_one(client):
    namespaces: Namespaces = client.app.namespaces
    seconds = [0.0]
    namespaces._monotonic = lambda: seconds[0]
    assert create(client, "idle").status_code == 201
    assert create(client, "busy").status_code == 201
    seconds[0] = namespaces.idle_ttl - 1
    keys(client, "busy")
    seconds[0] = namespaces.idle_ttl + 1
    assert namespaces.drop_idle() == ["idle"]
    assert {s.name for s in namespaces} == {"default", "busy"}


def test_webhook_subscriptions_and_deliveries_are_per_namespace(client):
    from tests.helpers import wait_until
    from tests.receiver import Receiver

    with Receiver() as receiver:
        made = admin(client, "POST", "/webhooks/subscriptions", "hooks",
                     json={"url": receiver.url, "events": ["key_inclusion"]})
        assert made.status_code == 201, made.text
        others = admin(client, "GET", "/webhooks/subscriptions", "other").json()["subscriptions"]
        assert receiver.url not in [s["url"] for s in others]
        freeze(client, "other")
        assert create(client, "other").status_code == 201
        advance(client, "other", 1)  # decided there: nothing for the subscription of "hooks"
        freeze(client, "hooks")
        assert create(client, "hooks").status_code == 201
        advance(client, "hooks", 1)
        wait_until(lambda: receiver.accepted())
        deliveries = admin(client, "GET", "/webhooks/deliveries", "hooks").json()["deliveries"]
        assert admin(client, "GET", "/webhooks/deliveries", "other").json()["deliveries"] == []
    assert len(receiver.received) == 1
    assert receiver.received[0].headers["X-Sandbox-Namespace"] == "hooks"
    assert receiver.received[0].body["pix_key_request_status"] == "approved"
    assert deliveries[0]["id"] == receiver.received[0].headers["X-Sandbox-Delivery"]


# -- the clock --------------------------------------------------------------------------------------


def test_an_advance_decides_a_pending_request_with_no_sleep(client_with):
    with client_with(activation_delay=30.0) as client:
        freeze(client, "t")
        request_key = create(client, "t").json()["pix_key_request_key"]
        assert keys(client, "t")[0]["pix_key_status"] == "pending_confirmation"
        assert advance(client, "t", 29)["jobs_run"] == 0
        moved = advance(client, "t", 1)
        assert moved["jobs_run"] == 1
        assert keys(client, "t")[0]["pix_key_status"] == "active"
        events = admin(client, "GET", "/events", "t").json()["events"]
        activated = [e for e in events if e["event_type"] == "pix_key_activated"]
        assert activated[0]["data"]["pix_key_request_key"] == request_key
        assert activated[0]["timestamp"] == moved["now"]  # dated by the namespace's clock
        assert keys(client, "u")[0:0] == []  # another namespace: nothing moved there


def test_a_code_expires_after_an_advance(client):
    freeze(client, "codes")
    made = create(client, "codes", "email", "maria@example.com", NATURAL_ACCOUNT).json()
    code = admin(client, "GET", "/outbox", "codes").json()["messages"][-1]["verification_code"]
    advance(client, "codes", 601)  # --code-ttl: 600 s
    late = client.patch(f"{KEYS}/{made['pix_key_request_key']}/twofa_validation",
                        json={"verification_code": code}, headers=ns("codes"))
    assert late.status_code == 410 and late.json()["code"] == "2FA000410", late.text


def test_a_validation_window_closes_on_an_advance(client):
    freeze(client, "window")
    made = create(client, "window", "email", "maria@example.com", NATURAL_ACCOUNT).json()
    advance(client, "window", 3600)  # --validation-window: 1 h
    webhooks = admin(client, "GET", "/webhooks", "window").json()["webhooks"]
    assert [w["body"]["pix_key_request_key"] for w in webhooks] == [made["pix_key_request_key"]]
    assert webhooks[0]["body"]["pix_key_request_status"] == "rejected"


def test_the_clock_is_frozen_set_and_given_back_per_namespace(client):
    real = client.get("/__admin/clock").json()
    assert real["frozen"] is False and real["offset_seconds"] == pytest.approx(0, abs=1)
    set_ = admin(client, "PUT", "/clock", "x", json={"now": "2030-01-01T00:00:00Z", "frozen": True}).json()
    # the jump runs the fixture claims' windows (claims.yaml), due within 14 days of the start
    assert set_ == {"now": "2030-01-01T00:00:00", "frozen": True, "offset_seconds": set_["offset_seconds"],
                    "jobs_run": set_["jobs_run"]}
    assert set_["jobs_run"] > 0
    assert advance(client, "x", 86400)["now"] == "2030-01-02T00:00:00"
    made = create(client, "x").json()
    assert made["created_at"] == "2030-01-02T00:00:00"  # what the namespace writes follows its clock
    assert client.get("/__admin/clock").json()["frozen"] is False  # the default namespace: untouched
    back = admin(client, "DELETE", "/clock", "x").json()
    assert back["frozen"] is False and back["offset_seconds"] == pytest.approx(0, abs=1)


@pytest.mark.parametrize("body", [{}, {"seconds": 0}, {"seconds": -5}, {"seconds": "10"},
                                  {"seconds": 1e300}, {"seconds": 10, "extra": 1}])
def test_a_bad_advance_is_refused_and_the_clock_stays(client, body):
    before = admin(client, "PUT", "/clock", "bad", json={"frozen": True}).json()["now"]
    answer = admin(client, "POST", "/clock/advance", "bad", json=body)
    assert answer.status_code == 400 and answer.json()["code"] == "SBX000400", answer.text
    assert admin(client, "GET", "/clock", "bad").json()["now"] == before


@pytest.mark.parametrize("body", [{}, {"now": "yesterday"}, {"now": "1999-12-31T23:59:59"},
                                  {"now": "9999-12-31T23:59:59"}, {"frozen": "yes"}, {"now": "2030-02-30T00:00:00"}])
def test_a_bad_clock_change_is_refused(client, body):
    answer = admin(client, "PUT", "/clock", "bad", json=body)
    assert answer.status_code == 400 and answer.json()["code"] == "SBX000400", answer.text
    assert admin(client, "GET", "/clock", "bad").json()["offset_seconds"] == pytest.approx(0, abs=1)


def test_each_namespace_has_its_own_event_stream():
    """The streams are per namespace, named by the query parameter (a browser's EventSource)."""
    import httpx

    from tests.conftest import live_server
    from tests.helpers import wait_until
    from tests.test_webhooks import StreamReader

    with live_server() as (base_url, _):
        with StreamReader(f"{base_url}/__admin/events/stream?namespace=mine&type=pix_key_request_created") as mine, \
                StreamReader(f"{base_url}/__admin/outbox/stream",
                             {"X-Sandbox-Namespace": "theirs"}) as their_codes:
            with httpx.Client(base_url=base_url) as client:
                theirs = create(client, "theirs", "email", "maria@example.com", NATURAL_ACCOUNT).json()
                ours = create(client, "mine").json()
            # the fixture request's code, the fixture claim's (claims.yaml), then theirs
            wait_until(lambda: mine.messages and len(their_codes.messages) == 3)
            # one more of theirs, after ours: had it crossed over, it would be here by the time ours is
            with httpx.Client(base_url=base_url) as client:
                create(client, "theirs", "random_key", None)
                last = create(client, "mine", "random_key", None).json()
            wait_until(lambda: len(mine.messages) == 2)
    assert [m["data"]["data"]["pix_key_request_key"] for m in mine.messages] == [
        ours["pix_key_request_key"], last["pix_key_request_key"]]
    # theirs: the fixture's waiting request's code (replayed), then the new request's
    assert [m["data"]["pix_key_request_key"] for m in their_codes.messages] == [
        FIXTURE_REQUEST, None, theirs["pix_key_request_key"]]
