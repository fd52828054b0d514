"""The ``baas-sandbox`` command as a user meets it: version, help, the start banner, refusals."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path

import pytest

from baas_sandbox import __version__
from baas_sandbox.cli import parser
from baas_sandbox.defaults import PACKAGE_DIR, PROJECT_ROOT
from baas_sandbox.fuzz import stop

COMMAND = [sys.executable, "-m", "baas_sandbox"]
START_TIMEOUT = 30
CNPJ_REQUEST = {"account_key": "6d30a0b1-cb90-4ceb-b1ea-5bd600cdf3c8", "pix_key_type": "cnpj",
                "pix_key": "09080702000105"}


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, timeout=60, cwd=cwd,
                          env=env if env is not None else os.environ.copy())


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"baas-sandbox {__version__}"


def _option_blocks(help_text: str) -> dict[str, str]:
    """``--option`` -> its lines in a help text (an option's block runs until the next option)."""
    blocks: dict[str, str] = {}
    current = None
    for line in help_text.splitlines():
        match = re.match(r"^  (-\w, )?(--[\w-]+)", line)
        if match:
            current = match.group(2)
            blocks[current] = ""
        elif line and not line.startswith(" "):
            current = None
        if current:
            blocks[current] += " " + line.strip()
    return blocks


@pytest.mark.parametrize("command", ["serve", "fuzz"])
def test_every_option_has_help_with_its_default(command):
    result = run_cli(command, "--help", env=os.environ | {"COLUMNS": "200"})
    assert result.returncode == 0
    blocks = _option_blocks(result.stdout)
    _, subcommands = parser()
    options = [o for action in subcommands[command]._actions for o in action.option_strings if o.startswith("--")]
    assert set(options) - {"--help"} <= set(blocks), "an option is missing from the help"
    for option in set(options) - {"--help"}:
        assert "default" in blocks[option], f"{option}: its help does not say its default: {blocks[option]}"
    assert "``" not in result.stdout, "reStructuredText markup in the help"


def test_the_help_lists_the_environment_variables():
    for args in (["--help"], ["serve", "--help"]):
        assert "BAAS_SANDBOX_MASTER_KEY" in run_cli(*args).stdout


def test_an_unknown_option_of_serve_shows_serves_usage():
    result = run_cli("serve", "--no-such-option")
    assert result.returncode == 2
    assert "usage: baas-sandbox serve" in result.stderr
    assert "unrecognized arguments: --no-such-option" in result.stderr


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_a_port_out_of_range_is_refused_with_exit_status_2(port):
    result = run_cli("serve", "--port", port)
    assert result.returncode == 2
    assert "usage: baas-sandbox serve" in result.stderr and "--port" in result.stderr
    assert "serving on" not in result.stderr


def _start(*args: str, cwd: Path) -> tuple[subprocess.Popen, str]:
    """``serve`` in a subprocess; its process and the URL its banner names."""
    process = subprocess.Popen([*COMMAND, "serve", *args], cwd=cwd, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in process.stderr:  # the banner comes once it answers (or the process ends)
        lines.append(line)
        match = re.search(r"serving on (http://\S+)", line)
        if match:
            return process, match.group(1)
    process.wait(timeout=START_TIMEOUT)
    raise AssertionError(f"serve ended without a banner: {''.join(lines)}")


def test_port_0_takes_a_free_port_names_it_and_serves_the_seed_request_from_any_folder(tmp_path):
    process, url = _start("--port", "0", "--log-level", "warning", "--no-reload", cwd=tmp_path)
    try:
        port = int(url.rsplit(":", 1)[1])
        assert port != 0
        request = urllib.request.Request(f"{url}/baas/pix/keys", data=json.dumps(CNPJ_REQUEST).encode(),
                                         method="POST", headers={"Authorization": "Bearer org-a-token",
                                                                 "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 201
            assert json.load(answer)["pix_key"]["pix_key"] == "09080702000105"
    finally:
        stop(process)


def test_a_port_in_use_is_one_clear_line_and_exit_status_2(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--port", str(port), "--log-level", "warning", cwd=tmp_path)
    assert result.returncode == 2
    assert f"baas-sandbox: cannot start: 127.0.0.1:{port} is already in use" in result.stderr
    assert "Traceback" not in result.stderr and "serving on" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_host_that_is_not_an_address_is_refused(tmp_path):
    result = run_cli("serve", "--host", "no-such-host.invalid", "--log-level", "warning", cwd=tmp_path)
    assert result.returncode == 2
    assert "cannot start: --host no-such-host.invalid" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_malformed_master_key_is_refused_saying_what_it_must_be(tmp_path):
    result = run_cli("serve", "--port", "0", "--log-level", "warning", cwd=tmp_path,
                     env=os.environ | {"BAAS_SANDBOX_MASTER_KEY": "c2hvcnQ="})
    assert result.returncode == 2
    assert "BAAS_SANDBOX_MASTER_KEY must be 32 bytes in base64" in result.stderr
    assert "Traceback" not in result.stderr


# -- the distribution ---------------------------------------------------------------------------------


def test_the_distribution_lists_every_package_of_the_engine():
    """pyproject.toml names the packages one by one (spec/, handlers/ and fixtures/ are mapped into the
    package): a new subpackage left out of it would be missing from a wheel, and only there."""
    configured = set(tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(path.parent.relative_to(PROJECT_ROOT).parts) for path in PACKAGE_DIR.rglob("__init__.py")
             if "__pycache__" not in path.parts}
    assert found <= configured, f"missing from pyproject.toml's packages: {sorted(found - configured)}"


def test_the_consoles_files_are_package_data():
    """The console's page, script and style are not Python: a file the package-data globs miss would
    be missing from a wheel only (.ci/check-install serves them from one)."""
    import fnmatch

    globs = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["baas_sandbox.console"]
    files = [p.name for p in (PACKAGE_DIR / "console").iterdir() if p.is_file() and p.suffix != ".py"]
    assert {"index.html", "console.js", "console.css"} <= set(files)
    assert all(any(fnmatch.fnmatch(name, glob) for glob in globs) for name in files), files


def test_the_readme_lists_every_option_of_serve():
    """The README's `baas-sandbox serve` block is where people look first: no option missing."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    block = readme.split("```text\nbaas-sandbox serve", 1)[1].split("```", 1)[0]
    _, subcommands = parser()
    options = {o for action in subcommands["serve"]._actions for o in action.option_strings if o.startswith("--")}
    missing = sorted(o for o in options - {"--help"} if not re.search(rf"\[{o}[\] ]", block))
    assert not missing, f"missing from the README's serve block: {missing}"


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "1e12"])
def test_a_duration_that_cannot_be_computed_is_refused(value):
    """``--validation-window inf`` started, then every email or phone key creation answered 500."""
    result = run_cli("serve", "--validation-window", value)
    assert result.returncode == 2 and "--validation-window" in result.stderr
    assert "serving on" not in result.stderr
