"""The pytest plugin (`baas_sandbox` fixture): loaded from the package's entry point, through HTTP.

This suite uses the fixture itself (the plugin is loaded here too), and runs the partner example
and a foreign project's tests in subprocesses: what a consumer with only the package installed
gets."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from stdnum.br import cnpj, cpf

from baas_sandbox.defaults import PROJECT_ROOT
from baas_sandbox.pytest_plugin import SandboxError

SEED_ACCOUNT = "6d30a0b1-cb90-4ceb-b1ea-5bd600cdf3c8"


def run_pytest(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          capture_output=True, text=True, timeout=120, cwd=cwd)


def test_the_partner_example_passes():
    """examples/test_partner_example.py, as a partner runs it: the fixture comes from the entry point."""
    result = run_pytest("-q", "examples/test_partner_example.py", cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout


def test_a_foreign_project_gets_a_fresh_sandbox_per_test_with_its_ini_settings(tmp_path):
    """No conftest: only the installed plugin. The ini option slows DICT down; the second test
    proves the reset between tests (the same account_key is free again)."""
    (tmp_path / "pytest.ini").write_text("[pytest]\nbaas_sandbox_activation_delay = 30\n")
    (tmp_path / "test_consumer.py").write_text(textwrap.dedent('''
        import pytest

        ACCOUNT = "0b0e8a5c-2b7d-4c3e-9a61-7b2d4e8f0a99"

        @pytest.mark.parametrize("attempt", [1, 2])
        def test_account_and_key(baas_sandbox, attempt):
            account = baas_sandbox.create_account(account_key=ACCOUNT)   # a 409 if not reset
            created = baas_sandbox.call("POST", "/baas/pix/keys",
                                        body={"account_key": ACCOUNT, "pix_key_type": "random_key"})
            with pytest.raises(AssertionError, match="not 'active' within 0.3 s"):
                baas_sandbox.wait_for_key_status(ACCOUNT, created["pix_key_request_key"], timeout=0.3)
    '''))
    result = run_pytest("-q", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_the_fixture_gives_a_running_sandbox_and_its_tenants(baas_sandbox):
    assert baas_sandbox.url.startswith("http://127.0.0.1:")
    assert baas_sandbox.tokens == {"org-a": "org-a-token", "org-b": "org-b-token"}
    assert baas_sandbox.headers() == {"Authorization": "Bearer org-a-token"}
    with httpx.Client(base_url=baas_sandbox.url) as api:
        mine = api.get("/baas/pix/keys", params={"account_key": SEED_ACCOUNT}, headers=baas_sandbox.headers())
        theirs = api.get("/baas/pix/keys", params={"account_key": SEED_ACCOUNT},
                         headers=baas_sandbox.headers("org-b"))
    assert mine.status_code == 200
    assert theirs.status_code == 403


def test_reset_forgets_what_the_test_added(baas_sandbox):
    account = baas_sandbox.create_account()
    listed = baas_sandbox.call("GET", "/__admin/accounts")["accounts"]
    assert account["account_key"] in [a["account_key"] for a in listed]
    baas_sandbox.reset()
    listed = baas_sandbox.call("GET", "/__admin/accounts")["accounts"]
    assert account["account_key"] not in [a["account_key"] for a in listed]


@pytest.mark.parametrize("person_type,module,length", [("natural", cpf, 11), ("legal", cnpj, 14)])
@pytest.mark.parametrize("dict_rejects,first_digits", [(False, "06789"), (True, "12345")])
def test_create_account_makes_up_a_valid_document_for_the_outcome_asked(
        baas_sandbox, person_type, module, length, dict_rejects, first_digits):
    account = baas_sandbox.create_account(owner_person_type=person_type, dict_rejects=dict_rejects)
    document = account["owner_document_number"]
    assert len(document) == length and module.is_valid(document)
    assert document[0] in first_digits
    assert account["tenant"] == "org-a" and account["status"] == "open"


def test_create_account_takes_any_field_and_reports_a_refusal(baas_sandbox):
    account = baas_sandbox.create_account(tenant="org-b", owner_name="CARLA DIAS", status="closed")
    assert (account["tenant"], account["owner_name"], account["status"]) == ("org-b", "CARLA DIAS", "closed")
    with pytest.raises(SandboxError, match="POST /__admin/accounts answered 400"):
        baas_sandbox.create_account(owner_document_number="12345678900")


def test_the_last_verification_code_is_the_one_that_works(baas_sandbox):
    request = baas_sandbox.call("POST", "/baas/pix/keys", body={
        "account_key": SEED_ACCOUNT, "pix_key_type": "email", "pix_key": "plugin@example.com"})
    key = request["pix_key_request_key"]
    baas_sandbox.call("PATCH", f"/baas/pix/keys/{key}/resend_twofa", body={})
    assert len(baas_sandbox.verification_codes(key)) == 2
    validated = baas_sandbox.call("PATCH", f"/baas/pix/keys/{key}/twofa_validation",
                                  body={"verification_code": baas_sandbox.last_verification_code(key)})
    assert validated["request_status"] == "pending"
    assert baas_sandbox.wait_for_key_status(SEED_ACCOUNT, key)["pix_key"] == "plugin@example.com"


def test_no_code_for_a_key_that_needs_none(baas_sandbox):
    request = baas_sandbox.call("POST", "/baas/pix/keys",
                                body={"account_key": SEED_ACCOUNT, "pix_key_type": "random_key"})
    with pytest.raises(SandboxError, match="only email and phone key requests get one"):
        baas_sandbox.last_verification_code(request["pix_key_request_key"])


def test_scenarios_apply_in_the_block_and_the_previous_ones_come_back(baas_sandbox):
    credential = {"key": "k", "provider": "CELCOIN", "type": "PIX"}
    headers = baas_sandbox.headers() | {"account_token": "t"}
    assert baas_sandbox.activate_scenarios("dict-slow") == ["dict-slow"]
    with httpx.Client(base_url=baas_sandbox.url, headers=headers) as api:
        with baas_sandbox.scenarios("provider-outage") as active:
            assert active == ["provider-outage"]
            assert api.post("/banking-auth/v1/credentials", json=credential).json()["code"] == "EBAA0002"
        assert api.post("/banking-auth/v1/credentials", json=credential).status_code == 201
    assert baas_sandbox.call("GET", "/__admin/scenarios")["active"] == ["dict-slow"]


@pytest.mark.baas_sandbox(activation_delay=30)
def test_the_marker_gives_the_test_a_sandbox_of_its_own(baas_sandbox, baas_sandbox_server):
    assert baas_sandbox.url != baas_sandbox_server.url
    request = baas_sandbox.call("POST", "/baas/pix/keys",
                                body={"account_key": SEED_ACCOUNT, "pix_key_type": "random_key"})
    with pytest.raises(SandboxError, match="not 'active' within 0.2 s; last seen: .*'pix_key_status': "):
        baas_sandbox.wait_for_key_status(SEED_ACCOUNT, request["pix_key_request_key"], timeout=0.2)


@pytest.mark.baas_sandbox(admin_token="plugin-admin-token")
def test_the_helpers_send_the_admin_token_of_a_sandbox_that_has_one(baas_sandbox):
    import httpx

    assert baas_sandbox.create_account()["tenant"] == "org-a"  # POST /__admin/accounts, with the token
    assert baas_sandbox.reset()["message"] == "Sandbox reset to fixtures"
    assert httpx.post(f"{baas_sandbox.admin_url}/reset").status_code == 401  # without it
    assert "plugin-admin-token" not in repr(baas_sandbox)


def test_the_fixtures_server_has_serves_protocol(baas_sandbox):
    """The same protocol and bounds as `baas-sandbox serve`: a request head over 64 KiB is a JSON 400
    in the API's format (uvicorn's own protocol answered plain text)."""
    answer = httpx.get(f"{baas_sandbox.url}/baas/pix/keys", headers=baas_sandbox.headers() | {"X-Big": "a" * 70_000})
    assert answer.status_code == 400 and answer.headers["content-type"] == "application/json"
    assert answer.json()["code"] == "SBX000400"
