"""The model portal at `/admin/…` (starlette-admin): browse tasks, events, users and tokens.

Behind the same sign-in as the pages, checked on the server for every request:
signed-out visitors go to /login, signed-in non-admins get 403. Tasks, events and
tokens are read-only here (the engine and the dashboard own their changes, so that
cancellation and revocation take effect everywhere); users' role (admin, operator,
viewer, user) and credits are editable: an admin sets roles here. Secrets (password and
token hashes) are never shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse
from jinja2 import DictLoader
from sqlalchemy import Engine
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette_admin.contrib.sqla import Admin, ModelView
from starlette_admin.contrib.sqla.converters import ModelConverter, converts
from starlette_admin.events import AdminEvent, AfterEditContext, EventContext
from starlette_admin.fields import BaseField, EnumField, FloatField, TagsField

from spyglass import audit
from spyglass.api import security
from spyglass.api.auth import session_user
from spyglass.auth.models import ClientToken, User
from spyglass.tasks.access import ROLES, can_manage_users
from spyglass.tasks.models import Task, TaskEvent


class AdminOnly:
    """ASGI guard in front of the portal."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        user = await session_user(request)
        response: Any
        if user is None:
            target = quote(request.url.path.rstrip("/") or "/")
            response = RedirectResponse(f"/login?next={target}", status_code=303)
        elif not can_manage_users(user):
            response = JSONResponse(
                {"detail": "Admins only", "error_code": "FORBIDDEN"}, status_code=403
            )
        else:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)


class Converter(ModelConverter):
    """starlette-admin misses SQLAlchemy 2.1's Float (no longer a Numeric subclass)."""

    @converts("Float", "Double")
    def conv_float(self, *args: Any, **kwargs: Any) -> BaseField:
        return FloatField(**self._field_common(*args, **kwargs))


CONVERTER = Converter()

#: `fields` as starlette-admin's SQLAlchemy `ModelView` takes them: column names, model
#: attributes or fields, which its converter turns into fields (`convert_fields_list` takes a
#: `Sequence[Any]`); `BaseModelView` annotates only the result, `Sequence[BaseField]`.
ModelFields = Sequence[Any]


class ReadOnlyView(ModelView):
    def can_create(self, request: Request) -> bool:
        return False

    def can_edit(self, request: Request) -> bool:
        return False

    def can_delete(self, request: Request) -> bool:
        return False


#: The task's columns as the portal shows them: the agents as a row of names (not JSON).
_SHOWN_FIRST = ("id", "state_name", "task_name", "tool_id", "agents")
TASK_FIELDS: ModelFields = [
    *_SHOWN_FIRST[:4],
    TagsField("agents", label="Agents", read_only=True),
    *(name for name in Task.model_fields if name not in _SHOWN_FIRST),
]


