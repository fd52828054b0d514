"""``baas-sandbox fuzz``: the contract run — schemathesis over both specs against a running sandbox.

One definition of the contract run, for CI (``.ci/run``), for developers, and for a team that
deploys the sandbox and wants to know it still honours ``spec/``: every check, the four phases
(examples, coverage, fuzzing, stateful, which follows the specs' ``links``), a bounded number of
examples per operation and a fixed seed, so a failure can be replayed. The settings both specs
share (authentication, the statuses business rules may answer, the fixture accounts to aim at)
live in ``schemathesis.toml``, which the in-process run of the tests reads too.

schemathesis runs as a subprocess of its own CLI: its summary is the one a developer knows, its
exit status is the verdict, and nothing here depends on its Python API, which changes more often.

The run is not read-only: it creates keys and accounts, and the admin API it fuzzes resets the
sandbox and switches scenarios. So it resets the sandbox first, switches every scenario off (an
injected fault is not a contract breach), and resets it again at the end.

A sandbox with an admin token (``BAAS_SANDBOX_ADMIN_TOKEN``, which a sandbox started here inherits)
gets it on every admin request. schemathesis reads it from the environment through a copy of
``schemathesis.toml`` (``${BAAS_SANDBOX_ADMIN_TOKEN}``: never on a command line), whose printed
requests then mask ``Authorization`` (CI logs are read by many).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from baas_sandbox.defaults import SPEC_DIR

if TYPE_CHECKING:
    import subprocess
    import xml.etree.ElementTree as ET

# The modules a run needs are imported where used: the CLI imports this module for its options,
# and `baas-sandbox serve` is on the clock (start-up time).

#: The run's settings, beside the specs they describe (shipped with them in the package).
CONFIG_FILE = SPEC_DIR / "schemathesis.toml"
PHASES = ("examples", "coverage", "fuzzing", "stateful")
#: The budget of CI's contract run (about 40 s on 2 cores), and the default of everyone else's.
DEFAULT_MAX_EXAMPLES = 100
DEFAULT_SEED = 1
#: Seconds one request may take before schemathesis counts it as an error: a bound on a hung server.
REQUEST_TIMEOUT = 10
#: Seconds a sandbox (started here, or by CI just before) has to answer its first request.
START_TIMEOUT = 30
# Exit statuses: schemathesis's own 1 (failures found) passes through; 2 means "could not run".
CANNOT_RUN = 2


@dataclass(frozen=True)
class Target:
    """One spec and where its operations are served, relative to the sandbox's base URL."""

    spec: str
    base_path: str

    @property
    def name(self) -> str:
        return Path(self.spec).stem


# The product API first: the admin run activates scenarios and adds webhook subscriptions, which
# would otherwise shape the product API's answers.
TARGETS = (Target("openapi.yaml", ""), Target("admin.yaml", "/__admin"))


class CannotRun(Exception):
    """The contract run could not start: schemathesis missing, or no sandbox to test."""


def add_parser(commands: argparse._SubParsersAction, **options) -> argparse.ArgumentParser:
    """The ``fuzz`` subcommand and its options (its help says what the run does to the sandbox);
    ``options`` go to its parser (the CLI's help formatter, which shows each default)."""
    fuzz = commands.add_parser(
        "fuzz", help="check a sandbox against spec/ with schemathesis (the CI contract run)",
        description="Run schemathesis over spec/openapi.yaml and spec/admin.yaml against a sandbox, every\n"
                    "check, all four phases. Without --url, start one on a free port and stop it afterwards.\n"
                    "The run resets the sandbox before and after, and switches its scenarios off: do not\n"
                    "point it at a sandbox someone is using.\n\n"
                    "Exit status: 0 no failure, 1 a check failed, 2 could not run.", **options)
    # "%(default).0s" prints nothing: it tells the formatter the help already says the default.
    fuzz.add_argument("--url", help="base URL of a running sandbox, e.g. http://127.0.0.1:8080 "
                                    "(default: start one)%(default).0s")
    fuzz.add_argument("--max-examples", type=positive_int, default=DEFAULT_MAX_EXAMPLES, metavar="N",
                      help="test cases per operation and phase")
    fuzz.add_argument("--seed", type=int, default=DEFAULT_SEED,
                      help="seed of the generated data, and of a sandbox started here")
    fuzz.add_argument("--phases", default=",".join(PHASES), type=phases_option,
                      help=f"comma-separated, among {', '.join(PHASES)}")
    fuzz.add_argument("--report", type=Path, metavar="PATH",
                      help="write a JUnit XML report of both runs to PATH (folders are created; "
                           "default: none)%(default).0s")
    fuzz.add_argument("schemathesis_args", nargs="*", metavar="-- ARGS",
                      help="after --: more options for `schemathesis run`, e.g. -- --exclude-checks "
                           "ignored_auth%(default).0s")
    return fuzz


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {number}")
    return number


