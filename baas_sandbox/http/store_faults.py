"""A shared store that cannot answer (``StoreUnavailable``): 503 ``SBX000503`` in the API's own
error format, with ``Retry-After``, within the store's time-out — never a 500, never a hung request.

Three places meet the fault, and each answers the same: the express lane's handler call
(``http/express.py``), connexion's error handlers (``pipeline.py``), and this module's middleware
around everything (a namespace made or settled before any handler runs). Nothing a client was told
about is half-applied: each store operation happened whole or not at all.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from baas_sandbox.adapters.repository import StoreUnavailable
from baas_sandbox.http import faults
from baas_sandbox.http.problems import Answer, Api, sandbox_problem, send_answer

logger = logging.getLogger("baas_sandbox")

#: Seconds a client is asked to wait before trying again (Redis restarts in about that).
RETRY_AFTER = 1
DETAILS = "the sandbox's store (Redis) cannot be reached: try again shortly"
DETAILS_PT = "o armazenamento do sandbox (Redis) está inacessível: tente de novo em instantes"


def unavailable(api: Api) -> Answer:
    answer = sandbox_problem(api, 503, DETAILS, details_pt=DETAILS_PT)
    answer.headers["Retry-After"] = str(RETRY_AFTER)
    return answer


def log(scope: Scope, error: StoreUnavailable) -> None:
    logger.warning("%s %s: answered 503: %s", scope.get("method"), scope.get("path"), error)


class AnswerStoreFaults:
    """ASGI middleware: a ``StoreUnavailable`` raised before the answer started becomes the 503."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        faults.remember(scope, send)  # before send is wrapped: the scenarios' network faults need it
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except StoreUnavailable as error:
            if started:  # a stream already answering: all that can be done is to end it
                raise
            log(scope, error)
            await send_answer(send, unavailable(Api.of(scope["path"])))
