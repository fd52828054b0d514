"""The express lane (baas_sandbox/http/express.py) answers exactly as the full pipeline does.

The same requests go to two apps built alike, one with the lane and one without; their answers
(status, headers, body) and journals must be the same once the values each app draws at random
(ids, timestamps, tracking ids, proxy values, verification codes) are named instead of compared.
"""

from __future__ import annotations

import json
import re
from contextlib import ExitStack

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from baas_sandbox import handlers
from baas_sandbox.app import Specs, create_app
from baas_sandbox.http import express
from baas_sandbox.http.violations import BodySchema, _parameter_validator
from baas_sandbox.services.sandbox import Settings
from tests.conftest import FAST, assert_events_valid
from tests.helpers import run

AUTH = {"Authorization": "Bearer org-a-token"}
LEGAL = "6d30a0b1-cb90-4ceb-b1ea-5bd600cdf3c8"  # fixtures/accounts.yaml
NATURAL = "1f0e8a5c-2b7d-4c3e-9a61-7b2d4e8f0a11"
ORG_B_TOKEN = {"Authorization": "Bearer org-b-token"}
SEED_CREDENTIAL = {"key": "Tc84Hi3CRyAHFBNIvbc8CuSuvHuGibjf", "provider": "BTG", "type": "PIX",
                   "provider_data": {"client_id": "Your client ID"}}
CREDENTIAL_HEADERS = AUTH | {"account_token": "Your account token"}

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?")
_PROXY = re.compile(r"prx_[A-Za-z0-9_-]+")
_E2E = re.compile(r"E32402502\d{12}[A-Za-z0-9]{11}")  # a lookup's end_to_end_id: time and random


class Twin:
    """Two apps, the lane on and off, sent the same requests."""

    def __init__(self, stack: ExitStack, **overrides) -> None:
        settings = FAST | {"activation_delay": 60.0} | overrides  # no decision mid-comparison
        self.apps = [create_app(Settings(**settings, express_lane=lane)) for lane in (True, False)]
        self.clients = [stack.enter_context(app.test_client()) for app in self.apps]
        self.names: list[dict[str, str]] = [{}, {}]  # per app: its random value -> a stable name

    def send(self, method: str, path: str, *, codes_of: str | None = None, **kwargs) -> tuple[dict, dict]:
        """The normalized answers of both apps; ``codes_of``: put each app's own last verification
        code of that key request (by its name) into the body."""
        answers = []
        for index, client in enumerate(self.clients):
            call = dict(kwargs)
            if codes_of is not None:
                request_key = self._value(index, codes_of)
                codes = [m["verification_code"] for m in run(self.apps[index].sandbox.store.records("outbox"))
                         if m["pix_key_request_key"] == request_key]
                call["json"] = {"verification_code": codes[-1]}
            if "{" in path:
                path_here = re.sub(r"\{(<\d+>)\}", lambda m: self._value(index, m.group(1)), path)
            else:
                path_here = path
            response = client.request(method, path_here, **call)
            answers.append(self._normalized(index, response))
        return answers[0], answers[1]

    def _value(self, index: int, name: str) -> str:
        return next(value for value, known in self.names[index].items() if known == name)

    def _name(self, index: int, value: str) -> str:
        names = self.names[index]
        if value not in names:
            names[value] = f"<{len(names)}>"
        return names[value]

    def _normalized(self, index: int, response) -> dict:
        headers = {name: value for name, value in response.headers.items() if name != "date"}
        text = response.text
        for pattern in (_UUID, _TIME, _PROXY, _E2E):
            text = pattern.sub(lambda m: self._name(index, m.group(0)) if pattern is not _TIME else "<time>", text)
        if "tracking_id" in headers:
            headers["tracking_id"] = _UUID.sub(lambda m: self._name(index, m.group(0)), headers["tracking_id"])
        return {"status": response.status_code, "headers": headers, "body": text}

    def journals(self) -> tuple[list, list]:
        kept = ("method", "path", "query", "operation_id", "status", "scenario", "request_body", "response_body",
                "tracking_id")
        result = []
        for index, app in enumerate(self.apps):
            # Each app sent its own verification codes: equal only because the journal masks them.
            entries = [{k: entry[k] for k in kept} for entry in run(app.sandbox.journal.entries())]
            text = json.dumps(entries, sort_keys=True)
            for pattern in (_UUID, _PROXY, _E2E):
                text = pattern.sub(lambda m: self._name(index, m.group(0)), text)
            result.append(json.loads(_TIME.sub("<time>", text)))
        return result[0], result[1]


