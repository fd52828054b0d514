"""The pytest plugin (`baas_sandbox` fixture): loaded from the package's entry point, through HTTP.

This suite uses the fixture itself (the plugin is loaded here too), and runs the partner example
and a foreign project's tests in subprocesses: what a consumer with only the package installed
gets, with a sandbox of the session's own or against one `baas-sandbox serve` (a subprocess here)
that several pytest-xdist workers share."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from stdnum.br import cnpj, cpf

from baas_sandbox.defaults import PROJECT_ROOT
from baas_sandbox.pytest_plugin import (NAMESPACE_HEADER, NAMESPACE_NAME, SandboxError, new_namespace,
                                        resolve_url)

SEED_ACCOUNT = "6d30a0b1-cb90-4ceb-b1ea-5bd600cdf3c8"
SANDBOX_VARIABLES = ("BAAS_SANDBOX_URL", "BAAS_SANDBOX_ADMIN_TOKEN")
DEAD_URL = "http://127.0.0.1:9"  # nothing listens on the discard port here: refused at once
#: The test extra's other pytest plugins (seconds of imports in every worker), off in the runs that
#: only need this one.
OTHERS_OFF = ("-p", "no:hypothesispytest", "-p", "no:faker", "-p", "no:schemathesis", "-p", "no:anyio")


def run_pytest(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """pytest in a subprocess; the environment's BAAS_SANDBOX_* variables only as given in ``env``."""
    environment = {k: v for k, v in os.environ.items() if k not in SANDBOX_VARIABLES} | (env or {})
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          capture_output=True, text=True, timeout=180, cwd=cwd, env=environment)


