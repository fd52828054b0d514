"""`baas-sandbox fuzz`, the contract run of CI: it passes against the sandbox, and it FAILS when a
handler answers what the spec does not allow — otherwise a green contract job would prove nothing.

Each run is a real subprocess of the CLI with a small budget, against a real server."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from baas_sandbox import handlers
from baas_sandbox import cli
from baas_sandbox import fuzz as fuzz_module
from baas_sandbox.defaults import DEFAULT_FIXTURES
from baas_sandbox.pytest_plugin import running, tenant_tokens
from baas_sandbox.spec import ADMIN_SPEC, PRODUCT_SPEC, SPEC_DIR, load_checked

CONFIG = tomllib.loads((SPEC_DIR / "schemathesis.toml").read_text(encoding="utf-8"))
SMALL_BUDGET = ["--max-examples", "5", "--seed", "3"]


def fuzz(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``baas-sandbox fuzz ARGS`` from another folder: it must find the specs and config itself."""
    return subprocess.run([sys.executable, "-m", "baas_sandbox", "fuzz", *args], capture_output=True,
                          text=True, timeout=240, cwd=cwd)


def junit(path: Path) -> dict[str, ET.Element]:
    """The report's test cases by ``spec: name``."""
    root = ET.parse(path).getroot()
    return {f"{case.get('classname')}: {case.get('name')}": case for case in root.iter("testcase")}


def test_each_schemathesis_project_names_a_spec():
    """A `[[project]]` whose title matches no spec is silently ignored: the auth would be lost."""
    titles = {load_checked(SPEC_DIR / name)["info"]["title"] for name in (PRODUCT_SPEC, ADMIN_SPEC)}
    projects = {project["title"]: project for project in CONFIG["project"]}
    assert set(projects) == titles
    product = projects[load_checked(SPEC_DIR / PRODUCT_SPEC)["info"]["title"]]
    assert product["auth"]["openapi"]["bearerAuth"]["bearer"] in tenant_tokens(DEFAULT_FIXTURES).values()


def test_the_fixture_accounts_aimed_at_exist():
    """The dictionary steering generated account keys must name real accounts, or no chain starts."""
    import yaml

    accounts = yaml.safe_load((DEFAULT_FIXTURES / "accounts.yaml").read_text(encoding="utf-8"))["accounts"]
    known = {account["account_key"] for account in accounts}
    assert set(CONFIG["dictionaries"]["fixture-accounts"]["values"]) <= known


