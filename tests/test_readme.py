"""The README's promises: every row of its error table, triggered as the row says, answers its
code and status; its scenario example loads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import (
    CLOSED_ACCOUNT,
    NATURAL_ACCOUNT,
    NATURAL_CPF,
    ORG_A,
    ORG_B,
    ORG_B_ACCOUNT,
    PERSON_MISSING_ACCOUNT,
    SEED_ACCOUNT,
    create_key,
    key_status,
    latest_code,
    wait_until,
)

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def table_codes() -> list[str]:
    section = README.split("## Error codes and how to trigger them", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([A-Z0-9]+)` \|", section, flags=re.MULTILINE)


def test_the_table_lists_every_documented_code():
    spec = (ROOT / "spec" / "openapi.yaml").read_text()
    documented = set(re.findall(r"code: ([A-Z0-9]{7,9})\b", spec))
    assert documented <= set(table_codes())


def table_rows() -> dict[str, int]:
    """code -> status, as the README's error table says."""
    section = README.split("## Error codes and how to trigger them", 1)[1].split("\n## ", 1)[0]
    return {code: int(status) for code, status in
            re.findall(r"^\| `([A-Z0-9]+)` \| (\d{3}) \|", section, flags=re.MULTILINE)}


# -- the table's triggers, as its "how to trigger it" column says them -----------------------------------

CREDENTIAL = {"key": "Tc84Hi3CRyAHFBNIvbc8CuSuvHuGibjf", "provider": "BTG", "type": "PIX"}
ACCOUNT_TOKEN = {"account_token": "t"}


def _credentials(client, body=CREDENTIAL, headers=ORG_A | ACCOUNT_TOKEN):
    return client.post("/banking-auth/v1/credentials", json=body, headers=headers)


def _prefer(code: str):
    return lambda client: _credentials(client, headers=ORG_A | ACCOUNT_TOKEN | {"Prefer": f"code=500, example={code}"})


def _email_request(client, account=NATURAL_ACCOUNT, email="ana@example.com") -> str:
    answer = create_key(client, account, "email", email)
    assert answer.status_code == 201, answer.text
    return answer.json()["pix_key_request_key"]


def _twofa(client, request_key: str, code: str, headers=ORG_A):
    return client.patch(f"/baas/pix/keys/{request_key}/twofa_validation", json={"verification_code": code},
                        headers=headers)


def _wrong_code(client):
    request_key = _email_request(client)
    right = latest_code(client, request_key)
    return _twofa(client, request_key, f"{(int(right) + 1) % 1_000_000:06d}")


def _accepted_code_again(client):
    request_key = _email_request(client)
    code = latest_code(client, request_key)
    assert _twofa(client, request_key, code).status_code == 200
    return _twofa(client, request_key, code)


def _resend_after_acceptance(client):
    request_key = _email_request(client)
    assert _twofa(client, request_key, latest_code(client, request_key)).status_code == 200
    return client.patch(f"/baas/pix/keys/{request_key}/resend_twofa", json={}, headers=ORG_A)


def _active_key_again(client):
    request_key = _email_request(client, email="taken@example.com")
    assert _twofa(client, request_key, latest_code(client, request_key)).status_code == 200
    wait_until(lambda: key_status(client, NATURAL_ACCOUNT, request_key) == "active")
    return create_key(client, ORG_B_ACCOUNT, "email", "taken@example.com", headers=ORG_B)  # another tenant


def _unfinished_key_again(client):
    _email_request(client, email="twice@example.com")
    return create_key(client, NATURAL_ACCOUNT, "email", "twice@example.com")


def _sixth_key(client):
    for _ in range(5):
        assert create_key(client, NATURAL_ACCOUNT, "random_key").status_code == 201
    return create_key(client, NATURAL_ACCOUNT, "random_key")


def _fifth_wrong_code(client):
    request_key = _email_request(client)
    wrong = f"{(int(latest_code(client, request_key)) + 1) % 1_000_000:06d}"
    for _ in range(4):
        assert _twofa(client, request_key, wrong).json()["code"] == "2FA000400"
    return _twofa(client, request_key, wrong)


