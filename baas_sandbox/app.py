"""The app factory: the request pipeline, explicit.

    CORS -> tracking_id -> bind sandbox -> errors in each API's format
      -> route (connexion) -> authenticate -> validate the request
      -> validate the response (tests) -> Prefer: a documented example, or the handler

Both specs are checked with openapi-spec-validator first, and the fixtures are loaded against
the spec's own account schema, so a broken spec or fixture stops start-up with its reason.
"""

from __future__ import annotations

import contextlib
import copy
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
from baas_sandbox.http import errors
from baas_sandbox.http.context import BindSandbox
from baas_sandbox.http.prefer import ExampleCatalogue, PreferredResponse
from baas_sandbox.http.tracking import HEADER as TRACKING_HEADER
from baas_sandbox.http.tracking import TrackingId
from baas_sandbox.http.violations import BodyValidator, ParametersValidator
from baas_sandbox.services.accounts import build_account
from baas_sandbox.services.sandbox import Sandbox, Settings
from baas_sandbox.spec import ADMIN_SPEC, PRODUCT_SPEC, SPEC_DIR, load_checked, resolve_refs, to_json_schema

ADMIN_BASE_PATH = "/__admin"

VALIDATORS = {
    "parameter": ParametersValidator,
    "body": {"application/json": BodyValidator},
}


@dataclass(frozen=True)
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

    @property
    def account_schema(self) -> dict:
        return to_json_schema(self.admin["components"]["schemas"]["AccountRequest"])


def build_sandbox(settings: Settings, specs: Specs) -> Sandbox:
    fixtures = load_fixtures(settings.fixtures_dir, specs.account_schema, build_account)
    return Sandbox(settings, fixtures)


def create_app(settings: Settings | None = None) -> AsyncApp:
    """A ready ASGI app; raises ``SpecError`` or ``FixtureError`` with the reason it cannot start."""
    settings = settings or Settings()
    specs = Specs.load()
    sandbox = build_sandbox(settings, specs)

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        sandbox.scheduler.cancel_all()

    app = AsyncApp(__name__, specification_dir=SPEC_DIR, validator_map=VALIDATORS, lifespan=lifespan)
    resolver = Resolver(function_resolver=handlers.resolve)
    swagger = SwaggerUIOptions(swagger_ui=True, swagger_ui_path="/ui")
    # connexion gets the parsed documents (copies: it annotates them), not the files to parse again.
    app.add_api(copy.deepcopy(specs.product_raw), resolver=resolver, validate_responses=settings.validate_responses,
                swagger_ui_options=swagger)
    app.add_api(copy.deepcopy(specs.admin_raw), base_path=ADMIN_BASE_PATH, resolver=resolver,
                validate_responses=settings.validate_responses, swagger_ui_options=swagger)

    # Outermost first: each insertion before the exception middleware lands inside the previous.
    app.add_middleware(CORSMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION,
                       allow_origin_regex=settings.cors_origin_regex, allow_methods=["*"],
                       allow_headers=["*"], expose_headers=[TRACKING_HEADER])
    app.add_middleware(TrackingId, position=MiddlewarePosition.BEFORE_EXCEPTION)
    app.add_middleware(BindSandbox, position=MiddlewarePosition.BEFORE_EXCEPTION, sandbox=sandbox)
    app.add_middleware(TrackingId, position=MiddlewarePosition.BEFORE_CONTEXT)
    app.add_middleware(PreferredResponse, position=MiddlewarePosition.BEFORE_CONTEXT,
                       catalogue=ExampleCatalogue(specs.product))

    app.add_error_handler(DomainError, errors.on_domain_error)
    app.add_error_handler(ProblemException, errors.on_problem)
    routes = errors.RouteTable([("", specs.product), (ADMIN_BASE_PATH, specs.admin)])
    app.add_error_handler(HTTPException, routes.on_http_exception)
    app.add_error_handler(Exception, errors.on_crash)

    app.sandbox = sandbox  # type: ignore[attr-defined]  # for the CLI and the tests
    return app
