"""What connexion 3 rebuilds on every request, built once per operation instead.

Performance only: each class below is connexion's own, with the same steps in the same order; what
changes is *when* the per-operation objects are made. Profiling the sandbox under load (py-spy,
``python -m bench``) showed connexion re-creating, for every request, objects that depend only on
the operation:

- the handler's decorator chain (``AsyncOperation.fn`` builds a ``StarletteDecorator``, whose wrapper
  calls ``decorate()``, which calls ``inspect.signature`` on the handler) and the URI parser;
- the request validators: the parameter validator, the body validator and the URI parsers they
  hold (``RequestValidationOperation.__call__``), and the media types an operation consumes;
- ``inspect.signature`` of the bearer function, twice per request (``_accepts_kwarg``).

connexion 3.x's classes are subclassed here and plugged in through its own extension points
(``middlewares``, ``security_map``, the middleware app's ``api_cls``) in ``baas_sandbox.app``.
"""

from __future__ import annotations

import functools
import typing as t

from connexion.apps.asynchronous import AsyncApi, AsyncASGIApp, AsyncOperation
from connexion.context import receive, scope
from connexion.decorators import StarletteDecorator
from connexion.exceptions import UnsupportedMediaTypeProblem
from connexion.middleware import ConnexionMiddleware
from connexion.middleware.request_validation import (
    RequestValidationAPI,
    RequestValidationMiddleware,
    RequestValidationOperation,
)
from connexion.middleware.request_validation import (
    logger as validation_logger,
)
from connexion.middleware.swagger_ui import SwaggerUIMiddleware, _original_scope
from connexion.security import BearerSecurityHandler
from connexion.utils import inspect_function_arguments, is_nullable
from starlette.types import ASGIApp, Receive, Scope, Send

#: Distinct Content-Type values remembered per operation; past this, they are worked out per request
#: (a client could send endless variants: the cache must not grow without bound).
MEDIA_TYPE_CACHE_SIZE = 32


# -- the handler: decorated once ---------------------------------------------------------------------


class _OnceDecorator(StarletteDecorator):
    """``StarletteDecorator`` whose decorator chain and URI parser are made once per operation.

    connexion's ``ASGIDecorator.__call__`` calls ``self.decorate(function)`` inside the wrapper, that
    is per request (and with it ``inspect.signature`` of the handler), and its ``uri_parser``
    property builds a parser per request. Both depend only on the operation, which is fixed for a
    given ``AsyncOperation``.
    """

    def __call__(self, function: t.Callable) -> t.Callable:
        decorated = self.decorate(function)
        parsers: list = []  # the operation's URI parser, made at its first request (it needs the context)

        @functools.wraps(function)
        async def wrapper(*args, **kwargs):
            if not parsers:
                parsers.append(self.uri_parser)
            request = self.framework.get_request(uri_parser=parsers[0], scope=scope, receive=receive)
            return await decorated(request)

        return wrapper


class _OnceAsyncOperation(AsyncOperation):
    @functools.cached_property
    def fn(self) -> t.Callable:  # connexion: a new decorator per request (a property)
        return _OnceDecorator(pythonic_params=self.pythonic_params, jsonifier=self.jsonifier)(self._fn)


class _OnceAsyncApi(AsyncApi):
    def make_operation(self, operation) -> AsyncOperation:
        return _OnceAsyncOperation.from_operation(operation, pythonic_params=self.pythonic_params,
                                                  jsonifier=self.jsonifier)


def install_handler_cache(middleware_app: AsyncASGIApp) -> None:
    """Make ``middleware_app`` (an ``AsyncApp``'s inner app) build its operations as above; call it
    before the first request (connexion adds the APIs to it when its middleware stack is built)."""
    middleware_app.api_cls = _OnceAsyncApi


# -- request validation: validators made once ---------------------------------------------------------


