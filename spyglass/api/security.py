"""What a browser may do with SpyGlass from another site, and the headers every answer carries.

One ASGI middleware wraps the whole app (SpyGlass's routes, the portal, Reflex's pages and its
`/_event` socket), installed through Reflex's `api_transformer`:

* **Origins.** A request is *same-origin* when its `Origin` is the origin the request itself was
  sent to: the scheme it arrived on and its `Host` header. `SPYGLASS_ALLOWED_ORIGINS` lists
  other origins a browser may use the app from (with cookies). With
  `SPYGLASS_TRUST_PROXY_HEADERS=1` the request's origin is read from `X-Forwarded-Proto` /
  `X-Forwarded-Host` instead (only behind a proxy that sets them).
  - A WebSocket handshake from any other origin is refused (HTTP 403, before accept): a page
    on another site cannot ride the signed-in browser's cookies over `/_event` or `/ws/…`.
  - A state-changing request (POST, PUT, PATCH, DELETE …) whose `Origin` — or, when a browser
    sent none, whose `Referer` — names another origin gets 403 `ORIGIN_NOT_ALLOWED`: no forged
    form post or `fetch` from another site reaches the portal, the session routes or the API.
    Scripts and terminals send neither header and are not affected.
  CORS answers (`Access-Control-Allow-Origin`) come from Reflex's CORS middleware, configured in
  `rxconfig.py` with the same allowed list; same-origin pages need none.
* **Headers.** Every HTTP answer gets a Content-Security-Policy (one for the Reflex pages, one
  with a per-request nonce for the portal at `/admin`, one for `/docs`), `X-Frame-Options: DENY`,
  `X-Content-Type-Options: nosniff`, `Referrer-Policy`, `Cross-Origin-Opener-Policy` and
  `Cross-Origin-Resource-Policy`. Headers a route set itself are kept.
"""

from __future__ import annotations

import base64
import contextvars
import functools
import hashlib
import html
import json
import re
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import BaseLoader, Environment
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spyglass.config import get_settings
from spyglass.errors import DomainError

#: (scheme, host, port) of an origin, lower-case, with the scheme's default port filled in.
Origin = tuple[str, str, int]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
DEFAULT_PORTS = {"http": 80, "https": 443}
PORTAL_PREFIX = "/admin"
DOCS_PREFIX = "/docs"

# -- origins --------------------------------------------------------------------------------


def parse_origin(value: str | None) -> Origin | None:
    """`scheme://host[:port]` (an Origin header, an allowed origin or a Referer) or None."""
    if not value or value == "null":
        return None
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


def format_origin(origin: Origin) -> str:
    """As browsers write it: no default port."""
    scheme, host, port = origin
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}" + ("" if port == DEFAULT_PORTS[scheme] else f":{port}")


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def request_origin(scope: Scope, headers: dict[str, str] | None = None) -> Origin | None:
    """The origin this request was sent to: its scheme and its `Host` header."""
    headers = _headers(scope) if headers is None else headers
    scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
    host = headers.get("host", "")
    if get_settings().trust_proxy_headers:
        scheme = headers.get("x-forwarded-proto", scheme).split(",")[0].strip().lower()
        host = headers.get("x-forwarded-host", host).split(",")[0].strip()
    if not host:
        server = scope.get("server")
        if not server:
            return None
        host = f"{server[0]}:{server[1]}"
    return parse_origin(f"{scheme}://{host}")


@functools.lru_cache(maxsize=1)
def allowed_origins() -> frozenset[Origin]:
    """The other origins from `SPYGLASS_ALLOWED_ORIGINS`."""
    parsed = (parse_origin(origin) for origin in get_settings().allowed_origins)
    return frozenset(origin for origin in parsed if origin is not None)


def origin_allowed(origin: str | None, scope: Scope, headers: dict[str, str] | None = None) -> bool:
    """Is `origin` this request's own origin or one of the allowed ones?"""
    parsed = parse_origin(origin)
    if parsed is None:
        return False
    return parsed == request_origin(scope, headers) or parsed in allowed_origins()


def foreign_source(scope: Scope, headers: dict[str, str]) -> str | None:
    """The other origin a browser request came from (its Origin, else its Referer), if any."""
    origin = headers.get("origin")
    if origin is None:
        referer = headers.get("referer")
        if not referer:
            return None  # not a browser (or one that tells nothing): not a cross-site request
        parsed = parse_origin(referer)
        if parsed is None:
            return None  # e.g. about:blank; browsers send Origin on cross-site posts anyway
        origin = format_origin(parsed)
    return None if origin_allowed(origin, scope, headers) else origin


def socketio_origin_allowed(origin: str | None, environ: dict[str, Any]) -> bool:
    """The same rule for engine.io's own check of `/_event` (it gets the ASGI scope)."""
    return origin_allowed(origin, environ["asgi.scope"])


