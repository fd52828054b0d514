"""Start-up: the console script serves; a broken spec or fixture stops it with the reason."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from baas_sandbox import app as app_module
from baas_sandbox.adapters.fixtures import FixtureError
from baas_sandbox.app import create_app
from baas_sandbox.services.sandbox import DEFAULT_FIXTURES, Settings
from baas_sandbox.spec import SPEC_DIR, SpecError
from tests.helpers import billion_laughs, nested

BAAS_SANDBOX = str(Path(sys.executable).with_name("baas-sandbox"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_console_script_serves_the_sandbox():
    port = free_port()
    server = subprocess.Popen([BAAS_SANDBOX, "serve", "--port", str(port), "--log-level", "warning"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/__admin/accounts", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read().decode()
                assert time.monotonic() < deadline, "the server did not answer within 20 s"
                time.sleep(0.1)
        assert response.status_code == 200
        assert len(response.json()["accounts"]) == 9
    finally:
        server.terminate()
        server.wait(timeout=10)


def fixture_dir(tmp_path: Path, tenants: str | None = None, accounts: str | None = None) -> Path:
    shutil.copy(DEFAULT_FIXTURES / "tenants.yaml", tmp_path / "tenants.yaml")
    shutil.copy(DEFAULT_FIXTURES / "accounts.yaml", tmp_path / "accounts.yaml")
    if tenants is not None:
        (tmp_path / "tenants.yaml").write_text(textwrap.dedent(tenants))
    if accounts is not None:
        (tmp_path / "accounts.yaml").write_text(textwrap.dedent(accounts))
    return tmp_path


ACCOUNT = """\
    accounts:
      - account_key: 0b9e5a4c-1111-4222-8333-444455556666
        tenant: org-a
        owner_name: ANA
        owner_person_type: natural
        owner_document_number: "{document}"
        status: open
    """


@pytest.mark.parametrize("accounts,expected", [
    (ACCOUNT.format(document="12345678900"),
     "accounts.yaml:6: accounts[0].owner_document_number: 12345678900 is not a valid CPF"),
    (ACCOUNT.format(document="81563500221").replace("tenant: org-a", "tenant: org-x"),
     "accounts.yaml:3: accounts[0].tenant: unknown tenant 'org-x'"),
    (ACCOUNT.format(document="81563500221").replace("        status: open\n", ""),
     "accounts.yaml:2: accounts[0]: 'status' is a required property"),
    (ACCOUNT.format(document="81563500221").replace("status: open", "status: frozen"),
     "accounts.yaml:7: accounts[0].status: 'frozen' is not one of ['open', 'closed']"),
    ("accounts:\n  - [unclosed\n", "accounts.yaml:3: is not valid YAML"),
])
def test_a_malformed_account_fixture_names_file_line_and_field(tmp_path, accounts, expected):
    with pytest.raises(FixtureError) as failure:
        create_app(Settings(fixtures_dir=fixture_dir(tmp_path, accounts=accounts)))
    assert expected in str(failure.value)


def test_a_malformed_tenant_fixture_names_file_line_and_field(tmp_path):
    tenants = """\
        tenants:
          - name: org-a
            token: org-a-token
            requester_key: not-a-uuid
        """
    with pytest.raises(FixtureError, match=r"tenants.yaml:4: tenants\[0\].requester_key"):
        create_app(Settings(fixtures_dir=fixture_dir(tmp_path, tenants=tenants)))


def test_a_duplicate_token_is_refused(tmp_path):
    tenants = """\
        tenants:
          - {name: org-a, token: same, requester_key: ef48fbe4-267b-45c1-9049-75345c075486}
          - {name: org-b, token: same, requester_key: 4c2e8f1a-6b3d-4e5f-a7c9-0d1e2f3a4b5c}
        """
    with pytest.raises(FixtureError, match=r"tenants.yaml:3: tenants\[1\].token: token is used by another tenant"):
        create_app(Settings(fixtures_dir=fixture_dir(tmp_path, tenants=tenants)))


def test_more_tenants_come_from_fixtures(tmp_path):
    tenants = """\
        tenants:
          - {name: org-a, token: org-a-token, requester_key: ef48fbe4-267b-45c1-9049-75345c075486}
          - {name: org-b, token: org-b-token, requester_key: 4c2e8f1a-6b3d-4e5f-a7c9-0d1e2f3a4b5c}
          - {name: org-c, token: org-c-token, requester_key: 5d3f9a2b-7c4e-4f6a-b8d0-1e2f3a4b5c6d}
        """
    app = create_app(Settings(fixtures_dir=fixture_dir(tmp_path, tenants=tenants), validate_responses=True))
    with app.test_client() as client:
        response = client.get("/baas/pix/keys", params={"account_key": "6d30a0b1-cb90-4ceb-b1ea-5bd600cdf3c8"},
                              headers={"Authorization": "Bearer org-c-token"})
    assert response.status_code == 403  # authenticated, but the account is org-a's
    assert response.json()["code"] == "PIX000054"


def test_the_cli_stops_on_a_bad_fixture_without_a_traceback(tmp_path):
    bad = fixture_dir(tmp_path, accounts=ACCOUNT.format(document="12345678900"))
    result = subprocess.run([BAAS_SANDBOX, "serve", "--fixtures", str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "cannot start" in result.stderr and "accounts.yaml:6" in result.stderr
    assert "Warning" not in result.stderr
    assert "Traceback" not in result.stderr


def serve_refused(fixtures: Path) -> subprocess.CompletedProcess:
    """``baas-sandbox serve --fixtures`` expected to stop at start-up; its address space is bounded
    (2 GiB), so a file that explodes makes it fail, not the machine."""
    import resource

    def bounded() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    return subprocess.run([BAAS_SANDBOX, "serve", "--fixtures", str(fixtures), "--port", str(free_port())],
                          capture_output=True, text=True, timeout=60, preexec_fn=bounded)


def padded_accounts() -> str:
    """A valid accounts file made larger than the limit (1 MiB) by comments."""
    return (DEFAULT_FIXTURES / "accounts.yaml").read_text() + "# padding\n" * 110_000


@pytest.mark.parametrize(("file", "text", "expected"), [
    pytest.param("scenarios/laughs.yaml", billion_laughs("description: a billion laughs"),
                 r"scenarios/laughs\.yaml:6: aliases expand to more than 10,000 values", id="scenario-billion-laughs"),
    pytest.param("scenarios/deep.yaml", nested(5000),
                 r"scenarios/deep\.yaml:1: values are nested more than 64 levels deep", id="scenario-5000-deep"),
    pytest.param("webhooks.yaml", billion_laughs(), r"webhooks\.yaml:5: aliases expand", id="webhooks-billion-laughs"),
    pytest.param("tenants.yaml", "tenants: &t\n  - *t\n", r"tenants\.yaml:2: the alias \*t is inside the value",
                 id="tenants-recursive-alias"),
    pytest.param("accounts.yaml", padded_accounts(), r"accounts\.yaml:\d+: the file is larger than 1,048,576 bytes",
                 id="accounts-too-large"),
])
def test_a_yaml_file_that_would_explode_stops_start_up_with_file_line_and_reason(tmp_path, file, text, expected):
    """Red team, reproductions 10 and 11: a billion laughs was a MemoryError after 25 s, 5,000 levels
    a RecursionError traceback (exit 1). The same limits hold for every file the sandbox reads."""
    fixtures = fixture_dir(tmp_path)
    (fixtures / "scenarios").mkdir()
    (fixtures / file).write_text(text)

    result = serve_refused(fixtures)

    assert result.returncode == 2, result.stderr
    assert re.search(r"baas-sandbox: cannot start: \S*" + expected, result.stderr), result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def broken_spec_dir(tmp_path, monkeypatch) -> Path:
    """A copy of the specs whose product spec is valid YAML but not a valid OpenAPI document."""
    import yaml

    shutil.copy(SPEC_DIR / "admin.yaml", tmp_path / "admin.yaml")
    document = yaml.safe_load((SPEC_DIR / "openapi.yaml").read_text())
    document["bogus_root_field"] = 1
    document["paths"]["/baas/pix/keys"]["get"]["responses"] = "nope"
    (tmp_path / "openapi.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    monkeypatch.setattr(app_module, "SPEC_DIR", tmp_path)
    return tmp_path


def test_an_invalid_spec_stops_start_up_with_the_validators_message(broken_spec_dir):
    with pytest.raises(SpecError, match=r"openapi.yaml: invalid OpenAPI document"):
        create_app(Settings())


def test_the_cli_reports_an_invalid_spec(broken_spec_dir, capsys):
    from baas_sandbox.cli import main

    assert main(["serve"]) == 2
    assert "invalid OpenAPI document" in capsys.readouterr().err


# -- the specs are checked once per version ------------------------------------------------------------


@pytest.fixture
def spec_cache(tmp_path, monkeypatch) -> Path:
    from baas_sandbox import spec as spec_module

    directory = tmp_path / "cache"
    monkeypatch.setattr(spec_module, "SPEC_CACHE_DIR", directory)
    return directory


def _copy_of_product_spec(tmp_path: Path, name: str, extra: str = "") -> Path:
    path = tmp_path / name
    path.write_text((SPEC_DIR / "openapi.yaml").read_text() + extra)
    return path


def test_a_spec_found_valid_is_not_checked_again_until_it_changes(tmp_path, spec_cache, monkeypatch):
    import openapi_spec_validator

    from baas_sandbox.spec import load_checked

    checked = []
    real_validate = openapi_spec_validator.validate
    monkeypatch.setattr(openapi_spec_validator, "validate", lambda document: checked.append(1) or real_validate(document))
    load_checked(_copy_of_product_spec(tmp_path, "a.yaml"))
    assert len(checked) == 1 and len(list(spec_cache.iterdir())) == 1
    load_checked(_copy_of_product_spec(tmp_path, "b.yaml"))  # the same document, another file
    assert len(checked) == 1
    load_checked(_copy_of_product_spec(tmp_path, "c.yaml", "\n# edited\n"))  # another text: checked
    assert len(checked) == 2 and len(list(spec_cache.iterdir())) == 2


def test_an_invalid_spec_is_never_remembered(tmp_path, spec_cache):
    from baas_sandbox.spec import load_checked

    for name in ("bad1.yaml", "bad2.yaml"):
        with pytest.raises(SpecError, match="invalid OpenAPI document"):
            load_checked(_copy_of_product_spec(tmp_path, name, "\nbogus_root_field: 1\n"))
    assert not spec_cache.exists() or not list(spec_cache.iterdir())


def test_a_cache_that_cannot_be_written_only_means_checking_again(tmp_path, monkeypatch):
    from baas_sandbox import spec as spec_module

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setattr(spec_module, "SPEC_CACHE_DIR", blocker / "cache")
    assert spec_module.load_checked(_copy_of_product_spec(tmp_path, "d.yaml"))["openapi"].startswith("3.")


# -- every fixture problem at once ---------------------------------------------------------------------

FIVE_MISTAKES = """\
    accounts:
      - account_key: 0b9e5a4c-1111-4222-8333-444455556601
        tenant: org-x
        owner_name: ANA
        owner_person_type: natural
        owner_document_number: "81563500221"
        status: open
      - account_key: 0b9e5a4c-1111-4222-8333-444455556602
        tenant: org-a
        owner_name: BIA
        owner_person_type: natural
        owner_document_number: "12345678900"
        status: open
      - account_key: 0b9e5a4c-1111-4222-8333-444455556603
        tenant: org-a
        owner_name: CAIO
        owner_person_type: natural
        owner_document_number: "81563500221"
        status: frozen
      - account_key: 0b9e5a4c-1111-4222-8333-444455556603
        tenant: org-a
        owner_name: DORA
        owner_person_type: natural
        owner_document_number: "81563500221"
        status: open
    """


def test_every_fixture_problem_is_reported_at_once_one_line_each(tmp_path):
    """Five mistakes in three files (four in accounts.yaml, one in a scenario): five lines, then exit 2."""
    directory = fixture_dir(tmp_path, accounts=FIVE_MISTAKES)
    (directory / "scenarios").mkdir()
    (directory / "scenarios" / "teapot.yaml").write_text(
        "rules:\n  - match: {operation: create-pix-key}\n    respond: {status: 418}\n")
    result = subprocess.run([sys.executable, "-m", "baas_sandbox", "serve", "--fixtures", str(directory),
                             "--port", "0", "--log-level", "warning"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    expected = [
        "accounts.yaml:3: accounts[0].tenant: unknown tenant 'org-x'",
        "accounts.yaml:12: accounts[1].owner_document_number: 12345678900 is not a valid CPF",
        "accounts.yaml:19: accounts[2].status: 'frozen' is not one of",
        "accounts.yaml:20: accounts[3].account_key: account_key is used by another account",
        "teapot.yaml:3: rules[0].respond.status: status 418 is not documented for create-pix-key",
    ]
    assert len(lines) == len(expected), result.stderr
    for line, wanted in zip(lines, expected):
        assert line.startswith("baas-sandbox: cannot start: ") and wanted in line, (line, wanted)
    assert "Traceback" not in result.stderr


def test_a_fixture_of_the_wrong_shape_is_a_located_problem_not_a_traceback(tmp_path):
    directory = fixture_dir(tmp_path, accounts="accounts: 5\n")
    result = subprocess.run([sys.executable, "-m", "baas_sandbox", "serve", "--fixtures", str(directory),
                             "--port", "0", "--log-level", "warning"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "accounts.yaml:1: accounts: 5 is not of type 'array'" in result.stderr