def phases_option(value: str) -> str:
    """``--phases``: refuse an unknown phase here, with the list, rather than deep in schemathesis."""
    phases = [phase.strip() for phase in value.split(",") if phase.strip()]
    unknown = [phase for phase in phases if phase not in PHASES]
    if not phases or unknown:
        raise argparse.ArgumentTypeError(f"unknown phase {', '.join(unknown) or '(none)'}; "
                                         f"choose among {', '.join(PHASES)}")
    return ",".join(phases)


def main(args: argparse.Namespace) -> int:
    """Run the contract against ``--url`` or a sandbox started here; the worst exit status wins."""
    try:
        command = schemathesis_cli()
        with stopped_by_sigterm(), sandbox_at(args.url, seed=args.seed) as sandbox:
            prepare(sandbox.url)
            try:
                statuses = run_all(command, sandbox.url, args)
            finally:
                restore(sandbox.url)
            if max(statuses) != 0:
                sandbox.show_log()
    except CannotRun as exc:
        print(f"baas-sandbox fuzz: {exc}", file=sys.stderr)
        return CANNOT_RUN
    return max(statuses)


def schemathesis_cli() -> list[str]:
    """How to call schemathesis: its CLI module, run by this interpreter (so the same virtualenv)."""
    if importlib.util.find_spec("schemathesis") is None:
        raise CannotRun("schemathesis is not installed; install the test extra: pip install 'baas-sandbox[test]' "
                        "(from a clone: pip install -e '.[test]')")
    return [sys.executable, "-m", "schemathesis.cli"]


def run_all(command: list[str], base_url: str, args: argparse.Namespace) -> list[int]:
    """Every target in turn, each with its own JUnit file, merged into ``--report`` at the end."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="baas-sandbox-fuzz-") as workdir:
        config = CONFIG_FILE
        if admin_token():
            config = config_with_admin_token(Path(workdir) / CONFIG_FILE.name)
        statuses, reports = [], []
        for target in TARGETS:
            junit = Path(workdir) / f"{target.name}.xml"
            print(f"\n== contract run: spec/{target.spec} against {base_url}{target.base_path} "
                  f"(seed {args.seed}, {args.max_examples} examples, phases {args.phases})", flush=True)
            statuses.append(subprocess.call(run_command(command, target, base_url, args, junit, config)))
            reports.append((target, junit))
        if args.report is not None:
            merge_junit(reports, args.report)
            print(f"\nJUnit report: {args.report}")
    verdict = "no failure" if max(statuses) == 0 else "FAILED (see the summaries above)"
    print(f"\n== contract run: {verdict}", flush=True)
    return statuses


def run_command(command: list[str], target: Target, base_url: str, args: argparse.Namespace,
                junit: Path, config_file: Path = CONFIG_FILE) -> list[str]:
    """``schemathesis run`` for one spec; ``schemathesis.toml`` is named so any working folder will do."""
    config = ["--config-file", str(config_file)] if config_file.is_file() else []
    return [
        *command, *config, "run", str(SPEC_DIR / target.spec),
        "--url", base_url + target.base_path,
        "--checks", "all",
        "--phases", args.phases,
        "--max-examples", str(args.max_examples),
        "--seed", str(args.seed),
        "--request-timeout", str(REQUEST_TIMEOUT),
        "--report", "junit", "--report-junit-path", str(junit),
        *args.schemathesis_args,
    ]


def merge_junit(reports: Sequence[tuple[Target, Path]], destination: Path) -> None:
    """One JUnit file for CI: each run's suite, named after its spec; a run without a report is an error."""
    import xml.etree.ElementTree as ET

    merged = ET.Element("testsuites")
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    elapsed = 0.0
    for target, path in reports:
        for suite in junit_suites(target, path):
            suite.set("name", f"schemathesis {target.spec}")
            for case in suite.iter("testcase"):
                case.set("classname", target.spec)
            for key in totals:
                totals[key] += int(suite.get(key, "0"))
            elapsed += float(suite.get("time", "0"))
            merged.append(suite)
    for key, value in totals.items():
        merged.set(key, str(value))
    merged.set("time", f"{elapsed:.3f}")
    destination.parent.mkdir(parents=True, exist_ok=True)
    ET.indent(merged)
    ET.ElementTree(merged).write(destination, encoding="utf-8", xml_declaration=True)


