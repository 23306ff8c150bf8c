"""State of the audit log page `/admins/audit`: the log, newest first, filtered and paged.

Read-only: the page offers no action on a row. Every event checks on the server that the
browser's user is an admin; a non-admin's page never loads any row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import reflex as rx

from spyglass import audit
from spyglass.states.auth import current_user
from spyglass.tasks.access import is_admin

PAGE_SIZE = 50
ALL = ""
#: The action filter's options: every family, then every action.
ACTION_CHOICES = [ALL, *audit.FAMILIES, *audit.ACTIONS]
TARGET_CHOICES = [ALL, *audit.TARGET_TYPES]


@dataclass
class AuditRow:
    id: int = 0
    at: str = ""
    actor: str = ""
    credential: str = ""
    action: str = ""
    target: str = ""
    detail: str = ""
    ip: str = ""
    user_agent: str = ""


def audit_row(view: audit.AuditView) -> AuditRow:
    target = view.target_type + (f" {view.target_id}" if view.target_id else "")
    detail = json.dumps(view.detail, ensure_ascii=False) if view.detail else ""
    return AuditRow(
        id=view.id,
        at=view.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        actor=view.actor_email,
        credential=view.credential,
        action=view.action,
        target=target,
        detail=detail,
        ip=view.ip,
        user_agent=view.user_agent,
    )


def _day(raw: str) -> datetime | None:
    """A date input's value (YYYY-MM-DD) as the start of that day, UTC (None: none, or not
    a date)."""
    try:
        return datetime.strptime(raw.strip(), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None


class AuditState(rx.State):
    rows: list[AuditRow] = []
    total: int = 0
    offset: int = 0
    has_more: bool = False
    loading: bool = True
    forbidden: bool = False
    actor: str = ""
    action: str = ALL
    target_type: str = ALL
    target_id: str = ""
    #: Days (YYYY-MM-DD, UTC), both included.
    since: str = ""
    until: str = ""

    def _filter(self) -> audit.AuditFilter:
        since, until = _day(self.since), _day(self.until)
        return audit.AuditFilter(
            actor=self.actor or None,
            action=self.action or None,
            target_type=self.target_type or None,
            target_id=self.target_id or None,
            since=since,
            until=until + timedelta(days=1) if until else None,
        )

    @rx.var
    def csv_url(self) -> str:
        """The CSV export of what the filters select (the browser's session signs it)."""
        flt = self._filter()
        params: dict[str, str] = {}
        for name in ("actor", "action", "target_type", "target_id"):
            value = getattr(flt, name)
            if value:
                params[name] = value
        if flt.since:
            params["since"] = flt.since.isoformat()
        if flt.until:
            params["until"] = flt.until.isoformat()
        query = urlencode(params)
        return "/api/admin/audit.csv" + (f"?{query}" if query else "")

    @rx.var
    def summary(self) -> str:
        if self.total == 0:
            return "No events match."
        last = self.offset + len(self.rows)
        noun = "event" if self.total == 1 else "events"
        return f"{self.offset + 1}–{last} of {self.total} {noun}, newest first"

    async def _load(self) -> None:
        user = await current_user(self)
        if not is_admin(user):
            self.forbidden, self.loading, self.rows, self.total = True, False, [], 0
            return
        self.forbidden = False
        found, total = await audit.search(self._filter(), limit=PAGE_SIZE, offset=self.offset)
        self.rows = [audit_row(v) for v in found]
        self.total = total
        self.has_more = self.offset + len(found) < total
        self.loading = False

    @rx.event
    async def load(self) -> None:
        self.offset = 0
        await self._load()

    @rx.event
    async def apply(self, form: dict[str, Any]) -> None:
        """The filter form: every field at once."""
        self.actor = str(form.get("actor") or "").strip()[:320]
        action = str(form.get("action") or "")
        self.action = action if action in ACTION_CHOICES else ALL
        target_type = str(form.get("target_type") or "")
        self.target_type = target_type if target_type in TARGET_CHOICES else ALL
        self.target_id = str(form.get("target_id") or "").strip()[:100]
        self.since = str(form.get("since") or "")[:10] if _day(str(form.get("since") or "")) else ""
        self.until = str(form.get("until") or "")[:10] if _day(str(form.get("until") or "")) else ""
        self.offset = 0
        await self._load()

    @rx.event
    async def clear(self) -> None:
        self.actor = self.action = self.target_type = self.target_id = ""
        self.since = self.until = ""
        self.offset = 0
        await self._load()

    @rx.event
    async def next_page(self) -> None:
        if self.has_more:
            self.offset += PAGE_SIZE
            await self._load()

    @rx.event
    async def prev_page(self) -> None:
        if self.offset > 0:
            self.offset = max(0, self.offset - PAGE_SIZE)
            await self._load()