def run_alone(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``run_pytest`` with only this plugin (and xdist) of the environment's."""
    return run_pytest(*OTHERS_OFF, *args, cwd=cwd, env=env)


@contextlib.contextmanager
def served(tmp_path: Path, *args: str) -> Iterator[tuple[str, Path]]:
    """``baas-sandbox serve --port 0`` in a subprocess, its output (access log included) in a file:
    (the URL its banner names, the log)."""
    log = tmp_path / f"serve-{time.monotonic_ns()}.log"
    environment = {k: v for k, v in os.environ.items() if k not in SANDBOX_VARIABLES}
    with log.open("w") as output:
        process = subprocess.Popen([sys.executable, "-m", "baas_sandbox", "serve", "--port", "0", "--no-reload",
                                    "--log-level", "info", *args],
                                   stdout=output, stderr=subprocess.STDOUT, cwd=tmp_path, env=environment)
    try:
        deadline = time.monotonic() + 30
        while not (match := re.search(r"baas-sandbox: serving on (http://\S+)", log.read_text())):
            assert process.poll() is None, f"serve ended without a banner:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no banner within 30 s:\n{log.read_text()}"
            time.sleep(0.05)
        yield match.group(1), log
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.fixture(scope="module")
def shared_sandbox(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """One served sandbox for this module's runs against a URL, as a team's or a CI job's would be."""
    with served(tmp_path_factory.mktemp("shared")) as running_sandbox:
        yield running_sandbox


def namespaces_on(url: str) -> list[str]:
    return [n["name"] for n in httpx.get(f"{url}/__admin/namespaces").json()["namespaces"]]


def test_the_partner_example_passes():
    """examples/test_partner_example.py, as a partner runs it: the fixture comes from the entry point."""
    result = run_alone("-q", "examples/test_partner_example.py", cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "7 passed" in result.stdout


def test_the_partner_example_runs_side_by_side_on_one_served_sandbox(shared_sandbox, tmp_path):
    """`pytest -n 2` with BAAS_SANDBOX_URL: both workers' tests on the one sandbox, each in a
    namespace of its own (the same e-mail key registered in several), each dropped afterwards; the
    test that asks for a sandbox of its own is skipped, saying why."""
    url, log = shared_sandbox
    report = tmp_path / "junit.xml"
    result = run_alone("-n", "2", "-rs", "examples/test_partner_example.py", f"--junitxml={report}",
                        cwd=PROJECT_ROOT, env={"BAAS_SANDBOX_URL": url})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 passed, 1 skipped" in result.stdout
    assert f"baas-sandbox: {url} (from $BAAS_SANDBOX_URL), a namespace per test" in result.stdout
    assert "needs a sandbox of its own with these settings; this run uses the one at " + url in result.stdout

    ran = {}
    for case in ET.parse(report).iter("testcase"):
        if case.find("skipped") is None:
            properties = {p.get("name"): p.get("value") for p in case.iter("property")}
            assert properties["baas_sandbox_url"] == url
            ran[case.get("name")] = properties["baas_sandbox_namespace"]
    assert len(ran) == 6 and len(set(ran.values())) == 6
    assert {re.match(r"pt-[0-9a-f]{10}-(gw\d)-", name).group(1) for name in ran.values()} == {"gw0", "gw1"}
    # the sandbox saw them: every namespace dropped by a DELETE of its own (uvicorn's access log), none left
    dropped = re.findall(r'"DELETE /__admin/namespaces/(\S+) HTTP/1.1" 204', log.read_text())
    assert sorted(dropped) == sorted(ran.values())
    assert not set(ran.values()) & set(namespaces_on(url))


ISOLATION = """
import json, time
from pathlib import Path

import pytest

ACCOUNT = "0b0e8a5c-2b7d-4c3e-9a61-7b2d4e8f0a99"
HERE = Path(__file__).parent


def wait_for(path):
    deadline = time.monotonic() + 60   # the other worker's progress (no sandbox clock to move here)
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never came"
        time.sleep(0.01)
    return json.loads(path.read_text())


@pytest.mark.parametrize("me,other", [("a", "b"), ("b", "a")])
def test_side_by_side(baas_sandbox, me, other):
    baas_sandbox.create_account(account_key=ACCOUNT)                   # a 409 if the other's were visible
    request = baas_sandbox.call("POST", "/baas/pix/keys", body={"account_key": ACCOUNT, "pix_key_type": "random_key"})
    (HERE / f"ready-{me}").write_text(json.dumps(baas_sandbox.namespace))
    theirs = wait_for(HERE / f"ready-{other}")                          # both exist now, on one sandbox
    listed = [n["name"] for n in baas_sandbox.call("GET", "/__admin/namespaces")["namespaces"]]
    assert {baas_sandbox.namespace, theirs} <= set(listed) and theirs != baas_sandbox.namespace
    keys = baas_sandbox.call("GET", f"/baas/pix/keys?account_key={ACCOUNT}")["pix_keys"]
    assert [k["pix_key_request_key"] for k in keys] == [request["pix_key_request_key"]]
    (HERE / f"done-{me}").write_text("{}")
    wait_for(HERE / f"done-{other}")                                    # neither drops its namespace early
"""


def test_two_tests_at_once_on_one_sandbox_never_see_each_others_keys(shared_sandbox, tmp_path):
    url, _log = shared_sandbox
    (tmp_path / "test_isolation.py").write_text(ISOLATION)
    result = run_alone("-q", "-n", "2", cwd=tmp_path, env={"BAAS_SANDBOX_URL": url})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


WHICH_URL = """
import os

def test_which(baas_sandbox):
    assert baas_sandbox.url == os.environ["EXPECTED_URL"], baas_sandbox.url
"""


def test_the_url_comes_from_the_option_then_the_environment_then_the_ini(shared_sandbox, tmp_path):
    url, _log = shared_sandbox
    (tmp_path / "test_which.py").write_text(WHICH_URL)

    def run(ini: str, *args: str, **env: str) -> subprocess.CompletedProcess:
        (tmp_path / "pytest.ini").write_text(f"[pytest]\nbaas_sandbox_url = {ini}\n")
        return run_alone("-q", *args, cwd=tmp_path, env=env)

    assert run(url, EXPECTED_URL=url).returncode == 0                                   # the ini alone
    assert run(DEAD_URL, EXPECTED_URL=url, BAAS_SANDBOX_URL=url).returncode == 0         # the variable over it
    assert run(DEAD_URL, f"--baas-sandbox-url={url}", EXPECTED_URL=url,                 # the option over both
               BAAS_SANDBOX_URL=DEAD_URL).returncode == 0
    own = run(DEAD_URL, "--baas-sandbox-url=", EXPECTED_URL="a sandbox of its own", BAAS_SANDBOX_URL=DEAD_URL)
    assert "AssertionError: http://127.0.0.1:" in own.stdout and DEAD_URL not in own.stdout  # empty: start one
    dead = run("", BAAS_SANDBOX_URL=DEAD_URL, EXPECTED_URL=DEAD_URL)
    assert dead.returncode == 1
    assert f"the sandbox at {DEAD_URL} (from $BAAS_SANDBOX_URL) does not answer" in dead.stdout


@pytest.mark.parametrize("option,environment,ini,expected", [
    (None, None, "", (None, None)),
    (None, None, "http://ini:1/", ("http://ini:1", "ini baas_sandbox_url")),
    (None, "http://env:2", "http://ini:1", ("http://env:2", "$BAAS_SANDBOX_URL")),
    (None, "  ", "http://ini:1", ("http://ini:1", "ini baas_sandbox_url")),  # empty variable: unset
    ("http://opt:3", "http://env:2", "http://ini:1", ("http://opt:3", "--baas-sandbox-url")),
    ("", "http://env:2", "http://ini:1", (None, "--baas-sandbox-url")),  # empty option: start one
])
def test_resolve_url_precedence(option, environment, ini, expected):
    assert resolve_url(option, environment, ini) == expected


ADMIN = """
def test_admin(baas_sandbox):
    assert baas_sandbox.create_account()["tenant"] == "org-a"
    assert baas_sandbox.advance(1)["jobs_run"] == 0
"""


def test_a_shared_sandbox_with_an_admin_token(tmp_path):
    (tmp_path / "test_admin.py").write_text(ADMIN)
    with served(tmp_path, "--admin-token", "shared-admin-token") as (url, _log):
        result = run_alone("-q", cwd=tmp_path, env={"BAAS_SANDBOX_URL": url,
                                                     "BAAS_SANDBOX_ADMIN_TOKEN": "shared-admin-token"})
        assert result.returncode == 0, result.stdout + result.stderr
        refused = run_alone("-q", cwd=tmp_path, env={"BAAS_SANDBOX_URL": url})
    assert refused.returncode == 1
    assert "answered GET /__admin/namespaces 401: its admin API needs a token: set $BAAS_SANDBOX_ADMIN_TOKEN" \
        in refused.stdout


def test_a_full_shared_sandbox_is_a_clear_error(tmp_path):
    (tmp_path / "test_admin.py").write_text(ADMIN)
    with served(tmp_path, "--max-namespaces", "1") as (url, _log):  # the default namespace fills it
        result = run_alone("-q", cwd=tmp_path, env={"BAAS_SANDBOX_URL": url})
    assert result.returncode == 1
    assert f"the sandbox at {url} holds as many namespaces as it may, and this test needs one" in result.stdout
    assert "--max-namespaces" in result.stdout


def test_namespace_names_are_allowed_unique_and_name_the_worker_and_the_test():
    long = "test_" + "x" * 100 + "[a b/c-ü]"
    names = {new_namespace(long, "gw3") for _ in range(1000)}
    assert len(names) == 1000
    for name in names:
        assert NAMESPACE_NAME.fullmatch(name) and len(name) == 64
        assert re.match(r"pt-[0-9a-f]{10}-gw3-test_xxx", name)
    assert NAMESPACE_NAME.fullmatch(new_namespace("test_x[a b/c-ü]", "gw0"))
    assert new_namespace("test_x[a b/c-ü]", "gw0").endswith("-gw0-test_x_a_b_c")
    assert "-main-" in new_namespace("test_y", None) or os.environ.get("PYTEST_XDIST_WORKER")


def test_the_fixture_works_in_a_namespace_of_its_own(baas_sandbox):
    """Its helpers and a client sending headers() see the test's account; the default namespace does not."""
    assert NAMESPACE_NAME.fullmatch(baas_sandbox.namespace) and baas_sandbox.namespace.startswith("pt-")
    assert baas_sandbox.headers()[NAMESPACE_HEADER] == baas_sandbox.namespace
    account = baas_sandbox.create_account()
    query = {"account_key": account["account_key"]}
    with httpx.Client(base_url=baas_sandbox.url) as api:
        assert api.get("/baas/pix/keys", params=query, headers=baas_sandbox.headers()).status_code == 200
        without = api.get("/baas/pix/keys", params=query, headers={"Authorization": "Bearer org-a-token"})
    assert without.status_code == 404  # not in the default namespace
    assert baas_sandbox.namespace in [n["name"] for n in baas_sandbox.call("GET", "/__admin/namespaces")["namespaces"]]


def _moment(clock: dict) -> dt.datetime:
    return dt.datetime.fromisoformat(clock["now"])


@pytest.mark.baas_sandbox(activation_delay=30)
def test_freeze_and_advance_move_the_namespaces_clock_instead_of_waiting(baas_sandbox):
    frozen = baas_sandbox.freeze()
    assert frozen["frozen"] is True
    request = baas_sandbox.call("POST", "/baas/pix/keys", body={"account_key": SEED_ACCOUNT, "pix_key_type": "random_key"})
    assert baas_sandbox.clock()["now"] == frozen["now"]  # nothing moves by itself
    started = time.monotonic()
    key = baas_sandbox.wait_for_key_status(SEED_ACCOUNT, request["pix_key_request_key"], timeout=120)
    assert key["pix_key_status"] == "active"
    assert time.monotonic() - started < 10  # DICT's 30 s went by on the clock, not on the wall
    moved = _moment(baas_sandbox.clock()) - _moment(frozen)
    assert dt.timedelta(seconds=30) <= moved <= dt.timedelta(seconds=60)  # growing steps: at most twice
    advanced = baas_sandbox.advance(3600)
    assert advanced["frozen"] is True and advanced["jobs_run"] == 0
    assert _moment(advanced) - _moment(frozen) == moved + dt.timedelta(hours=1)
    assert baas_sandbox.unfreeze()["frozen"] is False
    assert baas_sandbox.real_time()["offset_seconds"] == 0


def test_advance_runs_what_falls_due_and_expires_codes(baas_sandbox):
    request = baas_sandbox.call("POST", "/baas/pix/keys", body={
        "account_key": SEED_ACCOUNT, "pix_key_type": "email", "pix_key": "clock@example.com"})
    key = request["pix_key_request_key"]
    code = baas_sandbox.last_verification_code(key)
    baas_sandbox.advance(601)  # the code's 600 s
    with pytest.raises(SandboxError, match="answered 410"):
        baas_sandbox.call("PATCH", f"/baas/pix/keys/{key}/twofa_validation", body={"verification_code": code})


def test_advance_decides_a_pending_key_at_once(baas_sandbox):
    baas_sandbox.freeze()
    request = baas_sandbox.call("POST", "/baas/pix/keys", body={"account_key": SEED_ACCOUNT, "pix_key_type": "random_key"})
    assert baas_sandbox.advance(1)["jobs_run"] == 1
    keys = baas_sandbox.call("GET", f"/baas/pix/keys?account_key={SEED_ACCOUNT}")["pix_keys"]
    assert [k["pix_key_status"] for k in keys if k["pix_key_request_key"] == request["pix_key_request_key"]] == ["active"]


def test_a_foreign_project_gets_a_fresh_sandbox_per_test_with_its_ini_settings(tmp_path):
    """No conftest: only the installed plugin. The ini option slows DICT down; the second test
    proves the fresh namespace per test (the same account_key is free again)."""
    (tmp_path / "pytest.ini").write_text("[pytest]\nbaas_sandbox_activation_delay = 30\n")
    (tmp_path / "test_consumer.py").write_text(textwrap.dedent('''
        import pytest

        ACCOUNT = "0b0e8a5c-2b7d-4c3e-9a61-7b2d4e8f0a99"

        @pytest.mark.parametrize("attempt", [1, 2])
        def test_account_and_key(baas_sandbox, attempt):
            account = baas_sandbox.create_account(account_key=ACCOUNT)   # a 409 if not a fresh namespace
            baas_sandbox.freeze()
            created = baas_sandbox.call("POST", "/baas/pix/keys",
                                        body={"account_key": ACCOUNT, "pix_key_type": "random_key"})
            with pytest.raises(AssertionError, match="not 'active' within 29 s of the frozen clock"):
                baas_sandbox.wait_for_key_status(ACCOUNT, created["pix_key_request_key"], timeout=29)
            baas_sandbox.wait_for_key_status(ACCOUNT, created["pix_key_request_key"], timeout=2)
    '''))
    result = run_alone("-q", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_the_fixture_gives_a_running_sandbox_and_its_tenants(baas_sandbox):
    assert baas_sandbox.url.startswith("http://127.0.0.1:")
    assert baas_sandbox.tokens == {"org-a": "org-a-token", "org-b": "org-b-token"}
    assert baas_sandbox.headers() == {"Authorization": "Bearer org-a-token",
                                      "X-Sandbox-Namespace": baas_sandbox.namespace}
    with httpx.Client(base_url=baas_sandbox.url) as api:
        mine = api.get("/baas/pix/keys", params={"account_key": SEED_ACCOUNT}, headers=baas_sandbox.headers())
        theirs = api.get("/baas/pix/keys", params={"account_key": SEED_ACCOUNT},
                         headers=baas_sandbox.headers("org-b"))
    assert mine.status_code == 200
    assert theirs.status_code == 403


def test_reset_forgets_what_the_test_added_in_its_namespace(baas_sandbox):
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
    baas_sandbox.freeze()
    request = baas_sandbox.call("POST", "/baas/pix/keys",
                                body={"account_key": SEED_ACCOUNT, "pix_key_type": "random_key"})
    with pytest.raises(SandboxError, match="not 'active' within 20 s of the frozen clock, moved forward that far; "
                                           "last seen: .*'pix_key_status': "):
        baas_sandbox.wait_for_key_status(SEED_ACCOUNT, request["pix_key_request_key"], timeout=20)


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
