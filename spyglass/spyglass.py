"""The Reflex app: pages, the API mounted above Reflex's own routes, and the engine's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import reflex as rx
from reflex.app import _ContextMiddleware
from reflex_base import otel
from starlette.types import ASGIApp

from spyglass import (
    metrics,  # first: it picks the metrics folder before prometheus loads
    retention,
)
from spyglass.api import security
from spyglass.api.app import beneath, create_api
from spyglass.api.front import FrontDoor
from spyglass.api.lane import Lane
from spyglass.auth.service import get_auth
from spyglass.config import get_settings
from spyglass.frontend import lazy_toaster
from spyglass.jobs import load_jobs
from spyglass.pages.admin import admin_page
from spyglass.pages.audit import audit_page
from spyglass.pages.developers import developers_page
from spyglass.pages.login import login_page, register_page
from spyglass.pages.new_task import new_task_page
from spyglass.pages.not_found import not_found_page
from spyglass.pages.results import results_page
from spyglass.pages.task_detail import task_detail_page
from spyglass.pages.tasks import tasks_page
from spyglass.pages.webhooks import webhooks_page
from spyglass.states.admin import AdminState
from spyglass.states.audit import AuditState
from spyglass.states.auth import AuthState
from spyglass.states.billing import BillState
from spyglass.states.new_task import NewTaskState
from spyglass.states.results import ResultsState
from spyglass.states.task_detail import TaskDetailState
from spyglass.states.tasks_page import TasksPageState
from spyglass.states.tokens import TokenState
from spyglass.states.webhooks import WebhooksState
from spyglass.tasks.engine import get_engine
from spyglass.tools import uploads
from spyglass.webhooks import service as webhooks

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

load_jobs()  # jobs must be declared before the API is built


@contextlib.asynccontextmanager
async def engine_lifespan() -> AsyncIterator[None]:
    engine = get_engine()
    metrics.install(engine)
    hooks = webhooks.install(engine)
    await engine.start()
    settings = get_settings()
    await get_auth().warm_up()
    await get_auth().bootstrap_admin(settings.admin_email, settings.admin_password)
    background = [
        asyncio.create_task(uploads.sweep_forever(settings.upload_expiry)),
        asyncio.create_task(hooks.run_forever(), name="spyglass-webhooks"),
        asyncio.create_task(retention.sweep_forever(engine), name="spyglass-retention"),
    ]
    try:
        yield
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await engine.stop()
        metrics.worker_stopped()


api = create_api()


class SpyGlassApp(rx.App):
    def __call__(self) -> ASGIApp:
        """The ASGI app Reflex builds, behind a front door that sends the API's own paths to
        the API directly (still behind the security middleware, with Reflex's contexts set)."""
        whole = super().__call__()
        # Reflex's contexts set for each request, as Reflex's own app does in front of all.
        direct: ASGIApp = _ContextMiddleware(security.guard(api), reflex_app=self)
        tracing = otel.asgi_middleware
        if tracing is not None:  # traced like the rest (each socket frame too)
            direct = tracing(direct)
        # Untraced, a script's token-free start or result read skips the layers between.
        lane = Lane(api, self._set_contexts_internal) if tracing is None else None
        return FrontDoor(
            whole, direct, wrap=security.guard, raw_socket_sends=tracing is None, lane=lane
        )


# The page guard and the API's 405s in front of Reflex's routes, the API above them, then the
# origin checks and security headers around it all.
app = SpyGlassApp(
    api_transformer=[beneath(api), api, security.guard],
    theme=rx.theme(accent_color="indigo"),
    stylesheets=["/spyglass.css"],  # phones and contrast (see the file)
    toaster=lazy_toaster(),  # sonner loads with the first toast (spyglass/frontend.py)
    head_components=[
        # uploads and the account forms; a plain element in the prerendered head (rx.script
        # would add react-helmet, 5 KB gzipped, to every page's JS)
        rx.el.script(src="/spyglass.js", defer=True),
        rx.el.link(rel="icon", href="/favicon.ico", sizes="any"),
    ],
)
security.protect_event_socket(app.sio)
app.register_lifespan_task(engine_lifespan)
app.add_page(
    login_page, route="/login", title="Sign in · SpyGlass", on_load=AuthState.redirect_if_signed_in
)
app.add_page(
    register_page,
    route="/register",
    title="Register · SpyGlass",
    on_load=AuthState.redirect_if_signed_in,
)
# A page's data and live feeds start in `on_load`, not in a component's `on_mount`: Reflex runs
# the page's on_load again whenever its socket reconnects (a server restart, a network
# drop), and the feeds of the server before are gone; a mounted component mounts only once.
app.add_page(
    tasks_page,
    route="/tasks",
    title="Tasks · SpyGlass",
    on_load=[AuthState.require_user, TasksPageState.open, TokenState.load],
)
app.add_page(
    new_task_page,
    route="/",
    title="New task · SpyGlass",
    on_load=[AuthState.require_user, NewTaskState.load],
)
app.add_page(
    task_detail_page,
    route="/tasks/[task_id]",
    title="Task · SpyGlass",
    on_load=[AuthState.require_user, TaskDetailState.watch, BillState.follow],  # each task's URL
)
app.add_page(
    results_page,
    route="/task/[task_id]/results",
    title="Results · SpyGlass",
    on_load=[AuthState.require_user, ResultsState.load, BillState.follow],
)
app.add_page(
    admin_page,
    route="/admins/tasks",
    title="Admin · SpyGlass",
    on_load=[AuthState.require_admin, AdminState.watch, AdminState.load_credits, TokenState.load],
)
app.add_page(
    audit_page,
    route="/admins/audit",
    title="Audit log · SpyGlass",
    on_load=[AuthState.require_admin, AuditState.load],
)
app.add_page(
    webhooks_page,
    route="/webhooks",
    title="Webhooks · SpyGlass",
    on_load=[AuthState.require_user, WebhooksState.load],
)
app.add_page(
    developers_page,
    route="/developers",
    title="Developers · SpyGlass",
    on_load=AuthState.require_user,
)
app.add_page(
    not_found_page, route="404", title="Page not found · SpyGlass", on_load=AuthState.identify
)
