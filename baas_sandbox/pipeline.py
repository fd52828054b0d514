"""The full request pipeline: connexion 3's AsyncApp with the sandbox's layers, explicit.

    remember the connection (faults) -> journal -> CORS -> the admin API's guard (Host, Origin,
      media type, token: http/admin_guard.py) -> tracking_id -> the namespace (X-Sandbox-Namespace)
      -> no trailing slash -> media type -> the body limit
      -> errors in each API's format -> route (connexion) -> authenticate -> validate the request
      -> validate the response (tests) -> Prefer: a documented example
      -> scenarios: latency, an injected answer, a network fault -> the handler

Every request the express lane (``http/express.py``) does not answer comes here: the admin API,
errors, ``Prefer``, scenarios, CORS, Swagger UI. ``baas_sandbox.app`` builds it in the background
once the server has started: connexion takes most of a second to import and build.
"""

from __future__ import annotations

import copy

from connexion import AsyncApp
from connexion.exceptions import ProblemException
from connexion.middleware import MiddlewarePosition
from connexion.options import SwaggerUIOptions
from connexion.resolver import Resolver
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware

from baas_sandbox.adapters.repository import StoreUnavailable
from baas_sandbox import handlers
from baas_sandbox.domain.errors import DomainError
from baas_sandbox.http import compiled, errors
from baas_sandbox.http.admin_guard import AdminGuard
from baas_sandbox.http.body_limit import BodyTooLarge, LimitBody
from baas_sandbox.http.faults import RememberConnection
from baas_sandbox.http.journal import RecordRequests
from baas_sandbox.http.media_types import LowerCaseMediaType
from baas_sandbox.http.namespace import BindNamespace
from baas_sandbox.http.prefer import PreferredResponse
from baas_sandbox.http.scenarios import ApplyScenarios
from baas_sandbox.http.slashes import NoTrailingSlash
from baas_sandbox.http.tracking import HEADER as TRACKING_HEADER
from baas_sandbox.http.tracking import TrackingId
from baas_sandbox.http.violations import BodyValidator, ParametersValidator
from baas_sandbox.services.namespaces import Namespaces
from baas_sandbox.services.sandbox import Settings
from baas_sandbox.spec import ADMIN_BASE_PATH, SPEC_DIR

VALIDATORS = {
    "parameter": ParametersValidator,
    "body": {"application/json": BodyValidator},
}


def build_pipeline(settings: Settings, specs, namespaces: Namespaces) -> AsyncApp:
    """The connexion app serving both specs (``specs``: ``baas_sandbox.app.Specs``), its middleware
    stack built (connexion would build it at its first request)."""
    # Outermost, before connexion's own middleware: remembers the connection for network faults.
    # Then connexion's own, with what it rebuilt per request built once (performance: http/compiled.py).
    middlewares = [RememberConnection, *compiled.MIDDLEWARES]
    app = AsyncApp(__name__, specification_dir=SPEC_DIR, validator_map=VALIDATORS, middlewares=middlewares,
                   security_map=compiled.SECURITY_MAP)
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
                       namespaces=namespaces, contract=specs.contract)
    app.add_middleware(CORSMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION,
                       allow_origin_regex=settings.cors_origin_regex, allow_methods=["*"],
                       allow_headers=["*"], expose_headers=[TRACKING_HEADER])
    # Inside CORS (a refusal an allowed origin can read; preflights answered before), before anything else.
    app.add_middleware(AdminGuard, position=MiddlewarePosition.BEFORE_EXCEPTION,
                       allowed_hosts=settings.allowed_hosts, origin_regex=settings.cors_origin_regex,
                       admin_token=settings.admin_token)
    app.add_middleware(TrackingId, position=MiddlewarePosition.BEFORE_EXCEPTION)
    app.add_middleware(BindNamespace, position=MiddlewarePosition.BEFORE_EXCEPTION, namespaces=namespaces)
    app.add_middleware(NoTrailingSlash, position=MiddlewarePosition.BEFORE_EXCEPTION)
    app.add_middleware(LowerCaseMediaType, position=MiddlewarePosition.BEFORE_EXCEPTION)
    # Before routing and security: a body over the limit is refused before a token is looked at.
    app.add_middleware(LimitBody, position=MiddlewarePosition.BEFORE_EXCEPTION, limit=settings.max_body_size)
    if settings.validate_responses:
        # Only response validation needs the header before the outer TrackingId adds it (performance:
        # without it, this second mount would only set the same header again).
        app.add_middleware(TrackingId, position=MiddlewarePosition.BEFORE_CONTEXT)
    app.add_middleware(PreferredResponse, position=MiddlewarePosition.BEFORE_CONTEXT,
                       contract=specs.contract, seed=settings.seed)
    app.add_middleware(ApplyScenarios, position=MiddlewarePosition.BEFORE_CONTEXT, contract=specs.contract)

    app.add_error_handler(DomainError, errors.on_domain_error)
    app.add_error_handler(ProblemException, errors.on_problem)
    app.add_error_handler(BodyTooLarge, errors.on_body_too_large)
    routes = errors.RouteTable([("", specs.product), (ADMIN_BASE_PATH, specs.admin)])
    app.add_error_handler(HTTPException, routes.on_http_exception)
    app.add_error_handler(StoreUnavailable, errors.on_store_unavailable)
    app.add_error_handler(Exception, errors.on_crash)

    # connexion builds its middleware stack at its first request; here, so that request need not.
    # (A private attribute: connexion is pinned below 4, and the tests cover the first request.)
    middleware = app.middleware
    middleware.app, middleware.middleware_stack = middleware._build_middleware_stack()
    return app
