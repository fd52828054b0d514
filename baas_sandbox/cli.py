"""The ``baas-sandbox`` command: ``serve`` a sandbox, ``fuzz`` one against the specs."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path

from baas_sandbox import __version__, fuzz
from baas_sandbox.defaults import (
    DEFAULT_FIXTURES,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_MAX_CONNECTIONS,
    LOCAL_ORIGINS,
    LOOPBACK_HOSTS,
)

GRACEFUL_SHUTDOWN = 2.0  # seconds
#: Exit status of a start that cannot happen (a bad option, fixture, spec or port), as argparse's.
CANNOT_START = 2
#: ``--store``'s environment variable.
STORE_VARIABLE = "BAAS_SANDBOX_STORE"

DESCRIPTION = """\
A contract-first, stateful local sandbox of the Banking - Authentication (provider credentials) and
Pix key APIs.

  baas-sandbox serve          serve it on http://127.0.0.1:8080 (Swagger UI at /ui/, control at /__admin/)
  baas-sandbox fuzz           check a sandbox against its specs with schemathesis (CI's contract run)
  baas-sandbox COMMAND --help the options of a command
"""

ENVIRONMENT = """\
environment variables:
  BAAS_SANDBOX_MASTER_KEY  32 bytes in base64: the AES-256-GCM key that encrypts provider keys
                           (default: a new key at each start; no provider key outlives the process,
                           not even in --state-file); required with --store redis://…, where every
                           process sharing the store must seal and open keys with the same one
  BAAS_SANDBOX_STORE       where the state lives, as --store (default: memory)
  BAAS_SANDBOX_ADMIN_TOKEN the admin API's bearer token, as --admin-token (default: none)
  XDG_CACHE_HOME           where the fingerprints of specs found valid are kept, to skip the check at the
                           next start (default ~/.cache; baas-sandbox/valid-specs inside it)
"""

# The other modules are imported inside main(): connexion, which they import, warns at import
# time about starlette's test client and httpx, noise for someone who only wants a server.


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Descriptions and epilogs as written (they are laid out by hand), each option's default shown.

    A help text that says its default in words ends with ``%(default).0s`` (which prints nothing):
    the formatter then adds no ``(default: None)``."""


def port_number(value: str) -> int:
    """``--port``: 0 (a free port, printed at start) to 65535, refused here with the range otherwise."""
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is out of range (0-65535; 0 takes a free port)")
    return port


#: The longest duration an option takes, in seconds (about three years): a time past the year 9999
#: cannot be computed (``inf`` or ``1e12`` seconds made every key creation a 500).
MAX_SECONDS = 1e8


def non_negative(kind: type, least: float = 0):
    """An option's type: a number of ``kind``, ``least`` or more; a float one also finite and at
    most ``MAX_SECONDS`` (float options are durations)."""
    def convert(value: str):
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
        if not number >= least:  # also refuses nan
            raise argparse.ArgumentTypeError(f"must be {least} or more, not {value}")
        if kind is float and not number <= MAX_SECONDS:
            raise argparse.ArgumentTypeError(f"must be at most {MAX_SECONDS:.0e} seconds, not {value}")
        return number

    convert.__name__ = kind.__name__  # argparse names the type in its messages
    return convert


def positive(kind: type):
    return non_negative(kind, least=1 if kind is int else 1e-3)


def fraction(value: str) -> float:
    """``--webhook-loop-share``: more than 0, at most 1 (all of the time)."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0 < number <= 1:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 1, not {value}")
    return number


def store_location(value: str) -> str:
    """``--store``: ``memory``, or a Redis URL (``redis://``, ``rediss://`` or ``unix://``)."""
    if value == "memory" or value.startswith(("redis://", "rediss://", "unix://")):
        return value
    raise argparse.ArgumentTypeError(f"must be memory or a Redis URL such as redis://127.0.0.1:6379/0, not {value!r}")


def verification_code(value: str) -> str:
    """``--fixed-verification-code``: six digits, as every verification code is."""
    if not (len(value) == 6 and value.isascii() and value.isdigit()):
        raise argparse.ArgumentTypeError(f"must be 6 digits (e.g. 329329), not {value!r}")
    return value


def parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The command's parser, and each subcommand's (to show its own usage on an unknown option)."""
    root = argparse.ArgumentParser(prog="baas-sandbox", description=DESCRIPTION, epilog=ENVIRONMENT,
                                   formatter_class=HelpFormatter)
    root.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve", help="serve the sandbox", formatter_class=HelpFormatter, epilog=ENVIRONMENT,
        description="Serve the sandbox: the product APIs of spec/openapi.yaml and the sandbox control API\n"
                    "(/__admin, spec/admin.yaml). It prints 'baas-sandbox: serving on http://HOST:PORT'\n"
                    "once it answers; with --port 0, PORT is the free port it took.")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (loopback: this machine only)")
    serve.add_argument("--port", type=port_number, default=8080, help="port to bind; 0 takes a free one")
    serve.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES, metavar="DIR",
                       help="folder with tenants.yaml, accounts.yaml, webhooks.yaml and scenarios/ "
                            "(default: the fixtures shipped with the sandbox)%(default).0s")
    serve.add_argument("--activation-delay", type=non_negative(float), default=1.0, metavar="SECONDS",
                       help="delay from a pending key request to the DICT decision")
    serve.add_argument("--code-ttl", type=non_negative(float), default=600.0, metavar="SECONDS",
                       help="how long a verification code stays valid")
    serve.add_argument("--validation-window", type=non_negative(float), default=3600.0, metavar="SECONDS",
                       help="how long an email or phone key request waits for its code before it is "
                            "rejected and its key freed")
    serve.add_argument("--fixed-verification-code", type=verification_code, default=None, metavar="CODE",
                       help="every verification code this value, 6 digits (the provider's sandbox uses "
                            "329329), for tests that type it (default: a new random code each time)%(default).0s")
    serve.add_argument("--cors-origin-regex", default=LOCAL_ORIGINS, metavar="REGEX",
                       help="browser origins allowed by CORS (default: any port of this machine)%(default).0s")
    serve.add_argument("--scenario", action="append", default=[], metavar="NAME",
                       help="activate a scenario of <fixtures>/scenarios/ (repeatable; evaluated in order; "
                            "default: none)%(default).0s")
    serve.add_argument("--seed", type=int, default=None,
                       help="seed of the scenarios' random choices and dynamic bodies, for reproducible runs "
                            "(default: a new one each start)%(default).0s")
    serve.add_argument("--journal-size", type=non_negative(int), default=1000, metavar="N",
                       help="how many requests GET /__admin/requests keeps")
    serve.add_argument("--no-reload", action="store_true",
                       help="do not watch the scenario files for edits (default: watch them)%(default).0s")
    serve.add_argument("--webhook-attempts", type=non_negative(int), default=6, metavar="N",
                       help="attempts per webhook delivery before it is failed")
    serve.add_argument("--webhook-backoff", type=non_negative(float), default=1.0, metavar="SECONDS",
                       help="wait before the 2nd attempt, doubling after (with jitter)")
    serve.add_argument("--webhook-timeout", type=non_negative(float), default=5.0, metavar="SECONDS",
                       help="how long a webhook receiver has to answer")
    serve.add_argument("--webhook-allowed-hosts", default=",".join(LOOPBACK_HOSTS), metavar="HOST,HOST",
                       help="hosts webhooks may be sent to, '*' for any")
    serve.add_argument("--webhook-concurrency", type=positive(int), default=4, metavar="N",
                       help="webhook attempts in flight per subscription")
    serve.add_argument("--webhook-queue-size", type=positive(int), default=1000, metavar="N",
                       help="pending webhook deliveries kept per subscription; past that the oldest is "
                            "dropped, marked failed")
    serve.add_argument("--webhook-breaker-failures", type=non_negative(int), default=5, metavar="N",
                       help="consecutive failed attempts that pause a subscription's deliveries, 0 for never")
    serve.add_argument("--webhook-breaker-cooldown", type=non_negative(float), default=30.0, metavar="SECONDS",
                       help="how long they stay paused before one trial attempt")
    serve.add_argument("--webhook-loop-share", type=fraction, default=0.2, metavar="FRACTION",
                       help="most of the server's time webhook deliveries may take, 1 for no cap")
    serve.add_argument("--allowed-hosts", default="", metavar="HOST,HOST",
                       help="more names the admin API answers to (its Host header), '*' for any "
                            "(default: localhost, 127.0.0.1, ::1 and --host)%(default).0s")
    serve.add_argument("--admin-token", default=None, metavar="TOKEN",
                       help="bearer token the admin API requires; needed to serve on a non-loopback --host "
                            "(default: $BAAS_SANDBOX_ADMIN_TOKEN, else none)%(default).0s")
    serve.add_argument("--no-admin-auth", action="store_true",
                       help="serve a non-loopback --host without an admin token, on a private network only "
                            "(default: off)%(default).0s")
    serve.add_argument("--validate-responses", action="store_true",
                       help="check every answer against the spec (a violation answers 500; default: off)%(default).0s")
    serve.add_argument("--max-body-size", type=positive(int), default=DEFAULT_MAX_BODY_SIZE, metavar="BYTES",
                       help="largest request body accepted, in bytes (1 MiB); past it 413 SBX000413")
    serve.add_argument("--header-timeout", type=positive(float), default=DEFAULT_HEADER_TIMEOUT, metavar="SECONDS",
                       help="time a client has to send a request's headers before the connection is closed")
    serve.add_argument("--max-connections", type=positive(int), default=DEFAULT_MAX_CONNECTIONS, metavar="N",
                       help="open connections served at once; past it 503 SBX000503")
    serve.add_argument("--max-namespaces", type=positive(int), default=1000, metavar="N",
                       help="namespaces (X-Sandbox-Namespace) held at once; a request for one more is "
                            "answered 429 SBX000429")
    serve.add_argument("--namespace-idle-ttl", type=non_negative(float), default=3600.0, metavar="SECONDS",
                       help="a namespace without a request for this long is dropped, 0 for never "
                            "(the default namespace never is)")
    serve.add_argument("--state-file", type=Path, default=None, metavar="PATH",
                       help="JSON file every namespace is loaded from at start and saved to (atomically) "
                            "at shutdown and every --state-save-interval seconds; a missing file is created "
                            "(default: none, the state is lost at exit)%(default).0s")
    serve.add_argument("--state-save-interval", type=positive(float), default=5.0, metavar="SECONDS",
                       help="how often the state is saved to --state-file when something changed")
    serve.add_argument("--store", default=os.environ.get(STORE_VARIABLE) or "memory", type=store_location,
                       metavar="memory|redis://HOST:PORT/DB",
                       help="where the state lives: this process's memory, or a Redis server shared by every "
                            "process started with the same URL (one sandbox across processes and machines; "
                            "needs BAAS_SANDBOX_MASTER_KEY); also BAAS_SANDBOX_STORE")
    serve.add_argument("--store-timeout", type=positive(float), default=2.0, metavar="SECONDS",
                       help="the longest a request waits on the shared store: past it, 503 SBX000503")
    serve.add_argument("--webhook-lease", type=positive(float), default=10.0, metavar="SECONDS",
                       help="with --store redis://…: how long a process holds a pending webhook delivery "
                            "unrenewed; past it another process takes the delivery over")
    serve.add_argument("--workers", type=positive(int), default=1, metavar="N",
                       help="processes serving the port (more than 1 needs --store redis://…)")
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                       help="what the server logs")
    fuzz_parser = fuzz.add_parser(commands, formatter_class=HelpFormatter)
    return root, {"serve": serve, "fuzz": fuzz_parser}


def parse(argv: list[str] | None) -> argparse.Namespace:
    root, subcommands = parser()
    args, unknown = root.parse_known_args(argv)
    if unknown:  # argparse would show the top-level usage: show the subcommand's, whose option it is not
        subcommands.get(args.command, root).error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.command == "fuzz":
        return fuzz.main(args)
    return serve(args)


def serve(args: argparse.Namespace) -> int:
    from baas_sandbox import admin_access

    admin_token = admin_access.token_from(args.admin_token)
    problem = admin_access.startup_problem(args.host, admin_token, args.no_admin_auth) or store_problem(args)
    if problem is not None:
        print(f"baas-sandbox: cannot start: {problem}", file=sys.stderr)
        return CANNOT_START
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette.testclient`")
    from baas_sandbox.adapters.state_file import StateFileError
    from baas_sandbox.adapters.vault import MasterKeyError
    from baas_sandbox.adapters.yamlfile import FileProblem
    from baas_sandbox.app import create_app
    from baas_sandbox.scenarios.library import UnknownScenario
    from baas_sandbox.server import ListenError, listen, run, run_workers
    from baas_sandbox.services.sandbox import Settings
    from baas_sandbox.spec import SpecError

    try:  # bound first: a port in use is said at once, and the app learns the port it serves on
        sock = listen(args.host, args.port)
    except ListenError as exc:
        print(f"baas-sandbox: cannot start: {exc}", file=sys.stderr)
        return CANNOT_START
    settings = Settings(
        fixtures_dir=args.fixtures,
        activation_delay=args.activation_delay,
        code_ttl=args.code_ttl,
        validation_window=args.validation_window,
        fixed_verification_code=args.fixed_verification_code,
        validate_responses=args.validate_responses,
        cors_origin_regex=args.cors_origin_regex,
        scenarios=args.scenario,
        seed=args.seed,
        journal_size=args.journal_size,
        hot_reload=not args.no_reload,
        webhook_attempts=args.webhook_attempts,
        webhook_backoff=args.webhook_backoff,
        webhook_timeout=args.webhook_timeout,
        webhook_concurrency=args.webhook_concurrency,
        webhook_queue_size=args.webhook_queue_size,
        webhook_breaker_failures=args.webhook_breaker_failures,
        webhook_breaker_cooldown=args.webhook_breaker_cooldown,
        webhook_loop_share=args.webhook_loop_share,
        collect_when_idle=True,  # this process serves one sandbox: its garbage collection is ours to set
        webhook_allowed_hosts=tuple(h.strip().lower().strip("[]") for h in args.webhook_allowed_hosts.split(",")
                                    if h.strip()),
        allowed_hosts=admin_access.allowed_hosts(args.host, args.allowed_hosts),
        admin_token=admin_token,
        listen_port=sock.getsockname()[1],
        max_body_size=args.max_body_size,
        max_namespaces=args.max_namespaces,
        namespace_idle_ttl=args.namespace_idle_ttl,
        state_file=args.state_file,
        state_save_interval=args.state_save_interval,
        store_url=None if args.store == "memory" else args.store,
        store_timeout=args.store_timeout,
        webhook_lease=args.webhook_lease,
    )
    try:
        app = create_app(settings)
    except (SpecError, FileProblem, UnknownScenario, MasterKeyError, StateFileError) as exc:
        for problem in getattr(exc, "problems", [exc]):  # a fixture's problems: all of them, a line each
            print(f"baas-sandbox: cannot start: {problem}", file=sys.stderr)
        sock.close()
        return CANNOT_START
    warning = admin_access.banner_warning(args.host, sock.getsockname()[1], admin_token, args.no_admin_auth)
    def serve_one(index: int = 0) -> None:
        run(app, sock, log_level=args.log_level, graceful_shutdown=GRACEFUL_SHUTDOWN,
            notes=([warning] if warning else []) + ([f"baas-sandbox: {args.workers} workers on {args.store}"]
                                                    if args.workers > 1 else []),
            header_timeout=args.header_timeout, max_connections=args.max_connections, announce=index == 0)

    if args.workers > 1:
        return run_workers(args.workers, serve_one)
    serve_one()
    return 0


def store_problem(args: argparse.Namespace) -> str | None:
    """Why ``--store`` and ``--workers`` cannot serve together as asked, if they cannot."""
    from baas_sandbox.adapters.vault import MASTER_KEY_VARIABLE

    if args.workers > 1 and args.store == "memory":
        return (f"--workers {args.workers} needs a shared store (--store redis://HOST:PORT/DB): with the memory "
                "store each worker would be a sandbox of its own, and a client would see its keys come and go")
    if args.store != "memory" and args.state_file is not None:
        return (f"--state-file keeps the memory store's state between runs; with --store {args.store} the "
                "state lives in Redis already (its own persistence keeps it)")
    if args.store != "memory" and not os.environ.get(MASTER_KEY_VARIABLE):
        return (f"--store {args.store} needs {MASTER_KEY_VARIABLE} (32 bytes in base64, e.g. the output of "
                "`openssl rand -base64 32`): every process sharing the store must seal and open provider keys "
                "with the same key, and a key made up at start would differ in each and die with it")
    return None


if __name__ == "__main__":
    sys.exit(main())