@pytest.fixture
def twin():
    with ExitStack() as stack:
        pair = Twin(stack)
        yield pair
        for app in pair.apps:
            assert_events_valid(app.sandbox)


def same(twin: Twin, method: str, path: str, **kwargs) -> dict:
    with_lane, without = twin.send(method, path, **kwargs)
    assert with_lane == without
    return with_lane


def key_request(twin: Twin, body: dict) -> dict:
    answer = same(twin, "POST", "/baas/pix/keys", json=body, headers=AUTH)
    return answer | {"json": json.loads(answer["body"])}


def test_everyday_requests_get_the_same_answers_with_and_without_the_lane(twin):
    counts = twin.apps[0].express_counts
    same(twin, "GET", "/baas/pix/keys", params={"account_key": LEGAL}, headers=AUTH)
    random_key = key_request(twin, {"account_key": LEGAL, "pix_key_type": "random_key"})
    assert random_key["status"] == 201
    assert key_request(twin, {"account_key": LEGAL, "pix_key_type": "cnpj", "pix_key": "09080702000105"})["status"] == 201
    email = key_request(twin, {"account_key": LEGAL, "pix_key_type": "email", "pix_key": "lucia@example.com"})
    phone = key_request(twin, {"account_key": LEGAL, "pix_key_type": "phone_number", "pix_key": "+5511987654321"})
    assert email["status"] == phone["status"] == 201
    # business errors: the same key again, a key of another account's owner, an unknown account
    assert key_request(twin, {"account_key": LEGAL, "pix_key_type": "cnpj", "pix_key": "09080702000105"})["status"] == 400
    assert key_request(twin, {"account_key": NATURAL, "pix_key_type": "cpf", "pix_key": "81563500221"})["status"] == 201
    assert key_request(twin, {"account_key": "00000000-0000-4000-8000-000000000000",
                              "pix_key_type": "random_key"})["status"] >= 400
    # DICT's limit: 5 keys on a natural person's account
    statuses = [key_request(twin, {"account_key": NATURAL, "pix_key_type": "random_key"})["status"] for _ in range(5)]
    assert statuses == [201, 201, 201, 201, 400]
    same(twin, "GET", "/baas/pix/keys", params={"account_key": LEGAL}, headers=AUTH)
    same(twin, "GET", "/baas/pix/keys", params={"account_key": NATURAL}, headers=ORG_B_TOKEN)  # another tenant's

    name = email["json"]["pix_key_request_key"]  # as normalized: "<n>", each app's own key
    validate, resend = f"/baas/pix/keys/{{{name}}}/twofa_validation", f"/baas/pix/keys/{{{name}}}/resend_twofa"
    assert same(twin, "PATCH", validate, json={"verification_code": "000000"}, headers=AUTH)["status"] >= 400
    assert same(twin, "PATCH", resend, json={}, headers=AUTH)["status"] == 200
    assert same(twin, "PATCH", validate, codes_of=name, headers=AUTH)["status"] == 200
    assert same(twin, "PATCH", validate, codes_of=name, headers=AUTH)["status"] >= 400  # the accepted code again
    assert same(twin, "PATCH", "/baas/pix/keys/8d6f0f7e-0000-4000-8000-000000000000/twofa_validation",
                json={"verification_code": "123456"}, headers=AUTH)["status"] == 404

    # credentials: saved, and each provider answer the sandbox can give
    assert same(twin, "POST", "/banking-auth/v1/credentials", json=SEED_CREDENTIAL, headers=CREDENTIAL_HEADERS)["status"] == 201
    for key in ("invalidTc84Hi3CRyAHFBNIvbc8", "unavailableTc84Hi3CRyAHFB", "timeoutTc84Hi3CRyAHFBNIvbc"):
        assert same(twin, "POST", "/banking-auth/v1/credentials", json=SEED_CREDENTIAL | {"key": key},
                    headers=CREDENTIAL_HEADERS)["status"] >= 400
    assert same(twin, "POST", "/banking-auth/v1/credentials", json=SEED_CREDENTIAL,
                headers=ORG_B_TOKEN | {"account_token": "t"})["status"] >= 400  # org-b has no BTG configuration
    # the client's own tracking_id is echoed; an empty one counts as none
    answer = same(twin, "GET", "/baas/pix/keys", params={"account_key": LEGAL}, headers=AUTH | {"tracking_id": "abc-123"})
    assert answer["headers"]["tracking_id"] == "abc-123"
    answer = same(twin, "GET", "/baas/pix/keys", params={"account_key": LEGAL}, headers=AUTH | {"tracking_id": ""})
    assert answer["headers"]["tracking_id"].startswith("<")

    assert counts.answered >= 26 and counts.handed_over == 0
    assert twin.apps[1].express_counts.answered == 0
    with_lane, without = twin.journals()
    assert with_lane == without
    assert all(entry["request_body"]["key"] == "****" for entry in with_lane
               if entry["operation_id"] == "post-credentials")


