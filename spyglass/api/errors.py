"""Client errors as `{"detail": str, "error_code": str[, "context"]}` with the right status.

One source of truth for what an error looks like on the wire and in /openapi.json: the
handlers below produce `ErrorBody` (and `ValidationErrorBody` for 422), and `responses()`
declares them on the routes, so that the document lists every answer a route can give.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.routing import Match, Mount, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from spyglass.errors import DomainError

log = logging.getLogger(__name__)

VALIDATION_ERROR = "VALIDATION_ERROR"


class ErrorBody(BaseModel):
    """Every error answer except validation's 422."""

    detail: str = Field(examples=["Task '7f0c…' not found"])
    error_code: str = Field(examples=["TASK_NOT_FOUND"])
    context: dict[str, Any] | None = Field(
        default=None, description="Machine-readable details (e.g. `retry_after`, a shortfall)"
    )


class ValidationIssue(BaseModel):
    """One problem with the request, as Pydantic reports it."""

    loc: list[str | int] = Field(examples=[["body", "age"]])
    msg: str = Field(examples=["Input should be less than or equal to 200"])
    type: str = Field(examples=["less_than_equal"])
    input: Any = None
    ctx: dict[str, Any] | None = None


class ValidationErrorBody(BaseModel):
    """422: the request does not fit the documented parameters or body."""

    detail: list[ValidationIssue]
    error_code: str = Field(default=VALIDATION_ERROR, examples=[VALIDATION_ERROR])


#: What each error status means on this API (the description in /openapi.json).
ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "The request is well formed but refused (the error code says why)",
    401: "No valid client token (`NOT_AUTHENTICATED`, `INVALID_TOKEN`)",
    402: "Not enough credits (`context`: available, required, shortfall)",
    403: "Not allowed for this caller or job (`FORBIDDEN`), the client token lacks the "
    "route's scope or its owner's role does (`INSUFFICIENT_SCOPE`), or sent from another "
    "site (`ORIGIN_NOT_ALLOWED`)",
    404: "No such resource, or not one the caller may see",
    409: "The resource is not in a state that allows this",
    413: "The upload is larger than allowed",
    415: "The body is not of a media type this route takes",
    422: "The parameters or body do not fit the schema",
    429: "Too many requests (`RATE_LIMITED`); wait `Retry-After` seconds",
    503: "A dependency is down",
}

RETRY_AFTER_HEADER: dict[str, Any] = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "integer", "minimum": 1},
    }
}


