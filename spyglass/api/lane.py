"""The direct API's own routes (a token-free start, a task's result) served past the layers
that do nothing for them.

A request for the API takes this way through the app (see `front.py`): Reflex's context
middleware, the security middleware, then FastAPI's stack (server-error, telemetry, body-limit,
CORS and exception middleware, an exit-stack middleware), then the router, which tries the
routes in turn. For a token-free start or result read sent by a script (no `Origin`, no
`Referer`, no query string, no `Idempotency-Key`), every one of those layers but four only
hands the request on:

* Reflex's contexts are set (as its middleware does);
* the security middleware's answer headers are added (`security.answer_headers`, the one
  place they are chosen), and its origin check does not apply: a request naming no origin is
  no cross-site request (`security.from_a_browser_page`);
* the CORS middleware, for a request without `Origin`, only adds `Vary: Origin`;
* an error raised by the route becomes the answer of the API's own exception handler for it
  (a handler for `Exception` answers 500, then the error is raised again for the server's
  log, as Starlette's server-error middleware does).

So the `Lane` does those four itself and hands the request to the route the router would
choose (`route.handle`, as the router does). Anything else — a browser's request, a query
string, a key, FastAPI's telemetry or tracing on, a body limit, a `root_path` — takes the
whole way, so its answer is the same as before (tests compare the two ways' answers).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.telemetry import get_telemetry_data
from starlette.requests import Request
from starlette.routing import Match
from starlette.types import Message, Receive, Scope, Send

from spyglass import idempotency
from spyglass.api import security
from spyglass.api.direct import ON_LANE, DirectStartRoute, TaskRoute

VARY = b"vary"
#: What Starlette's CORS middleware adds to an answer to a request without `Origin`.
VARY_ORIGIN = b"Origin"

Picked = tuple[APIRoute, Scope]


class Lane:
    """Serves the routes of the direct API it was built with (`pick`, then `serve`)."""

    def __init__(self, api: FastAPI, set_contexts: Callable[[], object]) -> None:
        self.api = api
        self.set_contexts = set_contexts
        self._built = False
        #: A job's own start route by its path (POST).
        self._starts: dict[str, APIRoute] = {}
        #: The routes with parameters, in the router's order, by method.
        self._params: dict[str, list[APIRoute]] = {"POST": [], "GET": []}

    def _build(self) -> None:
        """The lane's routes: the direct start and result routes, and only while no route
        before them in the router's list could take the same request (checked by path
        shape: every route before them has a different path)."""
        self._built = True
        if getattr(self.api, "max_body_size", None) is not None:
            return  # FastAPI counts the body of every request: the whole way does that
        for route in self.api.router.routes:
            if isinstance(route, DirectStartRoute) and route.max_body_size is None:
                if route.static_path is not None:
                    self._starts.setdefault(route.static_path, route)
                else:
                    self._params["POST"].append(route)
            elif isinstance(route, TaskRoute) and route.methods == {"GET"}:
                self._params["GET"].append(route)

    def pick(self, scope: Scope) -> Picked | None:
        """The route that takes this request on the lane, with its path parameters, or None
        (then the request takes the whole way)."""
        if not self._built:
            self._build()
        method = scope["method"]
        if method != "POST" and method != "GET":
            return None
        if scope.get("query_string") or scope.get("root_path"):
            return None
        headers = scope["headers"]
        if security.from_a_browser_page(scope) or idempotency.has_key(headers):
            return None
        if get_telemetry_data() is not None:
            return None
        path: str = scope["path"]
        if method == "POST":
            route = self._starts.get(path)
            if route is not None:  # what its `matches` gives (its path has no parameters)
                return route, {"endpoint": route.endpoint, "path_params": {}}
        for route in self._params[method]:
            match, child = route.matches(scope)
            if match is Match.FULL:
                return route, child
        return None

    async def serve(self, picked: Picked, scope: Scope, receive: Receive, send: Send) -> None:
        route, child = picked
        self.set_contexts()
        if child:
            scope.update(child)
        scope["app"] = self.api  # as FastAPI and its router set them
        scope.setdefault("router", self.api.router)
        scope[ON_LANE] = True  # the route need not look again (`pick` did)
        added = security.answer_headers(scope["path"])
        started = False

        async def send_secured(message: Message) -> None:
            """The security middleware's part (it is outside all of FastAPI's layers)."""
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                security.add_headers(message, added + security.cache_headers(path, status))
            await send(message)

        async def send_with_headers(message: Message) -> None:
            """The CORS middleware's part, then the security middleware's."""
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                _vary_origin(headers)
                message["headers"] = headers
            await send_secured(message)

        path: str = scope["path"]
        try:
            await route.handle(scope, receive, send_with_headers)
        except Exception as exc:
            if started:
                raise
            handler = self._handler(exc)
            if handler is None:
                raise
            response = await handler(Request(scope, receive), exc)
            if _server_error(self.api, exc):
                # Starlette's server-error middleware answers it, outside the CORS
                # middleware, then raises it again for the server's log.
                await response(scope, receive, send_secured)
                raise
            await response(scope, receive, send_with_headers)

    def _handler(self, exc: Exception) -> Any:
        handlers = self.api.exception_handlers
        for cls in type(exc).__mro__:
            if cls in handlers:
                return handlers[cls]
        return None


def _server_error(api: FastAPI, exc: Exception) -> bool:
    """Whether Starlette's server-error middleware (not its exception middleware) would
    answer `exc`: no handler more specific than one for `Exception` (or 500) takes it."""
    for cls in type(exc).__mro__:
        if cls is Exception:
            return True
        if cls in api.exception_handlers:
            return False
    return True


def _vary_origin(headers: list[tuple[bytes, bytes]]) -> None:
    """`Vary: Origin` as the CORS middleware sets it (joined with a `Vary` the route set)."""
    for i, (name, value) in enumerate(headers):
        if name.lower() == VARY:
            headers[i] = (VARY, value + b", " + VARY_ORIGIN)
            return
    headers.append((VARY, VARY_ORIGIN))