def test_the_contract_run_passes_against_the_sandbox_it_starts(tmp_path):
    report = tmp_path / "reports" / "contract.xml"
    result = fuzz(*SMALL_BUDGET, "--report", str(report), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "starting `baas-sandbox serve" in result.stdout
    assert "== contract run: no failure" in result.stdout
    cases = junit(report)
    assert "openapi.yaml: POST /baas/pix/keys" in cases
    assert "openapi.yaml: Stateful tests" in cases  # the links make the stateful phase run
    assert "admin.yaml: POST /accounts" in cases
    assert not [name for name, case in cases.items() if len(case)], "no failure, error or skip recorded"


# Handlers that answer what the spec does not allow: a body without a required field, an
# undocumented status. Signatures as connexion calls them.

async def list_without_pix_keys(account_key: str, token_info: dict):
    return {"account_key": account_key}, 200


async def resend_with_teapot(pix_key_request_key: str, token_info: dict, body: dict | None = None):
    return {"title": "I'm a teapot"}, 418


@pytest.fixture
def broken_sandbox(monkeypatch) -> str:
    """A sandbox served on a real port whose two handlers are broken, response validation off
    (so the broken answers reach the client as they are, as they would in production)."""
    monkeypatch.setitem(handlers.OPERATIONS, "list-pix-keys", list_without_pix_keys)
    monkeypatch.setitem(handlers.OPERATIONS, "resend-pix-key-twofa", resend_with_teapot)
    with running({"activation_delay": 0.05, "validate_responses": False, "hot_reload": False}) as server:
        yield server.url


def test_the_contract_run_fails_when_a_handler_breaks_the_spec(broken_sandbox, tmp_path):
    report = tmp_path / "contract.xml"
    result = fuzz("--url", broken_sandbox, *SMALL_BUDGET, "--phases", "examples,fuzzing",
                  "--report", str(report), cwd=tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "== contract run: FAILED" in result.stdout
    assert "Response violates schema" in result.stdout
    assert '"pix_keys" is a required property' in result.stdout
    assert "Undocumented status code" in result.stdout
    assert "Received: 418" in result.stdout
    failed = {name for name, case in junit(report).items() if case.find("failure") is not None}
    # Exactly the two broken operations of the product API (the admin API is not broken here).
    assert {name for name in failed if name.startswith("openapi.yaml")} == {
        "openapi.yaml: GET /baas/pix/keys",
        "openapi.yaml: PATCH /baas/pix/keys/{pix_key_request_key}/resend_twofa",
    }


def test_fuzz_refuses_an_unknown_phase(tmp_path):
    result = fuzz("--phases", "examples,stateless", cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown phase stateless" in result.stderr


def test_fuzz_says_when_no_sandbox_answers(monkeypatch, capsys):
    monkeypatch.setattr(fuzz_module, "START_TIMEOUT", 0.3)
    assert cli.main(["fuzz", "--url", f"http://127.0.0.1:{fuzz_module.free_port()}"]) == 2
    assert "no sandbox answers at http://127.0.0.1:" in capsys.readouterr().err


def test_fuzz_says_how_to_install_schemathesis_when_it_is_missing(monkeypatch, capsys):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: None if name == "schemathesis" else real_find_spec(name, *rest))
    assert cli.main(["fuzz"]) == 2
    assert "pip install 'baas-sandbox[test]'" in capsys.readouterr().err


ADMIN_TOKEN = "fuzz-admin-token-not-secret"


def test_the_contract_run_sends_the_admin_token_and_prints_it_nowhere(tmp_path, monkeypatch):
    """A sandbox with an admin token (it refuses admin requests without it): the run's own requests
    (reset, scenarios off) and schemathesis's carry it, read from the environment, never printed."""
    monkeypatch.setenv(fuzz_module.ADMIN_TOKEN_VARIABLE, ADMIN_TOKEN)
    config = tomllib.loads(fuzz_module.config_with_admin_token(tmp_path / "s.toml").read_text(encoding="utf-8"))
    admin = next(p for p in config["project"] if p["title"] == load_checked(SPEC_DIR / ADMIN_SPEC)["info"]["title"])
    assert admin["headers"] == {"Authorization": "Bearer ${BAAS_SANDBOX_ADMIN_TOKEN}"}
    assert config["output"]["sanitization"]["enabled"] is True
    with running({"activation_delay": 0.05, "hot_reload": False, "admin_token": ADMIN_TOKEN}) as server:
        result = subprocess.run([sys.executable, "-m", "baas_sandbox", "fuzz", "--url", server.url, *SMALL_BUDGET,
                                 "--phases", "examples,stateful"], capture_output=True, text=True, timeout=240,
                                cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "== contract run: no failure" in result.stdout
    assert ADMIN_TOKEN not in result.stdout + result.stderr


def test_fuzz_says_when_the_sandbox_wants_an_admin_token(monkeypatch, capsys):
    monkeypatch.delenv(fuzz_module.ADMIN_TOKEN_VARIABLE, raising=False)
    with running({"hot_reload": False, "admin_token": ADMIN_TOKEN}) as server:
        assert cli.main(["fuzz", "--url", server.url]) == 2
    assert f"refused the run: its admin API wants a token: set {fuzz_module.ADMIN_TOKEN_VARIABLE}" \
           in capsys.readouterr().err