def _over_the_connection_cap(_client):
    """A served sandbox (the cap is the server's): one connection held open, then one more."""
    import httpx

    from tests.test_hostile import serving

    with serving("--max-connections", "1") as served, served.connect():
        return httpx.get(f"{served.base}/baas/pix/keys", params={"account_key": SEED_ACCOUNT}, headers=ORG_A)


def _expired_code(client):
    request_key = _email_request(client)
    code = latest_code(client, request_key)
    # past --code-ttl (default 600 s) on the namespace's clock, as the row says
    assert client.post("/__admin/clock/advance", json={"seconds": 601}).status_code == 200
    return _twofa(client, request_key, code)


def _other_tenants_key(client):
    answer = create_key(client, ORG_B_ACCOUNT, "cpf", "02269499905", headers=ORG_B)
    request_key = answer.json()["pix_key_request_key"]
    wait_until(lambda: key_status(client, ORG_B_ACCOUNT, request_key, headers=ORG_B) == "active")
    return client.delete("/baas/pix/keys/02269499905", headers=ORG_A)


def _empty_bucket(client):
    for _ in range(5):  # 5 keys not found: 100 tokens, a natural person's bucket
        answer = client.get("/baas/pix/keys/ana.nobody@example.com", params={"account_key": NATURAL_ACCOUNT},
                            headers=ORG_A)
        assert answer.json() == {"exists": False, "pix_key": "ana.nobody@example.com"}
    answer = client.get("/baas/pix/keys/ana.nobody@example.com", params={"account_key": NATURAL_ACCOUNT},
                        headers=ORG_A)
    assert int(answer.headers["Retry-After"]) >= 1
    return answer


D1 = "8a2c4e6f-1b3d-4f5a-9c7e-0d2f4a6b8c0e"  # fixtures/claims.yaml: PADARIA's CNPJ claimed (donor)
D2 = "b3d5f7a9-2c4e-4a6b-8d0f-1e3a5c7e9b2d"  # BRUNA's email, ownership (donor)
C2 = "5e7a9c1b-3d5f-4a7b-9c1d-2e4f6a8b0c1d"  # LUCAS's CPF, portability (claimant)


def _claim(client, value, key_type, account=SEED_ACCOUNT):
    return client.post("/baas/pix/key_claim_request",
                       json={"account_key": account, "pix_key": value, "pix_key_type": key_type}, headers=ORG_A)


def _ownership_cancel_without_code(client):
    assert client.patch(f"/baas/pix/key_claim_request/{D2}/pending_donator_validation", json={},
                        headers=ORG_A).status_code == 200
    return client.patch(f"/baas/pix/key_claim_request/{D2}/cancelled", json={"cancellation_reason": "fraud"},
                        headers=ORG_A)


