"""The webhooks page's state: a user's endpoints (an admin's: everyone's), registering one
with the events it wants, its delivery log, "send again" and "send test event".

Every action goes through the webhooks service, which checks ownership on the server (and
refuses internal targets); the new endpoint's secret is shown once, right after it is made.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import reflex as rx

from spyglass import audit
from spyglass.auth.service import UserInfo
from spyglass.errors import DomainError
from spyglass.states.auth import current_user
from spyglass.tasks.access import is_admin
from spyglass.webhooks.service import EVENT_TYPES, DeliveryView, EndpointView, get_webhooks

#: The form's checkbox for each event type (`event_completed` …).
EVENT_FIELDS = {f"event_{e.removeprefix('task.')}": e for e in EVENT_TYPES}


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


@dataclass
class EndpointRow:
    id: int = 0
    url: str = ""
    description: str = ""
    events: str = ""
    all_tasks: bool = False
    enabled: bool = True
    disabled_reason: str = ""
    created_at: str = ""


@dataclass
class DeliveryRow:
    id: str = ""
    event_type: str = ""
    task_id: str = ""
    state: str = ""
    attempts: int = 0
    last_status: str = ""
    created_at: str = ""
    next_attempt_at: str = ""
    log: str = ""


def _endpoint_row(e: EndpointView) -> EndpointRow:
    return EndpointRow(
        id=e.id,
        url=e.url,
        description=e.description,
        events=", ".join(e.events),
        all_tasks=e.all_tasks,
        enabled=e.enabled,
        disabled_reason=e.disabled_reason or "",
        created_at=_when(e.created_at),
    )


def _attempt_line(d: DeliveryView) -> str:
    lines = []
    for a in d.log:
        outcome = str(a.status_code) if a.status_code is not None else (a.error or "no answer")
        lines.append(f"#{a.attempt} {_when(a.at)}: {outcome} in {a.latency_ms} ms")
    return "\n".join(lines)


def _delivery_row(d: DeliveryView) -> DeliveryRow:
    last = str(d.last_status_code) if d.last_status_code is not None else (d.last_error or "")
    return DeliveryRow(
        id=d.id,
        event_type=d.event_type,
        task_id=d.task_id or "",
        state=d.state,
        attempts=d.attempts,
        last_status=last,
        created_at=_when(d.created_at),
        next_attempt_at=_when(d.next_attempt_at),
        log=_attempt_line(d),
    )


class WebhooksState(rx.State):
    endpoints: list[EndpointRow] = []
    deliveries: list[DeliveryRow] = []
    #: The endpoint whose delivery log is shown (0: none).
    selected: int = 0
    selected_url: str = ""
    payload: str = ""
    new_secret: str = ""
    error: str = ""
    admin: bool = False

    async def _user(self) -> UserInfo | None:
        return await current_user(self)

    @rx.event
    async def load(self) -> None:
        await self._load()

    async def _load(self) -> None:
        user = await self._user()
        if user is None:
            self.endpoints, self.deliveries = [], []
            return
        self.admin = is_admin(user)
        self.endpoints = [_endpoint_row(e) for e in await get_webhooks().list_endpoints(user)]
        if self.selected and all(e.id != self.selected for e in self.endpoints):
            self.selected, self.deliveries = 0, []
        if self.selected:
            await self._load_log(user)

    async def _load_log(self, user: UserInfo) -> None:
        found, _total = await get_webhooks().deliveries(self.selected, user, limit=50)
        self.deliveries = [_delivery_row(d) for d in found]

    @rx.event
    async def create(self, form: dict[str, Any]) -> Any:
        user = await self._user()
        if user is None:
            return rx.toast.error("Sign in first.")
        events = [event for name, event in EVENT_FIELDS.items() if form.get(name)]
        try:
            endpoint, secret = await get_webhooks().create(
                user,
                str(form.get("url") or "").strip(),
                events,
                description=str(form.get("description") or "").strip()[:200],
                all_tasks=bool(form.get("all_tasks")),
            )
        except DomainError as exc:
            self.error = exc.message
            return None
        detail = {"host": urlsplit(endpoint.url).hostname or "", "events": events}
        await audit.record(self, user, "webhook.create", "webhook", endpoint.id, detail)
        self.error = ""
        self.new_secret = secret
        await self._load()
        return rx.toast.success("Endpoint added.")

    @rx.event
    def dismiss_secret(self) -> None:
        self.new_secret = ""

    @rx.event
    async def show_log(self, endpoint_id: int) -> Any:
        return await self._show_log(endpoint_id)

    async def _show_log(self, endpoint_id: int) -> Any:
        user = await self._user()
        if user is None:
            return None
        try:
            endpoint = await get_webhooks().get(endpoint_id, user)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self.selected, self.selected_url, self.payload = endpoint.id, endpoint.url, ""
        await self._load_log(user)
        return None

    @rx.event
    async def refresh_log(self) -> None:
        user = await self._user()
        if user is not None and self.selected:
            await self._load_log(user)

    @rx.event
    async def send_test(self, endpoint_id: int) -> Any:
        user = await self._user()
        if user is None:
            return None
        try:
            await get_webhooks().send_test(endpoint_id, user)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        await self._show_log(endpoint_id)
        return rx.toast.success("Test event queued: refresh the log to see how it went.")

    @rx.event
    async def resend(self, delivery_id: str) -> Any:
        user = await self._user()
        if user is None:
            return None
        try:
            await get_webhooks().resend(delivery_id, user)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        await self._load_log(user)
        return rx.toast.success("Sent again.")

    @rx.event
    async def set_enabled(self, endpoint_id: int, enabled: bool) -> Any:
        user = await self._user()
        if user is None:
            return None
        try:
            await get_webhooks().update(endpoint_id, user, enabled=enabled)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        action = audit.webhook_action(["enabled"], enabled)
        await audit.record(self, user, action, "webhook", endpoint_id, {"enabled": enabled})
        await self._load()
        return None

    @rx.event
    async def delete(self, endpoint_id: int) -> Any:
        user = await self._user()
        if user is None:
            return None
        try:
            await get_webhooks().delete(endpoint_id, user)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        await audit.record(self, user, "webhook.delete", "webhook", endpoint_id)
        await self._load()
        return rx.toast.success("Endpoint deleted.")

    @rx.event
    async def show_payload(self, delivery_id: str) -> Any:
        user = await self._user()
        if user is None:
            return None
        try:
            found = await get_webhooks().delivery(delivery_id, user)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self.payload = json.dumps(json.loads(found.payload), indent=2)
        return None
