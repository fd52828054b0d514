"""``baas-sandbox serve``: one command to a local sandbox on http://127.0.0.1:8080;
``baas-sandbox fuzz``: check a sandbox against the specs (the contract run of CI)."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

from baas_sandbox import fuzz
from baas_sandbox.defaults import (
    DEFAULT_FIXTURES,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_MAX_CONNECTIONS,
    LOCAL_ORIGINS,
    LOOPBACK_HOSTS,
)

GRACEFUL_SHUTDOWN = 2.0  # seconds

# The other modules are imported inside main(): connexion, which they import, warns at import
# time about starlette's test client and httpx, noise for someone who only wants a server.


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="baas-sandbox", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the sandbox")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: local only)")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES,
                       help="folder with tenants.yaml and accounts.yaml (default: the project's fixtures/)")
    serve.add_argument("--activation-delay", type=float, default=1.0, metavar="SECONDS",
                       help="delay from a pending key request to the DICT decision (default 1)")
    serve.add_argument("--code-ttl", type=float, default=600.0, metavar="SECONDS",
                       help="how long a verification code stays valid (default 600)")
    serve.add_argument("--cors-origin-regex", default=LOCAL_ORIGINS,
                       help="browser origins allowed by CORS (default: any localhost port)")
    serve.add_argument("--scenario", action="append", default=[], metavar="NAME",
                       help="activate a scenario of <fixtures>/scenarios/ (repeatable; evaluated in order)")
    serve.add_argument("--seed", type=int, default=None,
                       help="seed of the scenarios' random choices, for reproducible runs")
    serve.add_argument("--journal-size", type=int, default=1000, metavar="N",
                       help="how many requests GET /__admin/requests keeps (default 1000)")
    serve.add_argument("--no-reload", action="store_true", help="do not watch the scenario files")
    serve.add_argument("--webhook-attempts", type=int, default=6, metavar="N",
                       help="attempts per webhook delivery before it is failed (default 6)")
    serve.add_argument("--webhook-backoff", type=float, default=1.0, metavar="SECONDS",
                       help="wait before the 2nd attempt, doubling after (with jitter; default 1)")
    serve.add_argument("--webhook-timeout", type=float, default=5.0, metavar="SECONDS",
                       help="how long a receiver has to answer (default 5)")
    serve.add_argument("--webhook-allowed-hosts", default=",".join(LOOPBACK_HOSTS), metavar="HOST,HOST",
                       help="hosts webhooks may be sent to, '*' for any (default: this machine only)")
    serve.add_argument("--validate-responses", action="store_true",
                       help="check every response against the spec (a violation answers 500)")
    serve.add_argument("--max-body-size", type=int, default=DEFAULT_MAX_BODY_SIZE, metavar="BYTES",
                       help="largest request body accepted; past it 413 SBX000413 (default 1048576: 1 MiB)")
    serve.add_argument("--header-timeout", type=float, default=DEFAULT_HEADER_TIMEOUT, metavar="SECONDS",
                       help="time a client has to send a request's headers before the connection is "
                            "closed (default 10)")
    serve.add_argument("--max-connections", type=int, default=DEFAULT_MAX_CONNECTIONS, metavar="N",
                       help="open connections served at once; past it 503 SBX000503 (default 1000)")
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    fuzz.add_parser(commands)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "fuzz":
        return fuzz.main(args)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette.testclient`")
    from baas_sandbox.adapters.yamlfile import FileProblem
    from baas_sandbox.app import create_app
    from baas_sandbox.scenarios.library import UnknownScenario
    from baas_sandbox.services.sandbox import Settings
    from baas_sandbox.spec import SpecError

    settings = Settings(
        fixtures_dir=args.fixtures,
        activation_delay=args.activation_delay,
        code_ttl=args.code_ttl,
        validate_responses=args.validate_responses,
        cors_origin_regex=args.cors_origin_regex,
        scenarios=args.scenario,
        seed=args.seed,
        journal_size=args.journal_size,
        hot_reload=not args.no_reload,
        webhook_attempts=args.webhook_attempts,
        webhook_backoff=args.webhook_backoff,
        webhook_timeout=args.webhook_timeout,
        collect_when_idle=True,  # this process serves one sandbox: its garbage collection is ours to set
        webhook_allowed_hosts=tuple(h.strip().lower().strip("[]") for h in args.webhook_allowed_hosts.split(",")
                                    if h.strip()),
        max_body_size=args.max_body_size,
    )
    try:
        app = create_app(settings)
    except (SpecError, FileProblem, UnknownScenario) as exc:
        print(f"baas-sandbox: cannot start: {exc}", file=sys.stderr)
        return 2

    import uvicorn

    print(f"baas-sandbox: serving on http://{args.host}:{args.port}  (Swagger UI: /ui/ and /__admin/ui/)",
          file=sys.stderr)
    # Open event streams never end by themselves: bound the wait for them when stopping.
    from baas_sandbox.server import uvicorn_options

    # The access log is written at INFO: above that level uvicorn would format each line for nothing.
    access_log = args.log_level in ("trace", "debug", "info")
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=access_log,
                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
                **uvicorn_options(header_timeout=args.header_timeout, max_connections=args.max_connections))
    return 0


if __name__ == "__main__":
    sys.exit(main())