class TaskView(ReadOnlyView):
    fields = TASK_FIELDS
    # The JSON columns are read on a task's own page, not squeezed into the list.
    exclude_fields_from_list = ["input_args", "result"]
    fields_default_sort = [("created_at", True)]
    searchable_fields = ["id", "state_name", "task_name", "status"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # SQLModel's AutoString has no python_type; the task id is a uuid4 string.
        self._pk_coerce = str


class TaskEventView(ReadOnlyView):
    exclude_fields_from_list = ["data"]
    fields_default_sort = [("id", True)]
    searchable_fields = ["task_id", "event_type", "message"]


class UserView(ModelView):
    # Listed explicitly: the password hash is never loaded into the portal at all.
    fields: ModelFields = [
        "id",
        "email",
        EnumField(
            "role",
            label="Role",
            choices=[(role, role.capitalize()) for role in ROLES],
            required=True,
            help_text="admin: everything; operator: acts on every task, no user management; "
            "viewer: reads every task, changes nothing; user: own tasks",
        ),
        "credits",
        "created_at",
    ]
    exclude_fields_from_edit = ["created_at"]
    searchable_fields = ["email"]

    def can_create(self, request: Request) -> bool:
        return False  # accounts are made by /register or the bootstrap admin

    def can_delete(self, request: Request) -> bool:
        return False


#: A user's fields whose change the audit log records, and as what.
USER_CHANGES: dict[str, audit.Action] = {
    "role": "user.role_change",
    "credits": "user.credit_change",
    "email": "user.email_change",
}


async def record_user_edit(ctx: EventContext) -> None:
    """An admin's edit of a user, once committed: one audit row per field that changed,
    old and new value (a save that changed nothing records nothing)."""
    assert isinstance(ctx, AfterEditContext)
    actor = await session_user(ctx.request)
    for name, action in USER_CHANGES.items():
        old, new = ctx.old_data.get(name), getattr(ctx.obj, name, None)
        if old != new:
            detail = {"field": name, "old": old, "new": new, "email": ctx.obj.email}
            await audit.record(ctx.request, actor, action, "user", ctx.obj.id, detail)


class AuditEventView(ReadOnlyView):
    """The audit log, read-only (as everywhere in the app)."""

    fields_default_sort = [("id", True)]
    exclude_fields_from_list = ["detail", "user_agent"]
    searchable_fields = ["actor_email", "action", "target_type", "target_id", "ip"]


class ClientTokenView(ReadOnlyView):
    fields: ModelFields = [
        "id",
        "prefix",
        "name",
        "owner_id",
        "created_by",
        "scopes",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]


# starlette-admin's base.html imports a web font from another site: use the system's fonts
# (nothing loaded from outside: works offline and under the portal's CSP). Also: the JSON
# viewer's pale "N items" and the red button's text reach 4.5:1 contrast, and the page's
# content is its main landmark.
BASE_TEMPLATE = """{% extends "@core/base.html" %}
{% block fonts %}<style>
:root { --tblr-font-sans-serif: -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto,
  "Helvetica Neue", Arial, sans-serif; }
a.json-placeholder { color: #5c5f66 !important; }
.btn-danger { --tblr-btn-bg: #c22f2f; background-color: #c22f2f; }
</style>{% endblock %}
{% block head_meta %}<script>
document.addEventListener("DOMContentLoaded", () => {
  document.querySelector(".page-wrapper")?.setAttribute("role", "main");
});
</script>{% endblock %}
"""

# The edit form's "Save and add another" opens the create form, which these views do not
# offer (403): show it only where creating is allowed.
FORM_FOOTER_TEMPLATE = """<div class="card-footer text-black">
    <div class="btn-list ms-auto justify-content-end">
        <a href="{{ back_url(request, view.key) }}"
           class="{{ cls('form.cancel_button') }}">
            <i class="{{ icon('form.cancel') }} sa-animate-icon me-1"></i>{{ _("Cancel") }}
        </a>
        {% if view.can_create(request) %}
        <button type="submit"
                name="_add_another"
                class="{{ cls('form.save_add_button') }}">{{ _("Save and add another") }}</button>
        {% endif %}
        <button type="submit"
                name="_continue_editing"
                class="{{ cls('form.save_continue_button') }}"
        >{{ _("Save and continue editing") }}</button>
        <button type="submit" class="{{ cls('form.save_button') }}">
            {{ _("Save") }}
            <i class="{{ icon('form.save') }} sa-animate-icon ms-1"></i>
        </button>
    </div>
</div>
"""


def mount_portal(api: FastAPI, engine: Engine, secret_key: str) -> None:
    admin = Admin(
        engine,
        title="SpyGlass models",
        secret_key=secret_key,
        base_url="/admin",
        middlewares=[Middleware(AdminOnly)],
        additional_loaders=[
            DictLoader({"base.html": BASE_TEMPLATE, "_form_footer.html": FORM_FOOTER_TEMPLATE})
        ],
    )
    security.add_script_nonces(admin.templates.env)  # its inline scripts run under the CSP
    admin.add_view(TaskView(Task, key="task", converter=CONVERTER, menu_label="Tasks"))
    admin.add_view(
        TaskEventView(TaskEvent, key="task-event", converter=CONVERTER, menu_label="Task events")
    )
    users = UserView(User, key="user", converter=CONVERTER, menu_label="Users")
    users.events.on(AdminEvent.AFTER_EDIT_COMMITTED, record_user_edit)
    admin.add_view(users)
    admin.add_view(
        ClientTokenView(
            ClientToken, key="client-token", converter=CONVERTER, menu_label="Client tokens"
        )
    )
    admin.add_view(
        AuditEventView(
            audit.AuditEvent, key="audit-event", converter=CONVERTER, menu_label="Audit log"
        )
    )

    async def task_portal_home(request: Request) -> RedirectResponse:
        return RedirectResponse("/admin/task/list", status_code=307)

    # Inside the admin app, so the guard covers it too.
    admin.routes.insert(0, Route("/task/", task_portal_home))
    admin.mount_to(api)
