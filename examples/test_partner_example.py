"""A partner's tests against the sandbox, with the ``baas_sandbox`` pytest fixture.

    pip install 'baas-sandbox[test]'      # the fixture comes with the package
    pytest examples/test_partner_example.py                 # a sandbox of the session's own

    # or a sandbox already running (a team's, a CI service container), tests side by side:
    baas-sandbox serve --port 8080 &
    BAAS_SANDBOX_URL=http://127.0.0.1:8080 pytest -n 2 examples/test_partner_example.py

``PixKeys`` below stands for the partner's own code: the client their app uses to talk to the
Pix key API. The tests drive it against a real sandbox, each test in a namespace of its own (a
fresh sandbox: the same e-mail key is free in every test, even two running at once); the app's
client sends ``baas_sandbox.headers()``, which name that namespace. The fixture's helpers do what
the product API cannot: read the verification code "sent", add an account, force an error
scenario, and move the namespace's clock (``freeze()``, ``advance(seconds)``) so no test sleeps.
"""

from __future__ import annotations

import httpx
import pytest


class PixKeys:
    """The partner's client of the Pix key API (in a real project, imported from their app).

    ``headers``: what every request carries, in production the bearer token; against the sandbox
    ``baas_sandbox.headers()``, the token and the test's ``X-Sandbox-Namespace``."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=10)

    def register(self, account_key: str, key_type: str, key: str | None = None) -> dict:
        body = {"account_key": account_key, "pix_key_type": key_type} | ({"pix_key": key} if key else {})
        answer = self.http.post("/baas/pix/keys", json=body)
        answer.raise_for_status()
        return answer.json()

    def confirm(self, request_key: str, code: str) -> dict:
        answer = self.http.patch(f"/baas/pix/keys/{request_key}/twofa_validation",
                                 json={"verification_code": code})
        answer.raise_for_status()
        return answer.json()

    def keys(self, account_key: str) -> list[dict]:
        answer = self.http.get("/baas/pix/keys", params={"account_key": account_key})
        answer.raise_for_status()
        return answer.json()["pix_keys"]

    def save_credential(self, provider: str, key: str) -> httpx.Response:
        return self.http.post("/banking-auth/v1/credentials", headers={"account_token": "t"},
                              json={"key": key, "provider": provider, "type": "PIX"})


@pytest.fixture
def pix(baas_sandbox) -> PixKeys:
    return PixKeys(baas_sandbox.url, baas_sandbox.headers())  # Authorization + X-Sandbox-Namespace


def test_an_email_key_is_active_once_confirmed(baas_sandbox, pix):
    baas_sandbox.freeze()  # the namespace's time stands still: wait_for_key_status moves it instead of waiting
    account = baas_sandbox.create_account(owner_name="ANA SOUZA")
    request = pix.register(account["account_key"], "email", "ana.souza@example.com")
    assert request["request_status"] == "pending_validation"

    code = baas_sandbox.last_verification_code(request["pix_key_request_key"])
    assert pix.confirm(request["pix_key_request_key"], code)["request_status"] == "pending"

    key = baas_sandbox.wait_for_key_status(account["account_key"], request["pix_key_request_key"], "active")
    assert key["pix_key"] == "ana.souza@example.com"


def test_dict_decides_when_the_clock_says_so(baas_sandbox, pix):
    baas_sandbox.freeze()
    account = baas_sandbox.create_account()
    request = pix.register(account["account_key"], "random_key")
    assert [k["pix_key_status"] for k in pix.keys(account["account_key"])] != ["active"]  # still pending

    moved = baas_sandbox.advance(60)  # DICT's decision falls due, and runs before advance returns
    assert moved["jobs_run"] >= 1
    [key] = pix.keys(account["account_key"])
    assert (key["pix_key_request_key"], key["pix_key_status"]) == (request["pix_key_request_key"], "active")


def test_a_wrong_code_is_refused(baas_sandbox, pix):
    account = baas_sandbox.create_account()
    request = pix.register(account["account_key"], "email", "ana.souza@example.com")  # free again: a new namespace
    code = baas_sandbox.last_verification_code(request["pix_key_request_key"])
    with pytest.raises(httpx.HTTPStatusError) as refused:
        pix.confirm(request["pix_key_request_key"], "000000" if code != "000000" else "111111")
    assert refused.value.response.json()["code"] == "2FA000400"


def test_a_key_dict_rejects_never_becomes_active(baas_sandbox, pix):
    baas_sandbox.freeze()
    account = baas_sandbox.create_account(dict_rejects=True)
    request = pix.register(account["account_key"], "email", "joao@example.com")
    pix.confirm(request["pix_key_request_key"], baas_sandbox.last_verification_code(request["pix_key_request_key"]))
    with pytest.raises(AssertionError, match="not 'active'"):  # a minute of the namespace's time, no wait
        baas_sandbox.wait_for_key_status(account["account_key"], request["pix_key_request_key"], timeout=60)


def test_an_expired_code_is_gone(baas_sandbox, pix):
    account = baas_sandbox.create_account()
    request = pix.register(account["account_key"], "email", "late@example.com")
    code = baas_sandbox.last_verification_code(request["pix_key_request_key"])
    baas_sandbox.advance(11 * 60)  # past the code's 10 minutes (the sandbox's --code-ttl)
    with pytest.raises(httpx.HTTPStatusError) as refused:
        pix.confirm(request["pix_key_request_key"], code)
    assert refused.value.response.status_code == 410


def test_the_app_sees_the_provider_outage(baas_sandbox, pix):
    with baas_sandbox.scenarios("provider-outage"):  # in this test's namespace only
        assert pix.save_credential("BTG", "a-key").status_code == 502
    assert pix.save_credential("BTG", "a-key").status_code == 201


@pytest.mark.baas_sandbox(scenarios=["provider-outage"])  # a sandbox of its own, started with the outage on;
def test_a_sandbox_started_with_the_outage(baas_sandbox, pix):  # skipped against BAAS_SANDBOX_URL
    assert pix.save_credential("BTG", "a-key").status_code == 502