TRIGGERS = {
    "EBAA0004": lambda c: _credentials(c, CREDENTIAL | {"provider": "FOO"}),
    "EBAA0005": lambda c: _credentials(c, {"provider": "BTG", "type": "PIX"}),
    "EBAA0007": lambda c: _credentials(c, CREDENTIAL | {"type": "BAAS", "provider": "JDPI"}),
    "EBAA0018": lambda c: _credentials(c, CREDENTIAL | {"key": "invalid-key"}),
    "EBAA0002": lambda c: _credentials(c, CREDENTIAL | {"key": "unavailable-key"}),
    "EBAA0003": lambda c: _credentials(c, CREDENTIAL | {"key": "timeout-key"}),
    "EBAA0014": lambda c: _credentials(c, headers=ORG_B | ACCOUNT_TOKEN),
    "EBAA0009": _prefer("EBAA0009"),
    "EBAA0010": _prefer("EBAA0010"),
    "EBAA0011": _prefer("EBAA0011"),
    "EBAA0012": _prefer("EBAA0012"),
    "EPIX0005": _prefer("EPIX0005"),
    "PIX000026": lambda c: create_key(c, "00000000-0000-4000-8000-000000000000", "random_key"),
    "PIX000002": lambda c: create_key(c, CLOSED_ACCOUNT, "random_key"),
    "PIX000027": lambda c: create_key(c, PERSON_MISSING_ACCOUNT, "random_key"),
    "PIX000054": lambda c: create_key(c, ORG_B_ACCOUNT, "random_key"),
    "PIX000020": lambda c: create_key(c, SEED_ACCOUNT, "cpf", NATURAL_CPF),
    "PIX000065": _active_key_again,
    "PIX000074": _unfinished_key_again,
    "PIX000014": _sixth_key,
    "PIX000083": lambda c: c.delete("/baas/pix/keys/ana.nobody@example.com", headers=ORG_A),
    "PIX000072": lambda c: c.delete("/baas/pix/keys/AB1CD2EF000170", headers=ORG_A),
    "PIX000034": lambda c: c.patch("/mock/pix_keys/key_claim_simulation/00000000-0000-4000-8000-000000000000/complete",
                                   json={}, headers=ORG_A),
    "PIX000035": lambda c: c.patch(f"/baas/pix/key_claim_request/{D1}/twofa_validation",
                                   json={"verification_code": "123456"}, headers=ORG_A),
    "PIX000036": lambda c: c.patch(f"/baas/pix/key_claim_request/{C2}/confirmed", json={}, headers=ORG_A),
    "PIX000046": lambda c: c.patch(f"/mock/pix_keys/key_claim_simulation/{D1}/complete", json={}, headers=ORG_A),
    "DCT000001": lambda c: _claim(c, "71234567857", "cpf"),
    "DCT000002": lambda c: _claim(c, "ana.nobody@example.com", "email"),
    "DCT000003": lambda c: c.patch(f"/baas/pix/key_claim_request/{D2}/cancelled",
                                   json={"cancellation_reason": "client_request"}, headers=ORG_A),
    "DCT000004": _ownership_cancel_without_code,
    "PIX000080": _other_tenants_key,
    "PIX000079": _empty_bucket,
    "PIX000008": lambda c: _twofa(c, "00000000-0000-4000-8000-000000000000", "123456"),
    "QIT000005": lambda c: _twofa(c, _email_request(c), "123456", headers=ORG_B),
    "PIX000075": lambda c: _twofa(c, create_key(c, SEED_ACCOUNT, "random_key").json()["pix_key_request_key"],
                                  "123456"),
    "PIX000076": _resend_after_acceptance,
    "2FA000400": _wrong_code,
    "2FA000403": _accepted_code_again,
    "2FA000410": _expired_code,
    "2FA000429": _fifth_wrong_code,
    "SBX000400": lambda c: create_key(c, SEED_ACCOUNT, "cnpj", "09080702000100"),
    "SBX000401": lambda c: c.get("/baas/pix/keys", params={"account_key": SEED_ACCOUNT}),
    "SBX000403": lambda c: c.post("/__admin/reset", headers={"Origin": "https://evil.example"}),
    "SBX000421": lambda c: c.get("/__admin/accounts", headers={"Host": "evil.example"}),
    "SBX000404": lambda c: c.get("/baas/pix/nothing-here", headers=ORG_A),
    "SBX000405": lambda c: c.delete("/baas/pix/keys", headers=ORG_A),
    "SBX000413": lambda c: c.post("/baas/pix/keys", content=b" " * (1024 * 1024 + 1),
                                  headers=ORG_A | {"Content-Type": "application/json"}),
    "SBX000503": _over_the_connection_cap,
    "SBX000429": lambda c: c.get("/baas/pix/keys", params={"account_key": SEED_ACCOUNT},
                                 headers=ORG_A | {"X-Sandbox-Namespace": "one-too-many"}),
    "SBX000415": lambda c: c.post("/baas/pix/keys", content=b"account_key=x", headers=ORG_A | {"Content-Type": "text/plain"}),
}
#: Settings a trigger needs (the README names them in the row).
SETTINGS = {"SBX000429": {"max_namespaces": 1}}


def test_every_row_of_the_table_has_a_trigger_here():
    assert set(table_rows()) == set(TRIGGERS)