def cors_origins() -> list[str]:
    """For `rxconfig.py`: the origins CORS may answer with credentials (never `*`), spelled
    as browsers send them (no default port)."""
    return sorted(format_origin(origin) for origin in allowed_origins())


# -- Content-Security-Policy -------------------------------------------------------------------

_NONCE: contextvars.ContextVar[str] = contextvars.ContextVar("spyglass_csp_nonce", default="")
_INLINE_SCRIPT = re.compile(r"<script(?P<attrs>[^>]*)>(?P<body>.*?)</script>", re.S | re.I)
_HANDLER = re.compile(r"""\son[a-z]+\s*=\s*"(?P<code>[^"{}]*)\"""", re.I)
_portal_handler_hashes: set[str] = set()


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _pages_dir() -> Path:
    from reflex.utils import prerequisites
    from reflex_base import constants
    from reflex_base.config import get_config

    folder = prerequisites.get_web_dir() / constants.Dirs.STATIC
    return (folder / get_config().frontend_path.strip("/")).resolve()


def inline_script_hashes(documents: Iterable[str]) -> list[str]:
    """CSP hashes of the inline `<script>` bodies in these HTML documents."""
    found: set[str] = set()
    for document in documents:
        for match in _INLINE_SCRIPT.finditer(document):
            if "src=" in match["attrs"] or not match["body"].strip():
                continue
            found.add(_sha256(match["body"]))
    return sorted(found)


@functools.lru_cache(maxsize=1)
def page_script_hashes() -> tuple[str, ...]:
    """The inline scripts of the built pages (React Router's boot code, Reflex's theme script).

    The pages are static files written by the build before the server starts, so the set is
    fixed for the life of the process; nothing a request sends can add to it.
    """
    folder = _pages_dir()
    if not folder.is_dir():
        return ()
    documents = (path.read_text(errors="replace") for path in sorted(folder.rglob("*.html")))
    return tuple(inline_script_hashes(documents))


def _connect_sources() -> str:
    """Where pages may connect: here, and the object store they upload to directly."""
    settings = get_settings()
    sources = ["'self'"]
    if settings.storage == "s3":
        endpoint = parse_origin(settings.s3_endpoint)
        if endpoint is None:
            sources.append("https://*.amazonaws.com")
        else:
            sources.append(f"{endpoint[0]}://{endpoint[1]}:{endpoint[2]}")
    return " ".join(sources)


def _policy(script_src: str, connect_src: str = "'self'") -> str:
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src {script_src}",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: blob:",
            "font-src 'self' data:",
            f"connect-src {connect_src}",
            "worker-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


@functools.lru_cache(maxsize=1)
def pages_policy() -> str:
    """The Reflex pages (and every answer that is neither the portal nor /docs).

    `'unsafe-eval'`: Reflex runs `rx.call_script` code and event callbacks with `eval` in the
    browser (the New task page hands files to `spyglass.js` that way).
    """
    hashes = " ".join(page_script_hashes())
    return _policy(f"'self' 'unsafe-eval' {hashes}".strip(), _connect_sources())


def portal_policy(nonce: str) -> str:
    """The starlette-admin portal: its inline scripts carry this answer's nonce; its two inline
    event handlers (`onclick`/`onchange` in its templates) are allowed by hash."""
    handlers = " ".join(sorted(_portal_handler_hashes))
    unsafe_hashes = f" 'unsafe-hashes' {handlers}" if handlers else ""
    return _policy(f"'self' 'nonce-{nonce}'{unsafe_hashes}")


DOCS_POLICY = _policy("'self'")


def csp_nonce() -> str:
    """This request's nonce (the portal's templates put it on their `<script>` tags)."""
    return _NONCE.get()


class _NonceLoader(BaseLoader):
    """Adds `nonce="{{ csp_nonce() }}"` to every `<script` tag written in the templates.

    It rewrites template *source*, not rendered output: text that reaches a page from data
    (escaped by Jinja anyway) never gets a nonce.
    """

    def __init__(self, inner: BaseLoader) -> None:
        self.inner = inner

    def get_source(self, environment: Environment, template: str) -> Any:
        source, filename, uptodate = self.inner.get_source(environment, template)
        source = re.sub(r"<script\b", '<script nonce="{{ csp_nonce() }}"', source, flags=re.I)
        return source, filename, uptodate

    def list_templates(self) -> list[str]:
        return self.inner.list_templates()


def add_script_nonces(env: Environment) -> None:
    """Make a Jinja environment's templates run under the portal's nonce-based policy."""
    assert env.loader is not None
    inner = env.loader
    for name in inner.list_templates():
        if name.endswith(".html"):
            source = inner.get_source(env, name)[0]
            for match in _HANDLER.finditer(source):
                _portal_handler_hashes.add(_sha256(html.unescape(match["code"])))
    env.loader = _NonceLoader(inner)
    env.globals["csp_nonce"] = csp_nonce
    if env.cache is not None:
        env.cache.clear()