def test_code_limits_and_masked_codes_are_the_same_with_and_without_the_lane(twin):
    """The limits are domain rules, the masking the journal's: both lanes run them alike."""
    email = key_request(twin, {"account_key": LEGAL, "pix_key_type": "email", "pix_key": "lucia@example.com"})
    phone = key_request(twin, {"account_key": LEGAL, "pix_key_type": "phone_number", "pix_key": "+5511987654321"})
    validate = f"/baas/pix/keys/{{{email['json']['pix_key_request_key']}}}/twofa_validation"
    resend = f"/baas/pix/keys/{{{phone['json']['pix_key_request_key']}}}/resend_twofa"

    wrong = [same(twin, "PATCH", validate, json={"verification_code": f"{n:06d}"}, headers=AUTH)["status"]
             for n in range(5)]  # one chance in 200,000 that a drawn code is one of these
    after = same(twin, "PATCH", validate, codes_of=email["json"]["pix_key_request_key"], headers=AUTH)
    resends = [same(twin, "PATCH", resend, json={}, headers=AUTH)["status"] for _ in range(4)]

    assert (wrong, after["status"]) == ([400, 400, 400, 400, 429], 400)
    assert resends == [200, 200, 200, 429]
    assert twin.apps[0].express_counts.answered >= 11
    with_lane, without = twin.journals()
    assert with_lane == without
    codes = [e["request_body"] for e in with_lane if e["operation_id"] == "validate-pix-key-twofa"]
    assert codes == [{"verification_code": "****"}] * 6


