"""The app factory: the request pipeline, explicit.

    remember the connection (faults) -> journal -> CORS -> tracking_id -> bind sandbox
      -> errors in each API's format -> route (connexion) -> authenticate -> validate the request
      -> validate the response (tests) -> Prefer: a documented example
      -> scenarios: latency, an injected answer, a network fault -> the handler

Both specs are checked with openapi-spec-validator first, and the fixtures are loaded against
the spec's own account schema, so a broken spec or fixture stops start-up with its reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
from dataclasses import dataclass

from connexion import AsyncApp
from connexion.exceptions import ProblemException
from connexion.middleware import MiddlewarePosition
from connexion.options import SwaggerUIOptions
from connexion.resolver import Resolver
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware

import handlers
from baas_sandbox.adapters.fixtures import load_fixtures
from baas_sandbox.domain.errors import DomainError
from baas_sandbox.http import compiled, errors
from baas_sandbox.http.context import BindSandbox
from baas_sandbox.http.faults import RememberConnection
from baas_sandbox.http.journal import RecordRequests
from baas_sandbox.http.prefer import PreferredResponse
from baas_sandbox.http.scenarios import ApplyScenarios
from baas_sandbox.http.slashes import NoTrailingSlash
from baas_sandbox.http.tracking import HEADER as TRACKING_HEADER
from baas_sandbox.http.tracking import TrackingId
from baas_sandbox.http.violations import BodyValidator, ParametersValidator
from baas_sandbox.scenarios.library import ScenarioLibrary
from baas_sandbox.scenarios.watcher import watch
from baas_sandbox.services.accounts import build_account
from baas_sandbox.services.sandbox import Sandbox, Settings
from baas_sandbox.spec import (
    ADMIN_SPEC,
    PRODUCT_SPEC,
    SPEC_DIR,
    Contract,
    load_checked,
    resolve_refs,
    to_json_schema,
)

ADMIN_BASE_PATH = "/__admin"

VALIDATORS = {
    "parameter": ParametersValidator,
    "body": {"application/json": BodyValidator},
}


@dataclass
class Specs:
    """Both documents, checked; ``*_raw`` as written (for connexion), the others with refs inlined."""

    product_raw: dict
    admin_raw: dict
    product: dict
    admin: dict

    @classmethod
    def load(cls) -> "Specs":
        product = load_checked(SPEC_DIR / PRODUCT_SPEC)
        admin = load_checked(SPEC_DIR / ADMIN_SPEC)
        return cls(product, admin, resolve_refs(product), resolve_refs(admin))

    @functools.cached_property
    def contract(self) -> Contract:
        return Contract(("", self.product), (ADMIN_BASE_PATH, self.admin))

    @property
    def account_schema(self) -> dict:
        return to_json_schema(self.admin["components"]["schemas"]["AccountRequest"])


def build_sandbox(settings: Settings, specs: Specs) -> Sandbox:
    fixtures = load_fixtures(settings.fixtures_dir, specs.account_schema, build_account,
                             settings.subscription_problem)
    product_operations = [op for path in specs.product["paths"].values() for method, op in path.items()
                          if isinstance(op, dict) and "operationId" in op]
    scenarios = ScenarioLibrary(settings.scenarios_dir, specs.contract,
                                [op["operationId"] for op in product_operations],
                                seed=settings.seed, active=settings.scenarios)
    return Sandbox(settings, fixtures, scenarios)


def create_app(settings: Settings | None = None) -> AsyncApp:
    """A ready ASGI app; raises ``SpecError``, ``FixtureError``, ``ScenarioError`` or ``UnknownScenario``
    with the reason it cannot start."""
    settings = settings or Settings()
    specs = Specs.load()
    sandbox = build_sandbox(settings, specs)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch(sandbox.scenarios, stop)) if settings.hot_reload else None
        yield
        stop.set()
        sandbox.scheduler.cancel_all()
        await sandbox.webhooks.aclose()
        if watcher is not None:
            await asyncio.wait_for(watcher, timeout=5)

    # Outermost, before connexion's own middleware: remembers the connection for network faults.
    # Then connexion's own, with what it rebuilt per request built once (performance: http/compiled.py).
    middlewares = [RememberConnection, *compiled.MIDDLEWARES]
    app = AsyncApp(__name__, specification_dir=SPEC_DIR, validator_map=VALIDATORS, lifespan=lifespan,
                   middlewares=middlewares, security_map=compiled.SECURITY_MAP)
    compiled.install_handler_cache(app._middleware_app)  # handlers decorated once, not per request
    resolver = Resolver(function_resolver=handlers.resolve)
    swagger = SwaggerUIOptions(swagger_ui=True, swagger_ui_path="/ui")
    # connexion gets the parsed documents (copies: it annotates them), not the files to parse again.
    app.add_api(copy.deepcopy(specs.product_raw), resolver=resolver, validate_responses=settings.validate_responses,
                swagger_ui_options=swagger)
    app.add_api(copy.deepcopy(specs.admin_raw), base_path=ADMIN_BASE_PATH, resolver=resolver,
                validate_responses=settings.validate_responses, swagger_ui_options=swagger)

    # Outermost first: each insertion before the exception middleware lands inside the previous.
    app.add_middleware(RecordRequests, position=MiddlewarePosition.BEFORE_EXCEPTION,
                       journal=sandbox.journal, contract=specs.contract)
    app.add_middleware(CORSMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION,
                       allow_origin_regex=settings.cors_origin_regex, allow_methods=["*"],
                       allow_headers=["*"], expose_headers=[TRACKING_HEADER])
    app.add_middleware(TrackingId, position=MiddlewarePosition.BEFORE_EXCEPTION)
    app.add_middleware(BindSandbox, position=MiddlewarePosition.BEFORE_EXCEPTION, sandbox=sandbox)
    app.add_middleware(NoTrailingSlash, position=MiddlewarePosition.BEFORE_EXCEPTION)
    if settings.validate_responses:
        # Only response validation needs the header before the outer TrackingId adds it (performance:
        # without it, this second mount would only set the same header again).
        app.add_middleware(TrackingId, position=MiddlewarePosition.BEFORE_CONTEXT)
    app.add_middleware(PreferredResponse, position=MiddlewarePosition.BEFORE_CONTEXT,
                       contract=specs.contract, seed=settings.seed)
    app.add_middleware(ApplyScenarios, position=MiddlewarePosition.BEFORE_CONTEXT,
                       library=sandbox.scenarios, contract=specs.contract)

    app.add_error_handler(DomainError, errors.on_domain_error)
    app.add_error_handler(ProblemException, errors.on_problem)
    routes = errors.RouteTable([("", specs.product), (ADMIN_BASE_PATH, specs.admin)])
    app.add_error_handler(HTTPException, routes.on_http_exception)
    app.add_error_handler(Exception, errors.on_crash)

    app.sandbox = sandbox  # type: ignore[attr-defined]  # for the CLI and the tests
    return app