# -- the middleware ---------------------------------------------------------------------------

STATIC_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)


#: Where the frontend build puts its scripts and styles, each file named by a hash of its
#: content: a new build gives new names, so a browser may keep them for a year unasked.
BUILD_ASSETS = "/assets/"
IMMUTABLE = (b"cache-control", b"public, max-age=31536000, immutable")


def cache_headers(path: str, status: int) -> tuple[tuple[bytes, bytes], ...]:
    """A year's cache for the build's hashed files (found ones only: a 404 may come to be)."""
    return (IMMUTABLE,) if status == 200 and path.startswith(BUILD_ASSETS) else ()


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def security_headers(policy: str) -> tuple[tuple[bytes, bytes], ...]:
    """The headers every answer gets, with this Content-Security-Policy."""
    return (*STATIC_HEADERS, (b"content-security-policy", policy.encode()))


@functools.lru_cache(maxsize=1)
def _pages_headers() -> tuple[tuple[bytes, bytes], ...]:
    return security_headers(pages_policy())


_DOCS_HEADERS = security_headers(DOCS_POLICY)


def answer_headers(path: str) -> tuple[tuple[bytes, bytes], ...]:
    """The headers an answer for `path` gets (but the portal's, whose policy carries a nonce
    made for each request): the one place they are chosen, for the middleware and for the
    direct API's lane (`spyglass.api.lane`)."""
    return _DOCS_HEADERS if _under(path, DOCS_PREFIX) else _pages_headers()


def add_headers(message: Message, added: tuple[tuple[bytes, bytes], ...]) -> None:
    """`added` to the answer's headers, but for those the app set itself."""
    headers = list(message.get("headers", ()))
    present = {name.lower() for name, _ in headers}
    headers.extend(header for header in added if header[0] not in present)
    message["headers"] = headers


def from_a_browser_page(scope: Scope) -> bool:
    """Whether the request names where it comes from (`Origin` or `Referer`): without either
    it is no cross-site request (see `foreign_source`), and nothing more need be read."""
    return any(name.lower() in (b"origin", b"referer") for name, _ in scope.get("headers", ()))


class SecurityMiddleware:
    """Origin checks and security headers around the whole app (see the module's doc)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    @property
    def routes(self) -> list[Any]:
        """The wrapped app's routes: Reflex mounts this middleware, and `url_for` (the portal's
        links) looks for route names through the mount."""
        return list(getattr(self.app, "routes", []))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        path: str = scope.get("path", "")
        token = None
        if _under(path, PORTAL_PREFIX):
            nonce = secrets.token_urlsafe(18)
            token = _NONCE.set(nonce)
            added = security_headers(portal_policy(nonce))
        else:
            added = answer_headers(path)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                add_headers(message, added + cache_headers(path, message["status"]))
            await send(message)

        try:
            if scope.get("method", "GET").upper() not in SAFE_METHODS and from_a_browser_page(
                scope
            ):
                foreign = foreign_source(scope, _headers(scope))
                if foreign is not None:
                    await _refuse(foreign, send_with_headers)
                    return
            await self.app(scope, receive, send_with_headers)
        finally:
            if token is not None:
                _NONCE.reset(token)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin = _headers(scope).get("origin")
        if origin is None or origin_allowed(origin, scope):
            await self.app(scope, receive, send)
            return
        message = await receive()  # websocket.connect
        if message["type"] != "websocket.connect":
            return
        if "websocket.http.response" in scope.get("extensions", {}):
            error = _origin_error(origin)
            start: Message = {"type": "websocket.http.response.start", "status": 403}
            start["headers"] = [(b"content-type", b"application/json")]
            add_headers(start, _pages_headers())
            await send(start)
            body = json.dumps(error.body()).encode()
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 1008})  # the server answers 403


def _origin_error(origin: str) -> DomainError:
    return DomainError(
        "ORIGIN_NOT_ALLOWED",
        f"Requests from {origin} are not allowed; the app accepts them only from its own "
        "origin and SPYGLASS_ALLOWED_ORIGINS",
        403,
    )


async def _refuse(origin: str, send: Send) -> None:
    error = _origin_error(origin)
    body = json.dumps(error.body()).encode()
    await send(
        {
            "type": "http.response.start",
            "status": error.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def guard(app: ASGIApp) -> ASGIApp:
    """For `rx.App(api_transformer=[api, guard])`: wrap the whole app."""
    return SecurityMiddleware(app)


def protect_event_socket(sio: Any) -> None:
    """Give Reflex's socket.io server the same origin rule.

    Reflex hands it `cors_allowed_origins` as a list; engine.io then refuses the app's own
    origin unless it is listed (and with an empty list it checks nothing). A callable keeps
    the app's pages working on any host and port and refuses the rest.
    """
    if sio is not None:
        sio.eio.cors_allowed_origins = socketio_origin_allowed