def junit_suites(target: Target, path: Path) -> list[ET.Element]:
    """The suites schemathesis wrote, or one suite with an error when it wrote none (it crashed)."""
    import xml.etree.ElementTree as ET

    try:
        return list(ET.parse(path).getroot().iter("testsuite"))
    except (OSError, ET.ParseError) as exc:
        suite = ET.Element("testsuite", tests="1", failures="0", errors="1", skipped="0", time="0")
        case = ET.SubElement(suite, "testcase", name="schemathesis run")
        ET.SubElement(case, "error", message=f"no report for spec/{target.spec}: {exc}")
        return [suite]


# --- the admin token ----------------------------------------------------------------------------

#: The environment variable of the admin token (``baas_sandbox.admin_access``; not imported: start-up time).
ADMIN_TOKEN_VARIABLE = "BAAS_SANDBOX_ADMIN_TOKEN"
ADMIN_PROJECT_TITLE = "baas-sandbox — sandbox control"
#: Appended to the copy of schemathesis.toml: a table of the file's last project, the admin spec's.
ADMIN_HEADERS = f'''
[project.headers]
Authorization = "Bearer ${{{ADMIN_TOKEN_VARIABLE}}}"
'''
SANITIZATION_OFF = "[output.sanitization]\nenabled = false\n"
SANITIZE_AUTHORIZATION = ('[output.sanitization]\nenabled = true\nkeys-to-sanitize = ["authorization"]\n'
                          'sensitive-markers = ["authorization"]\n')


#: The admin guard's refusals of the run's first request (baas_sandbox/http/admin_guard.py), and what to do.
GUARD_REFUSALS = {
    401: f"its admin API wants a token: set {ADMIN_TOKEN_VARIABLE} to it",
    421: "it does not answer to this host name: start it with --allowed-hosts naming it",
}


def admin_token() -> str | None:
    return os.environ.get(ADMIN_TOKEN_VARIABLE) or None


def admin_headers() -> dict[str, str]:
    token = admin_token()
    return {"Authorization": f"Bearer {token}"} if token else {}


def config_with_admin_token(path: Path) -> Path:
    """A copy of schemathesis.toml whose admin project sends the token (read from the environment
    by schemathesis) and whose output masks ``Authorization``; checked, so a reshaped file fails here."""
    import tomllib

    text = CONFIG_FILE.read_text(encoding="utf-8")
    text = text.replace(SANITIZATION_OFF, SANITIZE_AUTHORIZATION) + ADMIN_HEADERS
    config = tomllib.loads(text)
    last = config.get("project", [{}])[-1]
    if (config.get("output", {}).get("sanitization", {}).get("enabled") is not True
            or last.get("title") != ADMIN_PROJECT_TITLE or "headers" not in last):
        raise CannotRun(f"{CONFIG_FILE.name} changed shape: cannot add the admin token to it "
                        "(see config_with_admin_token in baas_sandbox/fuzz.py)")
    path.write_text(text, encoding="utf-8")
    return path


# --- the sandbox under test ---------------------------------------------------------------------


@dataclass(frozen=True)
class Sandbox:
    """The sandbox under test; ``log`` when it was started here (a 500's traceback is there)."""

    url: str
    log: Path | None = None

    def show_log(self, lines: int = 60) -> None:
        if self.log is None:
            return
        tail = self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        if tail:
            print("baas-sandbox fuzz: the sandbox's log (last lines):", *tail, sep="\n  ", file=sys.stderr)


@contextlib.contextmanager
def sandbox_at(url: str | None, *, seed: int) -> Iterator[Sandbox]:
    """``url`` once it answers, or a sandbox started here for the block (stopped whatever happens)."""
    if url is not None:
        sandbox = Sandbox(url.rstrip("/"))
        wait_until_up(sandbox.url, timeout=START_TIMEOUT, alive=lambda: True)
        yield sandbox
        return
    with started_sandbox(seed) as sandbox:
        yield sandbox