def test_the_key_lifecycle_gets_the_same_answers_with_and_without_the_lane(twin):
    """Lookups (and their anti-scan bucket, Retry-After included), deletions and the list by status."""
    for client in twin.clients:  # so that real time refills no bucket between the two apps' requests
        assert client.put("/__admin/clock", json={"frozen": True}).status_code == 200
    lookup = "/baas/pix/keys/{key}"
    for key in ("+5521998765432", "%2B5521998765432", "joana.martins@example.com", "AB1CD2EF000170"):
        answer = same(twin, "GET", lookup.format(key=key), params={"account_key": NATURAL}, headers=AUTH)
        assert answer["status"] == 200 and '"exists": true' in answer["body"]
    for _ in range(4):  # 4 found above, 4 not found here: 16 tokens left; then one more goes to -4
        assert same(twin, "GET", lookup.format(key="nobody@example.com"), params={"account_key": NATURAL},
                    headers=AUTH)["status"] == 200
    assert same(twin, "GET", lookup.format(key="nobody@example.com"), params={"account_key": NATURAL},
                headers=AUTH)["status"] == 200
    refused = same(twin, "GET", lookup.format(key="+5521998765432"), params={"account_key": NATURAL}, headers=AUTH)
    assert refused["status"] == 429 and refused["headers"]["retry-after"] == "150"  # 5 tokens
    # errors: no paying account, another tenant's, a key that is no key
    assert same(twin, "GET", lookup.format(key="+5521998765432"), headers=AUTH)["status"] == 400
    assert same(twin, "GET", lookup.format(key="+5521998765432"), params={"account_key": NATURAL},
                headers=ORG_B_TOKEN)["status"] == 403
    assert same(twin, "GET", lookup.format(key="81563500220"), params={"account_key": LEGAL},
                headers=AUTH)["status"] == 400
    # the list by status, then deletions
    same(twin, "GET", "/baas/pix/keys", params={"account_key": "8e3f5a71-6c2b-4d9e-a1f0-2b3c4d5e6f09",
                                                "pix_key_status": "active"}, headers=AUTH)
    assert same(twin, "DELETE", "/baas/pix/keys/financeiro@padaria-aurora.com.br", headers=AUTH)["status"] == 200
    assert same(twin, "DELETE", "/baas/pix/keys/financeiro%40padaria-aurora.com.br", headers=AUTH)["status"] == 404
    same(twin, "GET", "/baas/pix/keys", params={"account_key": "8e3f5a71-6c2b-4d9e-a1f0-2b3c4d5e6f09",
                                                "pix_key_status": "inactive"}, headers=AUTH)
    assert same(twin, "GET", "/baas/pix/keys", params={"account_key": LEGAL, "pix_key_status": "inactivated"},
                headers=AUTH)["status"] == 400
    assert key_request(twin, {"account_key": NATURAL, "pix_key_type": "cpf", "pix_key": "81563500221"})["status"] == 201
    assert same(twin, "DELETE", "/baas/pix/keys/81563500221", headers=AUTH)["status"] == 400  # still pending
    assert same(twin, "DELETE", "/baas/pix/keys/AB1CD2EF000170", headers=ORG_B_TOKEN)["status"] == 403
    assert same(twin, "DELETE", "/baas/pix/keys/+5521998765432", headers=AUTH)["status"] == 404  # another bank's
    assert twin.apps[0].express_counts.answered >= 16
    with_lane, without = twin.journals()
    assert with_lane == without


HANDED_OVER = [
    # (method, path, request options): each gets the full pipeline's answer
    ("POST", "/baas/pix/keys", {"json": {"account_key": LEGAL}, "headers": AUTH}),  # a field missing
    ("POST", "/baas/pix/keys", {"json": {"account_key": LEGAL, "pix_key_type": "EVP"}, "headers": AUTH}),
    ("POST", "/baas/pix/keys", {"content": b'{"account_key": ', "headers": AUTH | {"content-type": "application/json"}}),
    ("POST", "/baas/pix/keys", {"content": b"\xff\xfe", "headers": AUTH | {"content-type": "application/json"}}),
    ("POST", "/baas/pix/keys", {"content": b"", "headers": AUTH | {"content-type": "application/json"}}),
    ("POST", "/baas/pix/keys", {"content": b"account_key=x", "headers": AUTH | {"content-type": "text/plain"}}),
    ("POST", "/baas/pix/keys", {"json": {"account_key": LEGAL, "pix_key_type": "random_key"}}),  # no token
    ("POST", "/baas/pix/keys", {"json": {"account_key": LEGAL, "pix_key_type": "random_key"},
                                "headers": {"Authorization": "Bearer nobody"}}),
    ("POST", "/baas/pix/keys", {"json": {"account_key": LEGAL, "pix_key_type": "random_key"},
                                "headers": {"Authorization": "Basic b3JnLWE="}}),
    ("POST", "/baas/pix/keys", {"json": {"account_key": LEGAL, "pix_key_type": "random_key"},
                                "headers": AUTH | {"Prefer": "code=422"}}),
    ("POST", "/baas/pix/keys", {"json": {"account_key": LEGAL, "pix_key_type": "random_key"},
                                "headers": AUTH | {"X-Sandbox-Scenario": "provider-outage"}}),
    ("POST", "/baas/pix/keys", {"json": {"account_key": LEGAL, "pix_key_type": "random_key"},
                                "headers": AUTH | {"Origin": "http://localhost:3000"}}),
    ("POST", "/baas/pix/keys/", {"json": {"account_key": LEGAL, "pix_key_type": "random_key"}, "headers": AUTH}),
    ("GET", f"/baas/pix/keys?account_key={LEGAL}&account_key={NATURAL}", {"headers": AUTH}),
    ("GET", "/baas/pix/keys?account_key=x", {"headers": AUTH}),
    ("GET", "/baas/pix/keys", {"headers": AUTH}),
    ("HEAD", f"/baas/pix/keys?account_key={LEGAL}", {"headers": AUTH}),
    ("DELETE", "/baas/pix/keys", {"headers": AUTH}),
    ("POST", "/banking-auth/v1/credentials", {"json": {"provider": "BTG"}, "headers": CREDENTIAL_HEADERS}),
    ("POST", "/banking-auth/v1/credentials", {"json": SEED_CREDENTIAL, "headers": AUTH}),  # no account_token
    ("POST", "/banking-auth/v1/credentials", {"json": SEED_CREDENTIAL | {"type": "CARD"}, "headers": CREDENTIAL_HEADERS}),
    ("PATCH", "/baas/pix/keys/8d6f0f7e-0000-4000-8000-000000000000/resend_twofa", {"headers": AUTH}),  # no body
    ("PATCH", "/baas/pix/keys/8d6f0f7e-0000-4000-8000-000000000000/resend_twofa%0A", {"json": {}, "headers": AUTH}),  # a newline after the path
    ("POST", "/baas/pix/keys", {"content": b'{"account_key": "%s", "pix_key_type": "random_key"}' % LEGAL.encode(),
                                "headers": AUTH | {"content-type": "APPLICATION/JSON"}}),  # media types ignore case
]