@pytest.mark.parametrize("code", sorted(TRIGGERS))
def test_each_rows_trigger_answers_its_code_and_status(client_with, code):
    with client_with(**SETTINGS.get(code, {})) as client:
        answer = TRIGGERS[code](client)
    assert (answer.status_code, answer.json()["code"]) == (table_rows()[code], code), answer.text


def test_the_scenario_example_loads(tmp_path):
    from baas_sandbox.app import Specs
    from baas_sandbox.scenarios.loader import load_scenario

    section = README.split("## Error scenarios", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "readme-example.yaml"
    path.write_text(example)
    specs = Specs.load()
    product = [op["operationId"] for item in specs.product["paths"].values() for op in item.values()
               if isinstance(op, dict) and "operationId" in op]
    scenario = load_scenario(path, specs.contract, frozenset(product))
    assert [rule.name for rule in scenario.rules] == ["btg-down"]
    assert scenario.rules[0].effects() == ["latency", "respond 502 EBAA0002", "fault reset"]


def test_the_claims_walk_through_pasted_as_one_block():
    """The README's claims walk-through, pasted into a shell against a served sandbox: both roles end
    as it says."""
    import shutil
    import subprocess

    from tests.conftest import live_server

    assert shutil.which("curl")
    block = README.split("### Walk-through: claims", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    with live_server() as (base_url, _):
        script = block.replace("S=http://127.0.0.1:8080", f"S={base_url}")
        result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert '"claim_request_status": "pending"' in out
    assert '"pix_key": "contato@vovolucia.com.br", "pix_key_status": "active"' in out
    assert '"code": "PIX000072"' in out
    assert '"claim_request_status": "confirmed"' in out
    assert out.count("204") >= 3
    assert '"claim_status": "concluded"' in out and '"claim_status": "cancelled"' in out
    assert '"webhook_type": "claim_request"' in out and '"role": "donator"' in out


def test_the_walk_through_pasted_as_one_block_shows_the_key_active():
    """The README's walk-through, as a new user pastes it into a shell (curl and python3, as it says),
    against a served sandbox with the default activation delay: it waits for DICT by itself."""
    import shutil
    import subprocess

    from tests.conftest import live_server

    assert shutil.which("curl"), "the walk-through needs curl (.ci/run installs it)"
    block = README.split("## Walk-through", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    with live_server(activation_delay=1.0) as (base_url, _):
        script = block.replace("S=http://127.0.0.1:8080", f"S={base_url}")
        result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    listed = [line for line in lines if line.startswith('{"account_key": "6d30a0b1') and '"pix_keys"' in line]
    assert listed and '"pix_key": "09080702000105", "pix_key_status": "active"' in listed[0], result.stdout
    assert '"Credential saved"' in result.stdout
    assert '"request_status": "pending"' in result.stdout  # the email key, once its code was accepted


def test_the_namespace_and_clock_blocks_pasted_into_a_shell_work():
    """The "Namespaces and time" section's shell blocks, pasted after the walk-through's variables."""
    import json
    import shutil
    import subprocess

    from tests.conftest import live_server

    assert shutil.which("curl"), "the README's blocks need curl (.ci/run installs it)"
    section = README.split("## Namespaces and time", 1)[1].split("\n## ", 1)[0]
    blocks = [part.split("```", 1)[0] for part in section.split("```sh\n")[1:]]
    assert len(blocks) == 2
    variables = "A='Authorization: Bearer org-a-token'; J='Content-Type: application/json'\n"
    with live_server() as (base_url, _):
        script = variables + f"S={base_url}\n" + "\n".join(blocks)
        result = subprocess.run(["bash", "-c", "set -e\n" + script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert answers[0]["request_status"] == "pending"  # the key, in the namespace
    assert answers[1]["message"] == "Sandbox reset to fixtures"
    assert "ci-job-4711" in [n["name"] for n in answers[2]["namespaces"]]
    clock = answers[3:]  # the DELETE answers 204, no body
    assert clock[1]["frozen"] is True and clock[2]["jobs_run"] == 0
    assert clock[3]["now"] == "2030-01-01T09:00:00" and clock[4]["frozen"] is False
