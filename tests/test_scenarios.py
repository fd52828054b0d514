"""Error scenarios, over a real socket: effects, budgets, conditions, switching, hot reload, refusals.

Faults can only be seen by a real client on a real connection, so these tests talk to uvicorn.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from baas_sandbox.app import create_app
from baas_sandbox.scenarios.library import UnknownScenario
from baas_sandbox.scenarios.loader import ScenarioError
from baas_sandbox.services.sandbox import DEFAULT_FIXTURES, Settings
from tests.conftest import live_server
from tests.helpers import NATURAL_ACCOUNT, ORG_A, SEED_ACCOUNT, SEED_CNPJ, billion_laughs, nested, run, wait_until

CREDENTIALS = "/banking-auth/v1/credentials"
SEED_001 = {"key": "Tc84Hi3CRyAHFBNIvbc8CuSuvHuGibjf", "provider": "BTG", "type": "PIX",
            "provider_data": {"client_id": "Your client ID"}}
AUTH_HEADERS = ORG_A | {"account_token": "Your account token"}
EBAA0002 = {"code": "EBAA0002", "message": "Bad Gateway Error"}


def fixtures_with(tmp_path: Path, **scenarios: str) -> Path:
    """A copy of the fixtures whose scenario folder holds exactly ``scenarios`` (name -> YAML)."""
    directory = tmp_path / "fixtures"
    shutil.copytree(DEFAULT_FIXTURES, directory)
    shutil.rmtree(directory / "scenarios")
    (directory / "scenarios").mkdir()
    for name, text in scenarios.items():
        write_scenario(directory, name, text)
    return directory


def write_scenario(directory: Path, name: str, text: str) -> Path:
    path = directory / "scenarios" / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def save_credential(client: httpx.Client, body: dict = SEED_001, **headers: str) -> httpx.Response:
    return client.post(CREDENTIALS, json=body, headers=AUTH_HEADERS | headers)


@pytest.fixture
def sandbox_client() -> Iterator:
    """``with sandbox_client(**settings) as (client, sandbox):`` an httpx client on a live server."""

    from contextlib import contextmanager

    @contextmanager
    def start(**settings):
        with live_server(**settings) as (base_url, sandbox), httpx.Client(base_url=base_url, timeout=10) as client:
            yield client, sandbox

    return start


# -- no scenario: the sandbox is unchanged --------------------------------------------------------


def test_without_an_active_scenario_answers_are_untouched(sandbox_client):
    with sandbox_client() as (client, _):
        assert client.get("/__admin/scenarios").json()["active"] == []
        assert save_credential(client).status_code == 201
        created = client.post("/baas/pix/keys", headers=ORG_A,
                              json={"account_key": SEED_ACCOUNT, "pix_key_type": "cnpj", "pix_key": SEED_CNPJ})
        assert created.status_code == 201


# -- switching ------------------------------------------------------------------------------------


def test_provider_outage_from_start_answers_the_specs_EBAA0002(sandbox_client):
    with sandbox_client(scenarios=["provider-outage"]) as (client, sandbox):
        response = save_credential(client)
        assert response.status_code == 502
        assert response.json() == EBAA0002
        assert response.headers["tracking_id"]
        assert run(sandbox.store.credential("org-a", "BTG", "PIX")) is None  # the handler did not run


def test_the_cli_switches_a_scenario_on():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = Path(sys.executable).with_name("baas-sandbox")
    server = subprocess.Popen([str(command), "serve", "--port", str(port), "--scenario", "provider-outage",
                               "--log-level", "warning"], stderr=subprocess.PIPE)
    try:
        def answer():
            try:
                return httpx.post(f"http://127.0.0.1:{port}{CREDENTIALS}", json=SEED_001, headers=AUTH_HEADERS)
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read().decode()
                return None
        response = wait_until(answer, timeout=20, interval=0.1)
        assert (response.status_code, response.json()) == (502, EBAA0002)
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_cli_refuses_an_unknown_scenario():
    command = Path(sys.executable).with_name("baas-sandbox")
    result = subprocess.run([str(command), "serve", "--scenario", "no-such-thing"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert "unknown scenario(s): no-such-thing" in result.stderr


def test_switching_at_run_time_through_the_admin_api(sandbox_client):
    with sandbox_client() as (client, _):
        listed = client.put("/__admin/scenarios/active", json={"names": ["provider-outage"]})
        assert listed.status_code == 200 and listed.json()["active"] == ["provider-outage"]
        assert save_credential(client).status_code == 502
        assert client.put("/__admin/scenarios/active", json={"names": []}).json()["active"] == []
        assert save_credential(client).status_code == 201


def test_switching_to_an_unknown_scenario_is_refused_and_changes_nothing(sandbox_client):
    with sandbox_client(scenarios=["provider-outage"]) as (client, _):
        response = client.put("/__admin/scenarios/active", json={"names": ["limits-reached", "nope"]})
        assert response.status_code == 400
        assert "nope" in response.json()["details"]
        assert client.get("/__admin/scenarios").json()["active"] == ["provider-outage"]


def test_a_header_applies_a_scenario_to_one_request(sandbox_client):
    with sandbox_client() as (client, _):
        assert save_credential(client, **{"X-Sandbox-Scenario": "provider-outage"}).status_code == 502
        assert save_credential(client).status_code == 201
        limited = client.post("/baas/pix/keys", headers=ORG_A | {"X-Sandbox-Scenario": "limits-reached"},
                              json={"account_key": SEED_ACCOUNT, "pix_key_type": "random_key"})
        assert (limited.status_code, limited.json()["code"]) == (400, "PIX000014")


def test_the_header_replaces_the_active_scenarios_for_its_request(sandbox_client):
    with sandbox_client(scenarios=["provider-outage"]) as (client, _):
        response = save_credential(client, **{"X-Sandbox-Scenario": "crypto-failure"})
        assert (response.status_code, response.json()["code"]) == (500, "EBAA0009")


def test_an_unknown_scenario_header_is_a_clear_400(sandbox_client):
    with sandbox_client() as (client, _):
        response = save_credential(client, **{"X-Sandbox-Scenario": "nope"})
        assert response.status_code == 400
        assert response.json()["code"] == "SBX000400"
        assert "unknown scenario 'nope'" in response.json()["details"]


def test_active_scenarios_are_evaluated_in_order(sandbox_client):
    with sandbox_client(scenarios=["crypto-failure", "provider-outage"]) as (client, _):
        assert save_credential(client).json()["code"] == "EBAA0009"
    with sandbox_client(scenarios=["provider-outage", "crypto-failure"]) as (client, _):
        assert save_credential(client).json()["code"] == "EBAA0002"


def test_reset_returns_to_the_start_up_selection_with_zero_counts(sandbox_client):
    with sandbox_client(scenarios=["provider-outage"]) as (client, _):
        save_credential(client)
        client.put("/__admin/scenarios/active", json={"names": ["limits-reached"]})
        client.post("/__admin/reset")
        listed = client.get("/__admin/scenarios").json()
        assert listed["active"] == ["provider-outage"]
        outage = next(s for s in listed["scenarios"] if s["name"] == "provider-outage")
        assert outage["rules"][0]["matched"] == outage["rules"][0]["applied"] == 0


def test_a_scenario_never_answers_before_authentication_or_validation(sandbox_client):
    with sandbox_client(scenarios=["provider-outage"]) as (client, _):
        assert client.post(CREDENTIALS, json=SEED_001, headers={"account_token": "t"}).status_code == 401
        assert client.post(CREDENTIALS, json={"provider": "BTG"}, headers=AUTH_HEADERS).status_code == 400


# -- the shipped scenarios ------------------------------------------------------------------------


def test_crypto_failure_alternates_its_two_codes(sandbox_client):
    with sandbox_client(scenarios=["crypto-failure"]) as (client, _):
        codes = [save_credential(client).json()["code"] for _ in range(4)]
    assert codes == ["EBAA0009", "EBAA0010", "EBAA0009", "EBAA0010"]


def test_provider_timeout_answers_504_after_its_delay(sandbox_client):
    with sandbox_client(scenarios=["provider-timeout"]) as (client, _):
        started = time.monotonic()
        response = save_credential(client)
        assert time.monotonic() - started >= 3.0
    assert (response.status_code, response.json()["code"]) == (504, "EBAA0003")


def test_dict_slow_delays_pix_key_operations_only(sandbox_client):
    with sandbox_client(scenarios=["dict-slow"], seed=7) as (client, sandbox):
        response = client.get("/baas/pix/keys", params={"account_key": SEED_ACCOUNT}, headers=ORG_A)
        assert response.status_code == 200
        assert save_credential(client).status_code == 201
        rule = client.get("/__admin/scenarios").json()["scenarios"][1]["rules"][0]
        assert (rule["name"], rule["matched"], rule["applied"]) == ("pix-key-latency", 1, 1)


def test_flaky_network_resets_a_reproducible_share_of_requests(sandbox_client):
    outcomes = []
    for _ in range(2):
        with sandbox_client(scenarios=["flaky-network"], seed=42) as (client, _):
            run = []
            for _ in range(60):
                try:
                    run.append(client.get("/baas/pix/keys", params={"account_key": SEED_ACCOUNT},
                                          headers=ORG_A).status_code)
                except httpx.TransportError:
                    run.append("reset")
            outcomes.append(run)
    assert outcomes[0] == outcomes[1]  # same seed, same requests: same faults
    assert 1 <= outcomes[0].count("reset") <= 10  # 5% of 60 = 3 expected
    assert set(outcomes[0]) == {200, "reset"}


def test_limits_reached_refuses_every_key_creation(sandbox_client):
    with sandbox_client(scenarios=["limits-reached"]) as (client, _):
        for key_type in ("random_key", "random_key"):
            response = client.post("/baas/pix/keys", headers=ORG_A,
                                   json={"account_key": NATURAL_ACCOUNT, "pix_key_type": key_type})
            assert (response.status_code, response.json()["code"]) == (400, "PIX000014")
        assert client.get("/baas/pix/keys", params={"account_key": NATURAL_ACCOUNT}, headers=ORG_A).status_code == 200


# -- effects --------------------------------------------------------------------------------------

INLINE = """\
    rules:
      - match: {operation: post-credentials}
        respond:
          status: 500
          body: {code: EBAA0011, message: "Credential Repository Save config error. Check logs for more details",
                 details: "injected by QA"}
    """


def test_an_inline_body_is_answered(sandbox_client, tmp_path):
    with sandbox_client(fixtures_dir=fixtures_with(tmp_path, inline=INLINE), scenarios=["inline"]) as (client, _):
        response = save_credential(client)
    assert response.status_code == 500
    assert response.json()["details"] == "injected by QA"


@pytest.mark.parametrize("latency,at_least", [("fixed_ms: 400", 0.4), ("uniform_ms: [300, 350]", 0.3),
                                              ("lognormal: {median_ms: 300, sigma: 0.0}", 0.3)])
def test_latency_delays_the_answer(sandbox_client, tmp_path, latency, at_least):
    slow = f"""\
        rules:
          - match: {{operation: list-pix-keys}}
            latency: {{{latency}}}
        """
    with sandbox_client(fixtures_dir=fixtures_with(tmp_path, slow=slow), scenarios=["slow"]) as (client, _):
        started = time.monotonic()
        response = client.get("/baas/pix/keys", params={"account_key": SEED_ACCOUNT}, headers=ORG_A)
        assert time.monotonic() - started >= at_least
    assert response.status_code == 200  # then the handler answers


def raw_request(base_url: str, path: str = "/baas/pix/keys?account_key=" + SEED_ACCOUNT) -> socket.socket:
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer org-a-token\r\n\r\n".encode())
    return sock


def read_all(sock: socket.socket) -> tuple[bytes, list[float]]:
    """Everything the server sends until it closes, and when each piece arrived."""
    data, arrivals = b"", []
    while True:
        piece = sock.recv(65536)
        if not piece:
            return data, arrivals
        data += piece
        arrivals.append(time.monotonic())


def fault_server(tmp_path: Path, fault: str, respond: str = ""):
    text = f"""\
        rules:
          - match: {{operation: list-pix-keys}}
            fault: {fault}
        {respond}"""
    return live_server(fixtures_dir=fixtures_with(tmp_path, fault=text), scenarios=["fault"])


def test_reset_is_seen_as_a_connection_reset(tmp_path):
    with fault_server(tmp_path, "reset") as (base_url, _):
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{base_url}/baas/pix/keys", params={"account_key": SEED_ACCOUNT}, headers=ORG_A)
        sock = raw_request(base_url)
        with pytest.raises(ConnectionResetError):
            read_all(sock)


def test_close_ends_the_connection_without_an_answer(tmp_path):
    with fault_server(tmp_path, "close") as (base_url, _):
        with pytest.raises(httpx.RemoteProtocolError, match="without sending"):
            httpx.get(f"{base_url}/baas/pix/keys", params={"account_key": SEED_ACCOUNT}, headers=ORG_A)
        data, _ = read_all(raw_request(base_url))
        assert data == b""


def test_truncate_sends_part_of_the_announced_body(tmp_path):
    with fault_server(tmp_path, "{truncate: {fraction: 0.5}}") as (base_url, _):
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(f"{base_url}/baas/pix/keys", params={"account_key": SEED_ACCOUNT}, headers=ORG_A)
        data, _ = read_all(raw_request(base_url))
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    lengths = [line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")]
    announced = int(lengths[0])
    assert 0 < len(body) < announced
    assert b"tracking_id:" in head


def test_drip_sends_the_whole_body_slowly(tmp_path):
    with fault_server(tmp_path, "{drip: {duration_ms: 600, chunks: 6}}") as (base_url, _):
        sock = raw_request(base_url)
        started = time.monotonic()
        data, arrivals = read_all(sock)
        response = httpx.get(f"{base_url}/baas/pix/keys", params={"account_key": SEED_ACCOUNT}, headers=ORG_A)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert body.startswith(b'{"account_key"')
    assert arrivals[-1] - started >= 0.5  # the last piece came late
    assert len(arrivals) >= 3  # in several pieces
    assert response.status_code == 200 and response.json()["account_key"] == SEED_ACCOUNT


def test_a_fault_can_damage_an_injected_answer(tmp_path):
    respond = "    respond: {status: 404, example: PIX000026}\n"
    with fault_server(tmp_path, "{truncate: {fraction: 0.3}}", respond=respond) as (base_url, _):
        data, _ = read_all(raw_request(base_url))
    assert data.startswith(b"HTTP/1.1 404 Not Found")


# -- budgets and conditions -----------------------------------------------------------------------


def outage_rule(budget: str = "", match: str = "operation: post-credentials") -> str:
    return f"""\
        rules:
          - name: outage
            match: {{{match}}}
            {budget}
            respond: {{status: 502, example: EBAA0002}}
        """


@pytest.mark.parametrize("budget,expected", [
    ("", [502, 502, 502, 502, 502, 502]),
    ("budget: {always: true}", [502] * 6),
    ("budget: {first: 2}", [502, 502, 201, 201, 201, 201]),
    ("budget: {every: 3}", [201, 201, 502, 201, 201, 502]),
    ("budget: {probability: 0}", [201] * 6),
    ("budget: {probability: 1}", [502] * 6),
])
def test_budgets(sandbox_client, tmp_path, budget, expected):
    directory = fixtures_with(tmp_path, budget=outage_rule(budget))
    with sandbox_client(fixtures_dir=directory, scenarios=["budget"]) as (client, _):
        statuses = [save_credential(client).status_code for _ in expected]
        counts = client.get("/__admin/scenarios").json()["scenarios"][0]["rules"][0]
    assert statuses == expected
    assert (counts["matched"], counts["applied"]) == (len(expected), expected.count(502))


def test_a_probability_budget_is_reproducible_with_a_seed(sandbox_client, tmp_path):
    directory = fixtures_with(tmp_path, coin=outage_rule("budget: {probability: 0.5}"))
    runs = []
    for seed in (1, 1, 2):
        with sandbox_client(fixtures_dir=directory, scenarios=["coin"], seed=seed) as (client, _):
            runs.append([save_credential(client).status_code for _ in range(30)])
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    assert 5 <= runs[0].count(502) <= 25


@pytest.mark.parametrize("match,hit,miss", [
    ("operation: post-credentials, body: {provider: BTG}", SEED_001, SEED_001 | {"provider": "CELCOIN"}),
    ("operation: post-credentials, body: {provider: {one_of: [BTG, JDPI]}}", SEED_001,
     SEED_001 | {"provider": "CELCOIN"}),
    ("operation: post-credentials, body: {provider_data.client_id: {absent: true}}",
     {"key": "k", "provider": "CELCOIN", "type": "PIX"}, SEED_001 | {"provider": "CELCOIN"}),
    ("operation: post-credentials, body: {provider_data.client_id: {present: true}}", SEED_001,
     {"key": "k", "provider": "CELCOIN", "type": "PIX"}),
    ("operation: post-credentials, body: {key: {regex: '^live_'}}", SEED_001 | {"key": "live_123"}, SEED_001),
    ("method: POST, path: /banking-auth/v1/credentials", SEED_001, None),
])
def test_conditions_on_the_body(sandbox_client, tmp_path, match, hit, miss):
    directory = fixtures_with(tmp_path, cond=outage_rule(match=match))
    with sandbox_client(fixtures_dir=directory, scenarios=["cond"]) as (client, _):
        assert save_credential(client, hit).status_code == 502
        if miss is not None:
            assert save_credential(client, miss).status_code == 201


def test_conditions_on_headers_query_and_path(sandbox_client, tmp_path):
    text = """\
        rules:
          - match: {operation: post-credentials, headers: {X-Tenant-Env: {regex: '^stag'}}}
            respond: {status: 502, example: EBAA0002}
          - match: {operation: list-pix-keys, query: {account_key: 1f0e8a5c-2b7d-4c3e-9a61-7b2d4e8f0a11}}
            respond: {status: 404, example: PIX000026}
          - match: {operation: resend-pix-key-twofa,
                    path_params: {pix_key_request_key: 00000000-0000-4000-8000-000000000000}}
            respond: {status: 404, example: PIX000008}
        """
    with sandbox_client(fixtures_dir=fixtures_with(tmp_path, where=text), scenarios=["where"]) as (client, _):
        assert save_credential(client, **{"X-Tenant-Env": "staging"}).status_code == 502
        assert save_credential(client, **{"X-Tenant-Env": "prod"}).status_code == 201
        listed = client.get("/baas/pix/keys", params={"account_key": NATURAL_ACCOUNT}, headers=ORG_A)
        assert listed.json()["code"] == "PIX000026"
        other = client.get("/baas/pix/keys", params={"account_key": SEED_ACCOUNT}, headers=ORG_A)
        assert other.status_code == 200
        resend = client.patch("/baas/pix/keys/00000000-0000-4000-8000-000000000000/resend_twofa", json={},
                              headers=ORG_A)
        # the spec example's text, naming the request's key (not the example's f6209b7e-…)
        assert resend.json()["description"] == "Pix Key Request not found for key: 00000000-0000-4000-8000-000000000000."


def test_a_rule_whose_budget_does_not_fire_lets_the_next_rule_try(sandbox_client, tmp_path):
    text = """\
        rules:
          - match: {operation: post-credentials}
            budget: {every: 2}
            respond: {status: 502, example: EBAA0002}
          - match: {operation: post-credentials}
            respond: {status: 504, example: EBAA0003}
        """
    with sandbox_client(fixtures_dir=fixtures_with(tmp_path, chain=text), scenarios=["chain"]) as (client, _):
        assert [save_credential(client).status_code for _ in range(4)] == [504, 502, 504, 502]


# -- hot reload -----------------------------------------------------------------------------------


def test_editing_a_file_takes_effect_without_a_restart(sandbox_client, tmp_path):
    """The README's "within 2 seconds" is the watcher's settings (a 1 s debounce, 50 ms steps); a
    loaded machine may take longer, so the wait here is generous and no time is asserted."""
    directory = fixtures_with(tmp_path, live=outage_rule())
    with sandbox_client(fixtures_dir=directory, scenarios=["live"]) as (client, _):
        assert save_credential(client).status_code == 502
        time.sleep(0.1)
        edited = outage_rule().replace("502, example: EBAA0002", "504, example: EBAA0003")
        write_scenario(directory, "live", textwrap.dedent(edited))
        wait_until(lambda: save_credential(client).status_code == 504, timeout=15.0)


def test_adding_and_removing_files_at_run_time(sandbox_client, tmp_path):
    directory = fixtures_with(tmp_path)
    with sandbox_client(fixtures_dir=directory) as (client, _):
        names = lambda: {s["name"] for s in client.get("/__admin/scenarios").json()["scenarios"]}  # noqa: E731
        assert names() == set()
        path = write_scenario(directory, "new-one", textwrap.dedent(outage_rule()))
        wait_until(lambda: names() == {"new-one"}, timeout=15.0)
        client.put("/__admin/scenarios/active", json={"names": ["new-one"]})
        assert save_credential(client).status_code == 502
        path.unlink()
        wait_until(lambda: names() == set(), timeout=15.0)
        assert client.get("/__admin/scenarios").json()["active"] == []
        assert save_credential(client).status_code == 201


def test_a_broken_edit_keeps_the_last_good_version(sandbox_client, tmp_path, caplog):
    directory = fixtures_with(tmp_path, live=outage_rule())
    with sandbox_client(fixtures_dir=directory, scenarios=["live"]) as (client, _):
        time.sleep(0.1)
        write_scenario(directory, "live", outage_rule().replace("502", "418"))
        scenario = lambda: client.get("/__admin/scenarios").json()["scenarios"][0]  # noqa: E731
        wait_until(lambda: scenario()["problem"], timeout=15.0)
        assert "status 418 is not documented for post-credentials" in scenario()["problem"]
        assert "live.yaml:5" in scenario()["problem"]
        assert save_credential(client).status_code == 502  # the last good version still applies
    assert "scenario live refused (keeping the last good version)" in caplog.text


def test_a_file_that_would_explode_is_refused_at_hot_reload_and_the_last_good_version_kept(sandbox_client,
                                                                                         tmp_path):
    """Red team, reproduction 10: a billion laughs dropped into the folder of a running sandbox grew it
    by gigabytes at 100 % CPU until it stopped answering."""
    directory = fixtures_with(tmp_path, live=outage_rule())
    with sandbox_client(fixtures_dir=directory, scenarios=["live"]) as (client, _):
        time.sleep(0.1)  # a later modification time than the first version's
        (directory / "scenarios" / "live.yaml").write_text(billion_laughs("description: laughs"))
        (directory / "scenarios" / "deep.yaml").write_text(nested(5000))
        described = lambda: client.get("/__admin/scenarios").json()  # noqa: E731
        wait_until(lambda: described()["scenarios"][0]["problem"] and described()["refused"], timeout=3.0)
        answer = save_credential(client)
        scenarios = described()

    [live] = scenarios["scenarios"]
    assert re.search(r"live\.yaml:6: aliases expand to more than 10,000 values", live["problem"]), live
    assert live["active"] and answer.status_code == 502  # the last good version still applies
    [deep] = scenarios["refused"]
    assert deep["name"] == "deep"
    assert re.search(r"deep\.yaml:1: values are nested more than 64 levels deep", deep["problem"]), deep


# -- refusing bad files ---------------------------------------------------------------------------


@pytest.mark.parametrize("text,expected", [
    (outage_rule(match="operation: post-credential"), "bad.yaml:3: rules[0].match.operation: unknown operationId"),
    (outage_rule(match="body: {provider: BTG}"),  # every operation: 502 is not documented for Pix keys
     "bad.yaml:5: rules[0].respond.status: status 502 is not documented for"),
    (outage_rule(match="method: GET, path: /banking-auth/v1/credentials"),
     "bad.yaml:3: rules[0].match.path: no operation at GET /banking-auth/v1/credentials"),
    (outage_rule().replace("502", "418"), "bad.yaml:5: rules[0].respond.status: status 418 is not documented"),
    (outage_rule().replace("EBAA0002", "EBAA9999"),
     "bad.yaml:5: rules[0].respond.example: no example named 'EBAA9999' for post-credentials status 502"),
    ("rules:\n  - match: {operation: post-credentials}\n    respond: {status: 502, body: {code: 1}}\n",
     "bad.yaml:3: rules[0].respond.body: does not fit post-credentials 502"),
    ("rules:\n  - match: {operation: create-pix-key}\n    respond: {status: 400, example: EBAA0002}\n",
     "no example named 'EBAA0002' for create-pix-key status 400"),
    ("rules:\n  - match: {operation: post-credentials}\n", "bad.yaml:2: rules[0]:"),  # no effect
    ("rules:\n  - match: {operation: post-credentials}\n    respond: {status: 502}\n    colour: red\n",
     "bad.yaml:2: rules[0]: Additional properties are not allowed ('colour' was unexpected)"),
    ("rules:\n  - match: {body: {key: {regex: '('}}}\n    fault: reset\n",
     "bad.yaml:2: rules[0].match.body.key.regex: invalid regular expression"),
    ("rules:\n  - budget: {probability: 2}\n    fault: reset\n", "bad.yaml:2: rules[0].budget.probability"),
    ("rules:\n  - fault: explode\n", "bad.yaml:2: rules[0].fault"),
    ("rules: [\n", "bad.yaml:2: is not valid YAML"),
])
def test_a_bad_file_is_refused_with_file_line_and_reason(tmp_path, text, expected):
    with pytest.raises(ScenarioError) as refused:
        create_app(Settings(fixtures_dir=fixtures_with(tmp_path, bad=text), hot_reload=False))
    assert expected in str(refused.value)


def test_a_bad_file_name_is_refused(tmp_path):
    with pytest.raises(ScenarioError, match="the file name must match"):
        create_app(Settings(fixtures_dir=fixtures_with(tmp_path, **{"Bad Name": outage_rule()}), hot_reload=False))


def test_an_unknown_scenario_at_start_is_refused():
    with pytest.raises(UnknownScenario, match="no-such-thing"):
        create_app(Settings(scenarios=["no-such-thing"], hot_reload=False))


def test_every_shipped_scenario_loads_and_is_described():
    app = create_app(Settings(hot_reload=False))
    described = run(app.sandbox.scenarios.describe())
    assert {s["name"] for s in described["scenarios"]} == {
        "provider-outage", "provider-timeout", "crypto-failure", "dict-slow", "flaky-network", "limits-reached"}
    assert all(s["description"] and s["problem"] is None for s in described["scenarios"])


# -- the request journal --------------------------------------------------------------------------


def test_the_journal_records_what_answered(sandbox_client):
    with sandbox_client() as (client, _):
        client.delete("/__admin/requests")
        save_credential(client, SEED_001 | {"key": "S3cr3t-key-1"}, tracking_id="trk-1")
        save_credential(client, **{"X-Sandbox-Scenario": "provider-outage"})
        client.get("/baas/pix/keys", params={"account_key": SEED_ACCOUNT})  # 401
        entries = client.get("/__admin/requests").json()["requests"]
    assert [e["status"] for e in entries] == [401, 502, 201]  # newest first
    unauthorized, outage, saved = entries
    assert saved["operation_id"] == "post-credentials" and saved["tracking_id"] == "trk-1"
    assert saved["request_body"]["key"] == "****" and saved["scenario"] is None
    assert saved["response_body"]["message"] == "Credential saved"
    assert outage["scenario"] == {"scenario": "provider-outage", "rule": "credentials-bad-gateway"}
    assert unauthorized["query"] == f"account_key={SEED_ACCOUNT}" and unauthorized["latency_ms"] >= 0
    assert "S3cr3t-key-1" not in str(entries)


def test_the_journal_never_keeps_a_secret_it_cannot_mask(sandbox_client):
    with sandbox_client() as (client, _):
        client.post(CREDENTIALS, content=b'{"key": "S3cr3t-key-2", ',
                    headers=AUTH_HEADERS | {"content-type": "application/json"})
        entry = client.get("/__admin/requests").json()["requests"][0]
    assert entry["status"] == 400 and entry["request_body"] is None
    assert "S3cr3t-key-2" not in str(entry)


def test_the_journal_filters_clears_and_stays_bounded(sandbox_client):
    with sandbox_client(journal_size=3) as (client, _):
        for _ in range(4):
            save_credential(client)
        client.get("/baas/pix/keys", params={"account_key": SEED_ACCOUNT}, headers=ORG_A)
        assert len(client.get("/__admin/requests").json()["requests"]) == 3
        only = client.get("/__admin/requests", params={"operation_id": "list-pix-keys"}).json()["requests"]
        assert [e["operation_id"] for e in only] == ["list-pix-keys"]
        assert len(client.get("/__admin/requests", params={"status": 201}).json()["requests"]) == 2
        assert len(client.get("/__admin/requests", params={"limit": 1}).json()["requests"]) == 1
        assert client.delete("/__admin/requests").status_code == 204
        assert client.get("/__admin/requests").json() == {"requests": []}


def test_the_journal_records_a_fault_without_status(tmp_path):
    with fault_server(tmp_path, "reset") as (base_url, _):
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{base_url}/baas/pix/keys", params={"account_key": SEED_ACCOUNT}, headers=ORG_A)
        entry = httpx.get(f"{base_url}/__admin/requests").json()["requests"][0]
    assert entry["status"] is None and entry["scenario"]["scenario"] == "fault"


@pytest.mark.parametrize("text,expected", [
    ("rules:\n  - match: {method: POST}\n    fault: reset\n", "rules[0].match: 'path' is a dependency of 'method'"),
    ("rules:\n  - match: {path: /banking-auth/v1/credentials}\n    fault: reset\n",
     "rules[0].match: 'method' is a dependency of 'path'"),
    ("rules:\n  - match: {operation: list-pix-keys, headers: {1: x}}\n    fault: reset\n",
     "rules[0].match.headers"),
    ("rules:\n  - match: {operation: list-pix-keys}\n    latency: {fixed_ms: .inf}\n",
     "rules[0].latency.fixed_ms: inf is not a finite number"),
    ("rules:\n  - match: {operation: list-pix-keys}\n    fault: {truncate: {fraction: .nan}}\n",
     "rules[0].fault.truncate.fraction: nan is not a finite number"),
    ("rules:\n  - match: {operation: list-pix-keys}\n    latency: {lognormal: {median_ms: 5, sigma: 1000}}\n",
     "rules[0].latency.lognormal.sigma"),
])
def test_values_that_would_break_a_request_are_refused_at_load(tmp_path, text, expected):
    """Found in review: these loaded, then crashed, hung or ignored a rule at request time."""
    with pytest.raises(ScenarioError) as refused:
        create_app(Settings(fixtures_dir=fixtures_with(tmp_path, bad=text), hot_reload=False))
    assert expected in str(refused.value)


def test_a_file_that_is_not_utf8_is_refused_not_a_crash(tmp_path):
    directory = fixtures_with(tmp_path)
    (directory / "scenarios" / "latin.yaml").write_bytes("description: ação\nrules: []\n".encode("latin-1"))
    with pytest.raises(ScenarioError, match="is not UTF-8 text"):
        create_app(Settings(fixtures_dir=directory, hot_reload=False))


def test_hot_reload_survives_a_file_it_cannot_read(sandbox_client, tmp_path):
    directory = fixtures_with(tmp_path)
    with sandbox_client(fixtures_dir=directory) as (client, _):
        (directory / "scenarios" / "latin.yaml").write_bytes(b"rules: [\xff\n")
        time.sleep(0.1)
        write_scenario(directory, "later", textwrap.dedent(outage_rule()))
        names = lambda: {s["name"] for s in client.get("/__admin/scenarios").json()["scenarios"]}  # noqa: E731
        wait_until(lambda: "later" in names(), timeout=3.0)
        refused = client.get("/__admin/scenarios").json()["refused"]
        assert [r["name"] for r in refused] == ["latin"]


def test_a_plain_number_on_a_header_condition_matches_its_text(sandbox_client, tmp_path):
    text = """\
        rules:
          - match: {operation: post-credentials, headers: {X-Attempt: 2}}
            respond: {status: 502, example: EBAA0002}
        """
    with sandbox_client(fixtures_dir=fixtures_with(tmp_path, num=text), scenarios=["num"]) as (client, _):
        assert save_credential(client, **{"X-Attempt": "2"}).status_code == 502
        assert save_credential(client, **{"X-Attempt": "3"}).status_code == 201