@pytest.mark.parametrize(("method", "path", "options"), HANDED_OVER,
                         ids=[f"{m} {p[:40]} {sorted(o.get('headers', {}))}" for m, p, o in HANDED_OVER])
def test_what_the_lane_does_not_answer_gets_the_full_pipelines_answer(twin, method, path, options):
    answer = same(twin, method, path, **options)
    assert twin.apps[0].express_counts.answered == 0
    assert answer["status"] in (200, 201, 400, 401, 404, 405, 415, 422, 502)
    assert twin.journals()[0] == twin.journals()[1]


def test_an_active_scenario_takes_every_request_off_the_lane():
    with ExitStack() as stack:
        twin = Twin(stack, scenarios=["provider-outage"])
        answer = same(twin, "POST", "/banking-auth/v1/credentials", json=SEED_CREDENTIAL, headers=CREDENTIAL_HEADERS)
        assert answer["status"] == 502
        assert twin.apps[0].express_counts.answered == 0


def test_a_response_the_spec_does_not_allow_is_the_same_500(monkeypatch):
    async def list_without_pix_keys(account_key: str, token_info: dict):
        return {"account_key": account_key}, 200

    async def crashing_create(body: dict, token_info: dict):
        raise RuntimeError("a bug")

    monkeypatch.setitem(handlers.OPERATIONS, "list-pix-keys", list_without_pix_keys)
    monkeypatch.setitem(handlers.OPERATIONS, "create-pix-key", crashing_create)
    with ExitStack() as stack:
        twin = Twin(stack)
        answer = same(twin, "GET", "/baas/pix/keys", params={"account_key": LEGAL}, headers=AUTH)
        assert answer["status"] == 500
        assert "'pix_keys' is a required property" in answer["body"]
        answer = same(twin, "POST", "/baas/pix/keys", json={"account_key": LEGAL, "pix_key_type": "random_key"},
                      headers=AUTH)
        assert answer["status"] == 500 and "see the sandbox's log" in answer["body"]
        assert twin.apps[0].express_counts.answered == 2


#: Operations the lane leaves to the full pipeline: the front door (an HTML page: the lane writes JSON),
#: the claims' list (integer query parameters, which connexion coerces first) and the claim
#: simulations that answer 204 (no body: the lane writes JSON bodies).
FULL_PIPELINE_ONLY = {"get-front-door", "list-account-key-claims", "simulate-key-claim-response",
                      "simulate-key-claim-completion"}


def test_the_lane_serves_every_product_api_operation_and_no_admin_one():
    """Every operation of the platform's APIs but those it cannot answer exactly as the full pipeline."""
    specs = Specs.load()
    operations = express.compile_operations(specs.product, handlers.resolve, {}, validate_responses=True)
    assert sorted(op.operation_id for op in operations) == sorted(
        op["operationId"] for item in specs.product["paths"].values() for op in item.values()
        if isinstance(op, dict) and "operationId" in op and op["operationId"] not in FULL_PIPELINE_ONLY)


