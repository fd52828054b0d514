"""``Prefer: code=…, example=…`` answers any documented response, and only documented ones."""

from __future__ import annotations

import uuid

import pytest

from baas_sandbox.spec import PRODUCT_SPEC, SPEC_DIR, load_checked, resolve_refs
from tests.helpers import ORG_A, SEED_ACCOUNT, SEED_CNPJ

SPEC = resolve_refs(load_checked(SPEC_DIR / PRODUCT_SPEC))
ANY_REQUEST = str(uuid.uuid4())

# A valid request for each operation: Prefer acts after authentication and validation.
VALID_REQUESTS = {
    "post-credentials": ("POST", "/banking-auth/v1/credentials",
                         {"json": {"key": "k", "provider": "BTG", "type": "PIX"}, "headers": {"account_token": "t"}}),
    "create-pix-key": ("POST", "/baas/pix/keys",
                       {"json": {"account_key": SEED_ACCOUNT, "pix_key_type": "cnpj", "pix_key": SEED_CNPJ}}),
    "list-pix-keys": ("GET", "/baas/pix/keys", {"params": {"account_key": SEED_ACCOUNT}}),
    "validate-pix-key-twofa": ("PATCH", f"/baas/pix/keys/{ANY_REQUEST}/twofa_validation",
                               {"json": {"verification_code": "123456"}}),
    "resend-pix-key-twofa": ("PATCH", f"/baas/pix/keys/{ANY_REQUEST}/resend_twofa", {"json": {}}),
    # a random key's value is a UUID: the path's key, which answers name
    "lookup-pix-key": ("GET", f"/baas/pix/keys/{ANY_REQUEST}", {"params": {"account_key": SEED_ACCOUNT}}),
    "delete-pix-key": ("DELETE", f"/baas/pix/keys/{ANY_REQUEST}", {}),
    "create-key-claim": ("POST", "/baas/pix/key_claim_request",
                         {"json": {"account_key": SEED_ACCOUNT, "pix_key_type": "email",
                                   "pix_key": "joana.martins@example.com"}}),
    "validate-key-claim-twofa": ("PATCH", f"/baas/pix/key_claim_request/{ANY_REQUEST}/twofa_validation",
                                 {"json": {"verification_code": "123456"}}),
    "confirm-key-claim": ("PATCH", f"/baas/pix/key_claim_request/{ANY_REQUEST}/confirmed", {"json": {}}),
    "cancel-key-claim": ("PATCH", f"/baas/pix/key_claim_request/{ANY_REQUEST}/cancelled",
                         {"json": {"cancellation_reason": "fraud"}}),
    "ask-key-claim-donator-validation": ("PATCH", f"/baas/pix/key_claim_request/{ANY_REQUEST}/pending_donator_validation",
                                         {"json": {}}),
    "list-account-key-claims": ("GET", f"/baas/pix/key_claim_request/account/{SEED_ACCOUNT}", {}),
    "simulate-received-key-claim": ("POST", "/mock/pix_keys/key_claim_simulation/receive",
                                    {"json": {"pix_key": "financeiro@padaria-aurora.com.br", "pix_key_type": "email"}}),
    "simulate-key-claim-response": ("PATCH", f"/mock/pix_keys/key_claim_simulation/{ANY_REQUEST}/receive_response/confirmed",
                                    {"json": {}}),
    "simulate-key-claim-completion": ("PATCH", f"/mock/pix_keys/key_claim_simulation/{ANY_REQUEST}/complete",
                                      {"json": {}}),
}
#: The sandbox's own page: its errors are the admin API's, and Prefer is for the platform's APIs.
NOT_PREFERRED = {"get-front-door"}


def documented_examples():
    for path_item in SPEC["paths"].values():
        for method, operation in path_item.items():
            if method == "parameters" or operation["operationId"] in NOT_PREFERRED:
                continue
            for status, response in operation["responses"].items():
                media = response.get("content", {}).get("application/json", {})
                for name, example in media.get("examples", {}).items():
                    yield operation["operationId"], int(status), name, example["value"]


EXAMPLES = list(documented_examples())


def test_every_operation_has_a_valid_request():
    assert {operation for operation, *_ in EXAMPLES} == set(VALID_REQUESTS)


def send(client, operation_id: str, prefer: str | None, authenticated: bool = True):
    method, path, kwargs = VALID_REQUESTS[operation_id]
    headers = dict(kwargs.get("headers", {})) | (ORG_A if authenticated else {})
    if prefer is not None:
        headers["Prefer"] = prefer
    return client.request(method, path, **(kwargs | {"headers": headers}))