def error_answer(status: int, description: str | None = None) -> dict[str, Any]:
    """One error answer in /openapi.json: its JSON model (always JSON, whatever the route's
    own answers are), its meaning and, for 429, the `Retry-After` header."""
    model = ValidationErrorBody if status == 422 else ErrorBody
    answer: dict[str, Any] = {
        "description": description or ERROR_DESCRIPTIONS[status],
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
        },
    }
    if status == 429:
        answer["headers"] = RETRY_AFTER_HEADER
    return answer


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: each error status with its model and meaning (the models
    are put in the document's components by `complete_error_answers`)."""
    return {status: error_answer(status) for status in statuses}


#: The answers every route authenticated with a client token can give (403: its scope).
TOKEN_ERRORS = (401, 403, 429)


def complete_error_answers(document: dict[str, Any], api: FastAPI) -> None:
    """The answers routes give without declaring them, as they are answered: the 422 FastAPI
    documents by itself (as `ValidationErrorBody`; FastAPI's `HTTPValidationError` is
    dropped), the 400 of a JSON body FastAPI cannot read (not UTF-8), and the 403
    ORIGIN_NOT_ALLOWED of the security middleware on every state-changing operation (sent
    from another site's page)."""
    reads_body = _operations_reading_a_body(api)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for model in (ErrorBody, ValidationErrorBody):
        ours = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in ours.pop("$defs", {}).items():
            schemas.setdefault(name, sub)
        schemas.setdefault(model.__name__, ours)
    theirs = "#/components/schemas/HTTPValidationError"
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            answers = operation.setdefault("responses", {})
            if method.upper() not in ("GET", "HEAD", "OPTIONS") and "403" not in answers:
                answers["403"] = error_answer(403)
            if (method, path) in reads_body and "400" not in answers:
                answers["400"] = error_answer(400, "The body could not be read (`BAD_REQUEST`)")
            answer = answers.get("422")
            content = (answer or {}).get("content", {}).get("application/json", {})
            if content.get("schema", {}).get("$ref") == theirs:
                content["schema"] = {"$ref": f"#/components/schemas/{ValidationErrorBody.__name__}"}
                answer["description"] = ERROR_DESCRIPTIONS[422]
    for name in ("HTTPValidationError", "ValidationError"):  # FastAPI's, if now unused
        dropped = schemas.pop(name, None)
        if dropped is not None and f'"#/components/schemas/{name}"' in json.dumps(document):
            schemas[name] = dropped


def _operations_reading_a_body(api: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of the routes whose JSON body FastAPI itself reads."""
    found: set[tuple[str, str]] = set()
    for route in iter_route_contexts(api.routes):
        original, path = route.original_route, route.path_format
        if isinstance(original, APIRoute) and original.body_field is not None and path:
            found |= {(method.lower(), path) for method in route.methods or ()}
    return found


def validation_body(errors: Any) -> dict[str, Any]:
    return {"detail": jsonable_encoder(errors), "error_code": VALIDATION_ERROR}


def http_code(status: int) -> str:
    """`NOT_FOUND`, `METHOD_NOT_ALLOWED`, … for the framework's own answers."""
    try:
        return HTTPStatus(status).name
    except ValueError:
        return f"HTTP_{status}"


def install_error_handlers(api: FastAPI) -> None:
    @api.exception_handler(DomainError)
    async def _domain_error(_request: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers() or None)

    @api.exception_handler(HTTPException)
    async def _http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        """The framework's own refusals (e.g. a body that is not UTF-8) in the same shape."""
        return JSONResponse(
            {"detail": str(exc.detail), "error_code": http_code(exc.status_code)},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @api.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(validation_body(exc.errors()), status_code=422)

    @api.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            {"detail": "Internal server error", "error_code": "INTERNAL_ERROR"}, status_code=500
        )


class MethodNotAllowed:
    """A path of the API with a method none of its routes takes: 405 with their real `Allow`.

    It sits in front of the app the API mounts beneath its routes (Reflex: pages, `/_event`),
    the only place such a request reaches: the API's router hands a request there when none
    of its own routes fully matches it. Without this it would get whatever Reflex answers
    (404, or the pages' `405 Allow: GET, HEAD`), which says nothing true about the API. A
    request a route takes never pays for the check; one for a page or an asset pays for it
    only when its first path segment is one the API's routes begin with.
    """

    def __init__(self, app: ASGIApp, router: Router) -> None:
        self.app = app
        self.router = router
        self._routes: list[Any] | None = None
        #: First path segments of the API's routes (None: a route begins with a parameter).
        self._heads: frozenset[str] | None = None

    def _index(self) -> list[Any]:
        """The API's routes (those of included routers too), built once: they are all added
        before the server starts (mounts, Reflex's and the portal's, route for themselves)."""
        if self._routes is None:
            top = [r for r in self.router.routes if not isinstance(r, Mount)]
            routes = [
                route
                for route in iter_route_contexts(top)
                if not isinstance(route.original_route, Mount)
            ]
            heads: set[str] | None = set()
            for route in routes:
                path = route.path_format or ""
                head = path[1:].partition("/")[0]
                if heads is not None and "{" not in head:
                    heads.add(head)
                else:
                    heads = None
            self._heads = None if heads is None else frozenset(heads)
            self._routes = routes
        return self._routes

    def allowed(self, scope: Scope) -> set[str] | None:
        """The methods of the API's routes for this path, unless one takes this method."""
        routes = self._index()
        heads = self._heads
        if heads is not None:
            path: str = scope["path"]
            root: str = scope.get("root_path", "")
            if root and path.startswith(root + "/"):  # the path as the routes see it
                path = path[len(root) :]
            if path[1:].partition("/")[0] not in heads:
                return None  # a page or an asset: no route of the API begins so
        methods: set[str] = set()
        for route in routes:
            match = route.matches(scope)[0]
            if match is Match.FULL:
                return None
            if match is Match.PARTIAL:
                methods |= route.methods or set()
        return methods or None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            allowed = self.allowed(scope)
            if allowed is not None:
                response = JSONResponse(
                    {"detail": "Method Not Allowed", "error_code": http_code(405)},
                    status_code=405,
                    headers={"Allow": ", ".join(sorted(allowed))},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
    """The API's 404 body, for what no route can take."""
    body = {"detail": "Not Found", "error_code": http_code(404)}
    await JSONResponse(body, status_code=404)(scope, receive, send)