# -- the lane's validators only accept what the full pipeline's validators accept -------------------------

_SPECS = Specs.load()
_OPERATIONS = express.compile_operations(_SPECS.product, handlers.resolve, {}, validate_responses=True)
_BODIES = [(op, item[op.method.lower()]) for op in _OPERATIONS
           for path, item in _SPECS.product["paths"].items() if path == op.path and op.body_accepts]

_texts = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "a@b.c", "a@b.c\n", "+5511987654321", "+5511987654321\n", "09080702000105",
                     "０９０８０７０２０００１０５", "BTG", "PIX", "BAAS", "PAY2ALL", "random_key", "cpf", "cnpj",
                     "email", "phone_number", LEGAL, LEGAL + "\n", LEGAL.upper(), "756816", "７５６８１６",
                     "Tc84Hi3CRyAHFBNIvbc8CuSuvHuGibjf"]),
)
_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.just(1.0), _texts)
_json = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.dictionaries(_texts, inner, max_size=3)), max_leaves=8)


@st.composite
def _mutated_bodies(draw):
    operation, spec = draw(st.sampled_from(_BODIES))
    media = spec["requestBody"]["content"]["application/json"]
    examples = [example["value"] for example in media.get("examples", {}).values()]
    body = dict(draw(st.sampled_from(examples))) if examples else {}
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["set", "delete", "add"]))
        if action == "delete" and body:
            body.pop(draw(st.sampled_from(sorted(body))))
        elif action == "set" and body:
            body[draw(st.sampled_from(sorted(body)))] = draw(_json)
        else:
            body[draw(_texts)] = draw(_json)
    return operation, media["schema"], draw(st.one_of(st.just(body), _json))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated_bodies())
def test_a_body_the_lane_accepts_has_no_violation_for_the_full_pipeline(case):
    operation, schema, body = case
    if operation.body_accepts(body):
        assert BodySchema.of(schema).violations(body) == []


_PARAMETERS = [(op, spec) for op in _OPERATIONS for path, item in _SPECS.product["paths"].items() if path == op.path
               for spec in [*item.get("parameters", []), *item[op.method.lower()].get("parameters", [])]]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_PARAMETERS), _texts)
def test_a_parameter_the_lane_accepts_has_no_violation_for_the_full_pipeline(parameter, value):
    operation, spec = parameter
    compiled = next(p for p in operation.parameters if p.name == (spec["name"].lower() if spec["in"] == "header"
                                                                 else spec["name"]))
    if compiled.accepts(value):
        assert _parameter_validator(spec).is_valid(value)


def test_namespaced_requests_are_served_by_the_lane_with_the_same_answers(twin):
    """The header names the namespace on both lanes: parallel CI jobs take the fast lane too."""
    team = AUTH | {"X-Sandbox-Namespace": "ci-job-1"}
    made = key_request(twin, {"account_key": LEGAL, "pix_key_type": "cnpj", "pix_key": "09080702000105"} | {})
    assert made["status"] == 201  # the default namespace
    again = same(twin, "POST", "/baas/pix/keys", json={"account_key": LEGAL, "pix_key_type": "cnpj",
                                                       "pix_key": "09080702000105"}, headers=team)
    assert again["status"] == 201  # another namespace: the key is free there
    listed = same(twin, "GET", "/baas/pix/keys", params={"account_key": LEGAL}, headers=team)
    assert json.loads(listed["body"])["pix_keys"][0]["pix_key"] == "09080702000105"
    assert twin.apps[0].express_counts.answered == 3 and twin.apps[0].express_counts.handed_over == 0
    journals = [[e["operation_id"] for e in run(app.namespaces.existing("ci-job-1").journal.entries())]
                for app in twin.apps]
    assert journals[0] == journals[1] == ["list-pix-keys", "create-pix-key"]