@pytest.mark.parametrize("operation_id,status,name,body", EXAMPLES,
                         ids=[f"{o}-{s}-{n}" for o, s, n, _ in EXAMPLES])
def test_any_documented_example_on_purpose(client, operation_id, status, name, body):
    """The example itself, but where it names a value the request carries (test_mentions.py): each
    text that differs names one of the request's values."""
    response = send(client, operation_id, f"code={status}, example={name}")
    assert response.status_code == status
    request_values = _request_values(operation_id)
    for where, answered, documented in _leaves(response.json(), body):
        if answered != documented:
            assert any(value in answered for value in request_values), (where, answered, documented)
    assert response.headers["tracking_id"]


def _request_values(operation_id: str) -> list[str]:
    _, path, kwargs = VALID_REQUESTS[operation_id]
    return ([v for v in kwargs.get("json", {}).values() if isinstance(v, str)]
            + list(kwargs.get("params", {}).values()) + [ANY_REQUEST] * (ANY_REQUEST in path)
            + [segment for segment in path.split("/") if "@" in segment or segment == SEED_ACCOUNT])


def _leaves(answered, documented, where=""):
    """(where, answered, documented) for each leaf; the two bodies must have the same shape."""
    if isinstance(documented, dict):
        assert isinstance(answered, dict) and set(answered) == set(documented), where
        for key in documented:
            yield from _leaves(answered[key], documented[key], f"{where}.{key}")
    elif isinstance(documented, list):
        assert isinstance(answered, list) and len(answered) == len(documented), where
        for index, (a, d) in enumerate(zip(answered, documented)):
            yield from _leaves(a, d, f"{where}[{index}]")
    else:
        yield where, answered, documented


def test_code_alone_answers_the_first_example_of_that_status(client):
    response = send(client, "post-credentials", "code=502")
    assert (response.status_code, response.json()["code"]) == (502, "EBAA0002")


def test_example_alone_finds_its_status(client):
    response = send(client, "validate-pix-key-twofa", "example=2FA000410")
    assert (response.status_code, response.json()["code"]) == (410, "2FA000410")


@pytest.mark.parametrize("prefer,reason", [
    ("code=418", "status 418 is not documented"),
    ("code=500", "status 500 is not documented"),  # the Pix key API documents no 500
    ("code=400, example=NOPE", "no example named 'NOPE'"),
    ("code=abc", "is not a status"),
])
def test_undocumented_preferences_are_refused(client, prefer, reason):
    response = send(client, "create-pix-key", prefer)
    assert response.status_code == 400
    assert response.json()["code"] == "SBX000400"
    assert reason in response.json()["description"]


def test_prefer_does_not_bypass_authentication(client):
    response = send(client, "post-credentials", "code=502", authenticated=False)
    assert response.status_code == 401


def test_prefer_does_not_bypass_validation(client):
    response = client.post("/baas/pix/keys", json={"pix_key_type": "cnpj"}, headers=ORG_A | {"Prefer": "code=201"})
    assert response.status_code == 400


def test_other_preferences_leave_the_request_alone(client):
    response = send(client, "create-pix-key", "return=minimal")
    assert response.status_code == 201
    assert response.json()["request_data"]["owner_name"] == "VOVO LUCIA CONVENIENCIA LTDA"


#: Operations whose success has no body (204): nothing to generate (`dynamic=true` answers 400 saying so).
BODYLESS = {"simulate-key-claim-response", "simulate-key-claim-completion"}


@pytest.mark.parametrize("operation_id", sorted(set(VALID_REQUESTS) - BODYLESS))
def test_dynamic_bodies_fit_the_schema(client, operation_id):
    """Response validation is on: a generated body that broke the schema would answer 500."""
    for _ in range(5):
        response = send(client, operation_id, "dynamic=true")
        assert 200 <= response.status_code < 300, response.text


def test_dynamic_with_a_code_generates_that_status(client):
    response = send(client, "create-pix-key", "code=404, dynamic=true")
    assert response.status_code == 404
    assert set(response.json()) >= {"title", "description", "translation", "code"}


def test_dynamic_bodies_vary_and_are_not_the_example(client):
    bodies = [send(client, "create-pix-key", "dynamic=true").json() for _ in range(3)]
    assert len({b["pix_key_request_key"] for b in bodies}) == 3
    assert all(b["request_data"]["owner_name"] for b in bodies)


def test_dynamic_bodies_are_reproducible_with_a_seed(client_with):
    runs = []
    for _ in range(2):
        with client_with(seed=11) as seeded:
            runs.append([send(seeded, "list-pix-keys", "dynamic=true").json() for _ in range(2)])
    assert runs[0] == runs[1]