class _OnceRequestValidationOperation(RequestValidationOperation):
    """connexion's ``RequestValidationOperation.__call__``, with its validators made once.

    Per request connexion makes two URI parsers, a parameter validator, a body validator and a
    ``MediaTypeDict`` of the media types the operation consumes; all of them depend only on the
    operation (and, for the body, on the request's media type and charset, cached per value). The
    validators keep no state between requests.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        uri_parser = self._operation._uri_parser_class(self._operation.parameters, self._operation.body_definition())
        self._parameter_validator = self._validator_map["parameter"](
            self._operation.parameters,
            uri_parser=uri_parser,
            strict_validation=self.strict_validation,
            security_query_params=self.security_query_params,
        )
        self._accepted_media_types: dict[str, bool] = {}
        self._body_validators: dict[tuple[str, str], t.Any] = {}

    def validate_mime_type(self, mime_type: str) -> None:
        accepted = self._accepted_media_types.get(mime_type)
        if accepted is None:
            try:
                super().validate_mime_type(mime_type)
                accepted = True
            except UnsupportedMediaTypeProblem:
                accepted = False
            if len(self._accepted_media_types) < MEDIA_TYPE_CACHE_SIZE:
                self._accepted_media_types[mime_type] = accepted
        if not accepted:
            super().validate_mime_type(mime_type)  # raises connexion's own problem, worded as before

    def _body_validator(self, mime_type: str, encoding: str):
        """The body validator for this media type and charset, or None when there is nothing to check."""
        key = (mime_type, encoding)
        try:
            return self._body_validators[key]
        except KeyError:
            pass
        schema = self._operation.body_schema(mime_type)
        validator = None
        if schema:
            try:
                body_validator = self._validator_map["body"][mime_type]  # type: ignore
            except KeyError:
                validation_logger.info(f"Skipping validation. No validator registered for content type: "
                                       f"{mime_type}.")
                return None  # not cached: logged at every such request, as connexion does
            validator = body_validator(
                schema=schema,
                required=self._operation.request_body.get("required", False),
                nullable=is_nullable(self._operation.body_definition(mime_type)),
                encoding=encoding,
                strict_validation=self.strict_validation,
                uri_parser=self._operation.uri_parser_class(self._operation.parameters,
                                                            self._operation.body_definition()),
            )
        if len(self._body_validators) < MEDIA_TYPE_CACHE_SIZE:
            self._body_validators[key] = validator
        return validator

    async def __call__(self, scope: Scope, receive: Receive, send: Send):
        # The steps and their order are connexion's: parameters, media type, body.
        self._parameter_validator.validate(scope)
        mime_type, encoding = self.extract_content_type(scope["headers"])
        self.validate_mime_type(mime_type)
        validator = self._body_validator(mime_type, encoding)
        if validator is not None:
            receive, scope = await validator.wrap_receive(receive, scope=scope)
        await self.next_app(scope, receive, send)


class _OnceRequestValidationAPI(RequestValidationAPI):
    def make_operation(self, operation) -> RequestValidationOperation:
        return _OnceRequestValidationOperation(self.next_app, operation=operation,
                                               strict_validation=self.strict_validation,
                                               validator_map=self.validator_map)


class OnceRequestValidationMiddleware(RequestValidationMiddleware):
    """``RequestValidationMiddleware`` whose operations make their validators once."""

    api_cls = _OnceRequestValidationAPI


# -- Swagger UI: only its own paths go through its router -------------------------------------------------


class DirectSwaggerUIMiddleware(SwaggerUIMiddleware):
    """connexion's Swagger UI middleware routes every request through a Starlette router whose only
    routes are the UI's and the spec's (``/ui``, ``/openapi.json``... under each API's base path),
    to reach the next app through the router's default for every API request.

    Here a path that cannot reach those routes goes to the next app at once, as the default does
    (with a copy of the scope). "Cannot reach": it does not start with any route's path without its
    trailing slash, so neither the path nor its slash-toggled twin (the router's redirect) matches.
    """

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app)
        self._ui_prefixes: tuple[str, ...] = ()

    def add_api(self, *args, **kwargs) -> None:
        super().add_api(*args, **kwargs)
        prefixes = []
        for mount in self.router.routes:
            for route in getattr(mount, "routes", None) or [mount]:
                prefixes.append((getattr(mount, "path", "") + getattr(route, "path", "")).rstrip("/"))
        self._ui_prefixes = tuple(prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(self._ui_prefixes):
            original = scope.copy()
            _original_scope.set(original)
            await self.app(original, receive, send)  # what the router's default does
            return
        await super().__call__(scope, receive, send)


# -- security ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _arguments(function: t.Callable) -> tuple[frozenset[str], bool]:
    arguments, has_kwargs = inspect_function_arguments(function)
    return frozenset(arguments), has_kwargs


class OnceBearerSecurityHandler(BearerSecurityHandler):
    """connexion inspects the bearer function's signature twice per request to know whether it
    takes ``required_scopes`` or ``request``; a function's signature does not change."""

    @staticmethod
    def _accepts_kwarg(func: t.Callable, keyword: str) -> bool:
        arguments, has_kwargs = _arguments(func)
        return has_kwargs or keyword in arguments


SECURITY_MAP = {"bearer": OnceBearerSecurityHandler}

#: connexion's default middlewares, with the two above in place of its own.
MIDDLEWARES = [
    {RequestValidationMiddleware: OnceRequestValidationMiddleware,
     SwaggerUIMiddleware: DirectSwaggerUIMiddleware}.get(middleware, middleware)
    for middleware in ConnexionMiddleware.default_middlewares
]

__all__ = ["MIDDLEWARES", "SECURITY_MAP", "install_handler_cache"]