@pytest.mark.parametrize("name", ["bad name", "x" * 65, ""])
def test_an_invalid_namespace_gets_the_full_pipelines_answer(twin, name):
    answer = same(twin, "GET", "/baas/pix/keys", params={"account_key": LEGAL},
                  headers=AUTH | {"X-Sandbox-Namespace": name})
    assert answer["status"] == 400 and json.loads(answer["body"])["code"] == "SBX000400"
    assert twin.apps[0].express_counts.answered == 0


def test_a_namespace_past_the_limit_gets_the_full_pipelines_answer():
    with ExitStack() as stack:
        twin = Twin(stack, max_namespaces=1)
        answer = same(twin, "GET", "/baas/pix/keys", params={"account_key": LEGAL},
                      headers=AUTH | {"X-Sandbox-Namespace": "one-more"})
        assert answer["status"] == 429 and json.loads(answer["body"])["code"] == "SBX000429"
        assert twin.apps[0].express_counts.answered == 0


def test_claims_answer_alike_with_and_without_the_lane(twin):
    """Claims in both roles (fixtures/claims.yaml), their errors, the list and the 204 simulations
    (those two and the list stay in the full pipeline: the answers must still be the same)."""
    c1, d1, d2 = ("0f3b6c2a-1d4e-4f5a-8b6c-7d8e9f0a1b2c", "8a2c4e6f-1b3d-4f5a-9c7e-0d2f4a6b8c0e",
                  "b3d5f7a9-2c4e-4a6b-8d0f-1e3a5c7e9b2d")
    counts = twin.apps[0].express_counts
    before = counts.answered
    assert same(twin, "POST", "/baas/pix/key_claim_request", headers=AUTH, json={
        "account_key": LEGAL, "pix_key": "joana.martins@example.com", "pix_key_type": "email"})["status"] == 201
    assert same(twin, "POST", "/baas/pix/key_claim_request", headers=AUTH, json={
        "account_key": LEGAL, "pix_key": "71234567857", "pix_key_type": "cpf"})["status"] == 400
    assert same(twin, "PATCH", f"/baas/pix/key_claim_request/{c1}/twofa_validation", headers=AUTH,
                json={"verification_code": "000000"})["status"] == 400
    assert same(twin, "PATCH", f"/baas/pix/key_claim_request/{c1}/twofa_validation", headers=AUTH,
                json={"verification_code": "482915"})["status"] == 200
    assert same(twin, "POST", "/mock/pix_keys/key_claim_simulation/receive", headers=AUTH,
                json={"pix_key": "financeiro@padaria-aurora.com.br", "pix_key_type": "email"})["status"] == 201
    assert same(twin, "DELETE", "/baas/pix/keys/financeiro@padaria-aurora.com.br", headers=AUTH)["status"] == 400
    assert same(twin, "PATCH", f"/baas/pix/key_claim_request/{d2}/cancelled", headers=AUTH,
                json={"cancellation_reason": "client_request"})["status"] == 400
    assert same(twin, "PATCH", f"/baas/pix/key_claim_request/{d2}/pending_donator_validation", headers=AUTH,
                json={})["status"] == 200
    assert same(twin, "PATCH", f"/baas/pix/key_claim_request/{d1}/confirmed", headers=AUTH,
                json={"confirmation_reason": "client_request"})["status"] == 200
    assert same(twin, "PATCH", f"/mock/pix_keys/key_claim_simulation/{d1}/complete", headers=AUTH, json={})["status"] == 204
    assert same(twin, "PATCH", f"/mock/pix_keys/key_claim_simulation/{c1}/receive_response/concluded", headers=AUTH,
                json={})["status"] == 400
    assert same(twin, "GET", "/baas/pix/key_claim_request/account/4d2e6f80-3b1c-4d5e-8f70-1a2b3c4d5e08",
                headers=AUTH, params={"page_size": "1"})["status"] == 200
    assert same(twin, "PATCH", f"/baas/pix/key_claim_request/{c1}/confirmed", headers=ORG_B_TOKEN,
                json={})["status"] == 403
    assert same(twin, "PATCH", "/baas/pix/key_claim_request/00000000-0000-4000-8000-000000000000/cancelled",
                headers=AUTH, json={"cancellation_reason": "fraud"})["status"] == 404
    assert counts.answered - before >= 8  # the lane answered the claim operations it serves