@contextlib.contextmanager
def started_sandbox(seed: int) -> Iterator[Sandbox]:
    """``baas-sandbox serve --port 0`` (a free port, bound by the server itself: no window for another
    process to take it), as CI and a user would start it; its URL read from its banner."""
    import subprocess
    import tempfile

    command = [sys.executable, "-m", "baas_sandbox", "serve", "--port", "0", "--seed", str(seed),
               "--no-reload", "--log-level", "warning"]
    with tempfile.TemporaryDirectory(prefix="baas-sandbox-") as folder:
        log = Path(folder) / "serve.log"
        print(f"baas-sandbox fuzz: starting `baas-sandbox serve --port 0 --seed {seed}`", flush=True)
        with log.open("w") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                       env=os.environ | {"PYTHONUNBUFFERED": "1"})
        try:
            sandbox = Sandbox(announced_url(log, alive=lambda: process.poll() is None), log)
            print(f"baas-sandbox fuzz: serving on {sandbox.url}", flush=True)
            wait_until_up(sandbox.url, timeout=START_TIMEOUT, alive=lambda: process.poll() is None)
        except CannotRun:
            stop(process)
            Sandbox("", log).show_log()
            raise
        try:
            yield sandbox
        finally:
            stop(process)


def announced_url(log: Path, alive, timeout: float = START_TIMEOUT) -> str:
    """The URL of ``serve``'s banner in ``log``, once printed (``CannotRun`` if it never is)."""
    import re
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"serving on (http://\S+)", log.read_text(encoding="utf-8", errors="replace"))
        if found:
            return found.group(1)
        if not alive():
            raise CannotRun("the sandbox stopped before it served")
        time.sleep(0.05)
    raise CannotRun(f"the sandbox did not say where it serves within {timeout:.0f} s")


@contextlib.contextmanager
def stopped_by_sigterm() -> Iterator[None]:
    """SIGTERM (a CI time-out) unwinds like Ctrl-C: the ``finally`` blocks stop the server started
    here, and ``subprocess.call`` kills the schemathesis run it waits for."""
    def interrupt(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def free_port() -> int:
    """A port nothing listens on now (the server binds it a moment later; a clash fails loudly)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(base_url: str, *, timeout: float, alive: Callable[[], bool]) -> None:
    """Poll the admin API until it answers; give up when the server died or ``timeout`` passed."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            probe = urllib.request.Request(f"{base_url}/__admin/scenarios", headers=admin_headers())
            with urllib.request.urlopen(probe, timeout=2):
                return
        except urllib.error.HTTPError as exc:
            if exc.code in GUARD_REFUSALS:  # it answers, and refuses: waiting will not change that
                raise CannotRun(f"{base_url} refused the run: {GUARD_REFUSALS[exc.code]}") from None
            if not alive() or time.monotonic() > deadline:
                raise CannotRun(f"no sandbox answers at {base_url}: {exc}") from None
            time.sleep(0.1)
        except (urllib.error.URLError, OSError) as exc:
            if not alive():
                raise CannotRun("the sandbox stopped before answering (its log is above)") from None
            if time.monotonic() > deadline:
                raise CannotRun(f"no sandbox answers at {base_url}: {exc}") from None
            time.sleep(0.1)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM (uvicorn shuts down cleanly), then SIGKILL if it hangs."""
    import subprocess

    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def prepare(base_url: str) -> None:
    """Fixture state and no scenario: the run checks the contract, not a fault chosen on purpose."""
    post(base_url, "/__admin/reset")
    request(base_url, "PUT", "/__admin/scenarios/active", {"names": []})


def restore(base_url: str) -> None:
    """Back to the fixtures and the scenarios chosen at start; a failure here must not hide the verdict."""
    try:
        post(base_url, "/__admin/reset")
    except CannotRun as exc:
        print(f"baas-sandbox fuzz: could not reset the sandbox after the run: {exc}", file=sys.stderr)


def post(base_url: str, path: str) -> None:
    request(base_url, "POST", path, None)


def request(base_url: str, method: str, path: str, body: dict | None) -> None:
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    headers = admin_headers() | ({} if body is None else {"Content-Type": "application/json"})
    req = urllib.request.Request(base_url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT):
            pass
    except (urllib.error.URLError, OSError) as exc:
        raise CannotRun(f"{method} {base_url}{path} failed: {exc}") from None
