"""``baas-sandbox serve``: one command to a local sandbox on http://127.0.0.1:8080."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

from baas_sandbox.defaults import DEFAULT_FIXTURES, LOCAL_ORIGINS

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
    serve.add_argument("--validate-responses", action="store_true",
                       help="check every response against the spec (a violation answers 500)")
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
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
    )
    try:
        app = create_app(settings)
    except (SpecError, FileProblem, UnknownScenario) as exc:
        print(f"baas-sandbox: cannot start: {exc}", file=sys.stderr)
        return 2

    import uvicorn

    print(f"baas-sandbox: serving on http://{args.host}:{args.port}  (Swagger UI: /ui/ and /__admin/ui/)",
          file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
