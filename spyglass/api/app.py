"""The FastAPI app with SpyGlass's HTTP and WebSocket routes (Reflex is mounted under it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp

from spyglass.api import (
    audit_log,
    bulk,
    direct,
    docs,
    files,
    health,
    logs,
    portal,
    rest,
    retention,
    session,
    sockets,
    tokens,
    webhooks,
)
from spyglass.api.errors import MethodNotAllowed, complete_error_answers, install_error_handlers
from spyglass.api.page_guard import PageGuard
from spyglass.tasks.engine import get_engine

DESCRIPTION = """
SpyGlass runs long background tasks and streams their progress.

* **Direct endpoints** (no token): start a direct job with
  `POST /api/{state_name}/task/start/{task_name}` and a JSON body that fits the job's input
  model; read it with `GET /api/{state_name}/task/result/{task_id}`.
* **WebSocket** `ws://HOST/ws/{state_name}/task/ws/{task_id}`: one JSON object per change,
  the current state first; closes 1000 after the final message, 1008 for an unknown task.
"""


def complete_openapi(api: FastAPI) -> None:
    """/openapi.json with what only the registry knows: each job's input model, and the
    exact bodies `POST /api/tasks` takes (a tool and its agents, or a job and its input)."""
    base = api.openapi

    def openapi() -> dict[str, Any]:
        if not api.openapi_schema:
            document = base()
            direct.add_job_schemas(document)
            rest.add_create_task_schema(document)
            complete_error_answers(document, api)
            api.openapi_schema = document
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]


def create_api() -> FastAPI:
    """Build the API; call after the states that declare jobs have been imported."""
    api = FastAPI(
        title="SpyGlass", version="0.1.0", description=DESCRIPTION, docs_url=None, redoc_url=None
    )
    docs.mount_docs(api)  # Swagger UI served from here, not a CDN
    install_error_handlers(api)
    health.add_routes(api.router)
    direct.add_routes(api.router)  # the app's own routes: each start and result read
    api.include_router(sockets.router)
    api.include_router(tokens.router)
    api.include_router(bulk.router)  # before rest's /api/tasks/{task_id}/… routes
    api.include_router(rest.router)
    api.include_router(webhooks.router)
    api.include_router(retention.router)
    api.include_router(retention.search_router)
    api.include_router(logs.router)
    api.include_router(audit_log.router)
    api.include_router(rest.tools_router)
    api.include_router(files.router)
    api.include_router(session.router)
    complete_openapi(api)
    engine = get_engine()
    portal.mount_portal(api, engine.database, engine.settings.secret_key)
    return api


def beneath(api: FastAPI) -> Callable[[ASGIApp], ASGIApp]:
    """For `rx.App(api_transformer=[beneath(api), api, …])`: what wraps the app the API mounts
    beneath its routes (Reflex's pages, `/_event`), which a request reaches only when no
    route of the API takes it. The page guard there guards the pages and nothing else; a
    path of the API with a method it does not take is answered 405 with its real `Allow`
    there, not whatever Reflex would answer, at no cost to the requests the API serves."""

    def wrap(reflex: ASGIApp) -> ASGIApp:
        return MethodNotAllowed(PageGuard(reflex), router=api.router)

    return wrap
