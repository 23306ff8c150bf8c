"""The ASGI app the server calls: the API's own paths straight to the API, the rest through Reflex.

Reflex's `App.__call__` wraps everything in a Starlette app of its own (error middleware, its
CORS middleware, a middleware that sets Reflex's contexts, exception middleware, and a router
whose one route mounts the security middleware, the API and, beneath the API, Reflex's pages
and `/_event`). For the API's paths every one of those layers but the contexts repeats what
the API app does itself (it has the same CORS middleware, added by Reflex, and its own error
and exception middleware), and the mount only matches a regular expression to hand the
request on. So `/api/…` and `/ws/…` go to the security middleware and the API directly, behind
the one of those layers they need, Reflex's context middleware (given as `api`); everything
else takes Reflex's way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Receive, Scope, Send

from spyglass.api.errors import not_found

if TYPE_CHECKING:
    from spyglass.api.lane import Lane

#: Paths only the API serves (its routes; Reflex has none there).
API_PREFIXES = ("/api/", "/ws/")
#: The scope key under which a socket of the API finds the server's own `send`
#: (`spyglass.api.sockets.Feed` writes its data frames through it).
RAW_SEND = "spyglass.raw_send"


class FrontDoor:
    """`api` (the API behind the security middleware and Reflex's context middleware) for
    the API's paths, `app` (Reflex's whole app) for the rest.

    A path with a line break (`%0A`) is answered the API's 404, whatever it begins with:
    the catch-all mount of Reflex's app (`^/(?P<path>.*)$`) matches no such path, so
    Starlette would answer its own plain-text 404, and a route parameter of the API could
    take it in. No id, name or key here holds a line break, so "not found" is the true
    answer. `wrap` puts that answer through the same middleware as every other (headers,
    origin checks).

    With `raw_socket_sends`, a socket of the API also gets the server's own `send` in its
    scope (`RAW_SEND`): its data frames (`websocket.send`) then skip the send wrappers of
    every layer between, none of which does anything with them but hand them on (the
    security middleware, Reflex's contexts, Starlette's exception handlers); the accept and
    the close still take the whole way. Pass False when a layer does look at them (tracing).

    With a `lane`, the direct API's start and result requests it can take (`Lane.pick`: a
    script's, not a browser's) skip the layers between too (see `spyglass.api.lane`).
    """

    def __init__(
        self,
        app: ASGIApp,
        api: ASGIApp,
        *,
        wrap: Callable[[ASGIApp], ASGIApp] = lambda a: a,
        raw_socket_sends: bool = False,
        lane: Lane | None = None,
    ) -> None:
        self.app = app
        self.api = api
        self.lane = lane
        self.not_found = wrap(not_found)
        self.raw_socket_sends = raw_socket_sends

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http" or kind == "websocket":
            path: str = scope["path"]
            if "\n" in path:
                if kind == "http":
                    await self.not_found(scope, receive, send)
                    return
            elif path.startswith(API_PREFIXES):
                if kind == "http" and self.lane is not None:
                    picked = self.lane.pick(scope)
                    if picked is not None:
                        await self.lane.serve(picked, scope, receive, send)
                        return
                elif kind == "websocket" and self.raw_socket_sends:
                    scope[RAW_SEND] = send
                await self.api(scope, receive, send)
                return
        await self.app(scope, receive, send)
