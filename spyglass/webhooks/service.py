"""Webhook endpoints, their outbox of deliveries, and the sender that empties it.

A task's status change (the engine's `on_status` hook) or progress (`on_progress`,
throttled per task) becomes one `webhook_delivery` row per endpoint that wants it, stored
before anything is sent, so a restart loses none. The sender claims due rows (a
conditional update: of several processes exactly one takes a row; a row whose sender died
is taken again once its claim lapses), sends them with httpx off the event loop's way
(never from a job), logs each attempt and applies the one retry rule (`next_delay`).
An endpoint whose last `webhook_disable_after` attempts all failed is disabled, with
the reason on it for its owner to read.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy import Engine as SqlEngine

from spyglass.auth.models import User
from spyglass.config import Settings
from spyglass.errors import DomainError
from spyglass.tasks.access import Viewer, is_admin
from spyglass.tasks.messages import rest_view
from spyglass.tasks.models import utcnow
from spyglass.tasks.status import TaskStatus
from spyglass.tasks.view import StatusChange, TaskChange, TaskView
from spyglass.webhooks import guard
from spyglass.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from spyglass.webhooks.signing import new_secret, signed_headers

log = logging.getLogger(__name__)

ENDPOINTS = WebhookEndpoint.__table__  # type: ignore[attr-defined]
DELIVERIES = WebhookDelivery.__table__  # type: ignore[attr-defined]
ATTEMPTS = WebhookAttempt.__table__  # type: ignore[attr-defined]
USERS = User.__table__  # type: ignore[attr-defined]

EVENT_TYPES = ("task.started", "task.progress", "task.completed", "task.failed", "task.cancelled")
TEST_EVENT = "webhook.test"
BY_STATUS = {
    TaskStatus.PROCESSING: "task.started",
    TaskStatus.COMPLETED: "task.completed",
    TaskStatus.FAILED: "task.failed",
    TaskStatus.CANCELLED: "task.cancelled",
}
EXCERPT = 500
#: How long a sender holds a claimed delivery beyond its timeout before another may take it.
CLAIM_SLACK = 30.0
#: The sender's least wait after a round that sent nothing (it never spins on the database).
MIN_WAIT = 0.05
ENDPOINT_CACHE_SECONDS = 2.0
BATCH = 50
PARALLEL = 8


def next_delay(settings: Settings, attempts: int) -> float:
    """The retry rule: seconds from the `attempts`-th failed attempt to the next one."""
    return float(min(settings.webhook_retry_max, settings.webhook_retry_base * 2 ** (attempts - 1)))


def new_message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


@dataclass(frozen=True, slots=True)
class EndpointView:
    id: int
    owner_id: int
    url: str
    description: str
    events: tuple[str, ...]
    all_tasks: bool
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    failures_in_a_row: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AttemptView:
    attempt: int
    at: datetime
    status_code: int | None
    latency_ms: int | None
    response_excerpt: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class DeliveryView:
    id: str
    endpoint_id: int
    event_type: str
    task_id: str | None
    payload: str
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    log: tuple[AttemptView, ...] = ()


@dataclass(frozen=True, slots=True)
class _Wanted:
    id: int
    owner_id: int
    all_tasks: bool
    events: frozenset[str]


def _endpoint(row: Any) -> EndpointView:
    return EndpointView(
        id=row.id,
        owner_id=row.owner_id,
        url=row.url,
        description=row.description or "",
        events=tuple(row.events or ()),
        all_tasks=bool(row.all_tasks),
        enabled=bool(row.enabled),
        disabled_reason=row.disabled_reason,
        disabled_at=row.disabled_at,
        failures_in_a_row=int(row.failures_in_a_row or 0),
        created_at=row.created_at,
    )


def _delivery(row: Any, attempts: Iterable[Any] = ()) -> DeliveryView:
    return DeliveryView(
        id=row.id,
        endpoint_id=row.endpoint_id,
        event_type=row.event_type,
        task_id=row.task_id,
        payload=row.payload,
        state=row.state,
        attempts=int(row.attempts),
        next_attempt_at=row.next_attempt_at,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=row.created_at,
        updated_at=row.updated_at,
        log=tuple(
            AttemptView(
                attempt=a.attempt,
                at=a.at,
                status_code=a.status_code,
                latency_ms=a.latency_ms,
                response_excerpt=a.response_excerpt,
                error=a.error,
            )
            for a in attempts
        ),
    )


class EndpointNotFound(DomainError):
    def __init__(self, endpoint_id: int) -> None:
        super().__init__("WEBHOOK_NOT_FOUND", f"Webhook endpoint {endpoint_id} not found", 404)


class DeliveryNotFound(DomainError):
    def __init__(self, delivery_id: str) -> None:
        super().__init__("DELIVERY_NOT_FOUND", f"Delivery '{delivery_id}' not found", 404)


def check_events(events: Iterable[str]) -> list[str]:
    wanted = list(dict.fromkeys(events))
    unknown = [e for e in wanted if e not in EVENT_TYPES]
    if unknown or not wanted:
        raise DomainError(
            "INVALID_EVENT_TYPES",
            f"Choose one or more of {', '.join(EVENT_TYPES)}"
            + (f" (not {', '.join(unknown)})" if unknown else ""),
            400,
        )
    return wanted


def message_body(event_type: str, data: dict[str, Any], at: datetime | None = None) -> str:
    """The Standard Webhooks payload: `{"type", "timestamp", "data"}` (compact JSON)."""
    body = {"type": event_type, "timestamp": iso(at or utcnow()), "data": data}
    return json.dumps(body, separators=(",", ":"), default=str)


@dataclass
class Webhooks:
    """Endpoints, deliveries and the sender, over the app's SQL database."""

    database: SqlEngine
    settings: Settings
    _cache: tuple[float, list[_Wanted]] | None = None
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _progress_sent: dict[str, float] = field(default_factory=dict)
    _background: set[asyncio.Task[Any]] = field(default_factory=set)
    _client: httpx.AsyncClient | None = None

    # -- endpoints -------------------------------------------------------------------
    async def create(
        self,
        owner: Viewer,
        url: str,
        events: list[str],
        *,
        description: str = "",
        all_tasks: bool = False,
    ) -> tuple[EndpointView, str]:
        """Register an endpoint; returns it and its secret (shown once)."""
        if all_tasks and not is_admin(owner):
            raise DomainError("FORBIDDEN", "Only admins hear every user's tasks", 403)
        wanted = check_events(events)
        await guard.resolve(url, allow_private=self.settings.webhook_allow_private)
        secret = new_secret()

        def run() -> EndpointView:
            with self.database.begin() as conn:
                new_id = conn.execute(
                    sa.insert(ENDPOINTS)
                    .values(
                        owner_id=owner.id,
                        url=url,
                        description=description,
                        events=wanted,
                        all_tasks=all_tasks,
                        secret=secret,
                        enabled=True,
                        failures_in_a_row=0,
                        created_at=utcnow(),
                    )
                    .returning(ENDPOINTS.c.id)
                ).scalar_one()
                return _endpoint(
                    conn.execute(sa.select(ENDPOINTS).where(ENDPOINTS.c.id == new_id)).one()
                )

        created = await asyncio.to_thread(run)
        self._cache = None
        return created, secret

    async def list_endpoints(self, viewer: Viewer) -> list[EndpointView]:
        """The viewer's endpoints (an admin's: everyone's)."""

        def run() -> list[EndpointView]:
            query = sa.select(ENDPOINTS).order_by(ENDPOINTS.c.id)
            if not is_admin(viewer):
                query = query.where(ENDPOINTS.c.owner_id == viewer.id)
            with self.database.connect() as conn:
                return [_endpoint(r) for r in conn.execute(query)]

        return await asyncio.to_thread(run)

    async def get(self, endpoint_id: int, viewer: Viewer) -> EndpointView:
        """The endpoint if `viewer` owns it (or is an admin); else 404."""

        def run() -> Any:
            with self.database.connect() as conn:
                return conn.execute(
                    sa.select(ENDPOINTS).where(ENDPOINTS.c.id == endpoint_id)
                ).first()

        row = await asyncio.to_thread(run)
        if row is None or not (is_admin(viewer) or row.owner_id == viewer.id):
            raise EndpointNotFound(endpoint_id)
        return _endpoint(row)

    async def update(
        self,
        endpoint_id: int,
        viewer: Viewer,
        *,
        events: list[str] | None = None,
        enabled: bool | None = None,
        description: str | None = None,
        url: str | None = None,
    ) -> EndpointView:
        await self.get(endpoint_id, viewer)
        values: dict[str, Any] = {}
        if events is not None:
            values["events"] = check_events(events)
        if description is not None:
            values["description"] = description
        if url is not None:
            await guard.resolve(url, allow_private=self.settings.webhook_allow_private)
            values["url"] = url
        if enabled is not None:
            values["enabled"] = enabled
            if enabled:  # switched back on: a fresh start, and what waited goes out
                values.update(disabled_reason=None, disabled_at=None, failures_in_a_row=0)
        if values:

            def run() -> None:
                with self.database.begin() as conn:
                    conn.execute(
                        sa.update(ENDPOINTS).where(ENDPOINTS.c.id == endpoint_id).values(**values)
                    )

            await asyncio.to_thread(run)
            self._cache = None
            self._wake.set()
        return await self.get(endpoint_id, viewer)

    async def delete(self, endpoint_id: int, viewer: Viewer) -> None:
        await self.get(endpoint_id, viewer)

        def run() -> None:
            with self.database.begin() as conn:
                ids = sa.select(DELIVERIES.c.id).where(DELIVERIES.c.endpoint_id == endpoint_id)
                conn.execute(sa.delete(ATTEMPTS).where(ATTEMPTS.c.delivery_id.in_(ids)))
                conn.execute(sa.delete(DELIVERIES).where(DELIVERIES.c.endpoint_id == endpoint_id))
                conn.execute(sa.delete(ENDPOINTS).where(ENDPOINTS.c.id == endpoint_id))

        await asyncio.to_thread(run)
        self._cache = None

    # -- the delivery log --------------------------------------------------------------
    async def deliveries(
        self, endpoint_id: int, viewer: Viewer, *, limit: int = 50, offset: int = 0
    ) -> tuple[list[DeliveryView], int]:
        """The endpoint's deliveries, newest first, each with its attempts; and how many."""
        await self.get(endpoint_id, viewer)

        def run() -> tuple[list[DeliveryView], int]:
            with self.database.connect() as conn:
                rows = list(
                    conn.execute(
                        sa.select(DELIVERIES)
                        .where(DELIVERIES.c.endpoint_id == endpoint_id)
                        .order_by(DELIVERIES.c.created_at.desc(), DELIVERIES.c.id)
                        .limit(limit)
                        .offset(offset)
                    )
                )
                total = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(DELIVERIES)
                    .where(DELIVERIES.c.endpoint_id == endpoint_id)
                ).scalar_one()
                attempts: dict[str, list[Any]] = {r.id: [] for r in rows}
                if rows:
                    for a in conn.execute(
                        sa.select(ATTEMPTS)
                        .where(ATTEMPTS.c.delivery_id.in_(list(attempts)))
                        .order_by(ATTEMPTS.c.attempt)
                    ):
                        attempts[a.delivery_id].append(a)
                return [_delivery(r, attempts[r.id]) for r in rows], int(total)

        return await asyncio.to_thread(run)

    async def delivery(self, delivery_id: str, viewer: Viewer) -> DeliveryView:
        def run() -> tuple[Any, list[Any], Any]:
            with self.database.connect() as conn:
                row = conn.execute(
                    sa.select(DELIVERIES).where(DELIVERIES.c.id == delivery_id)
                ).first()
                if row is None:
                    return None, [], None
                attempts = list(
                    conn.execute(
                        sa.select(ATTEMPTS)
                        .where(ATTEMPTS.c.delivery_id == delivery_id)
                        .order_by(ATTEMPTS.c.attempt)
                    )
                )
                owner = conn.execute(
                    sa.select(ENDPOINTS.c.owner_id).where(ENDPOINTS.c.id == row.endpoint_id)
                ).scalar_one_or_none()
                return row, attempts, owner

        row, attempts, owner = await asyncio.to_thread(run)
        if row is None or not (is_admin(viewer) or owner == viewer.id):
            raise DeliveryNotFound(delivery_id)
        return _delivery(row, attempts)

    async def resend(self, delivery_id: str, viewer: Viewer) -> DeliveryView:
        """Send a delivery again now (same `webhook-id` and body; its log goes on)."""
        await self.delivery(delivery_id, viewer)

        def run() -> bool:
            with self.database.begin() as conn:
                moved = conn.execute(
                    sa.update(DELIVERIES)
                    .where(DELIVERIES.c.id == delivery_id, DELIVERIES.c.state != "sending")
                    .values(state="pending", next_attempt_at=utcnow(), updated_at=utcnow())
                )
                return moved.rowcount == 1

        if not await asyncio.to_thread(run):
            raise DomainError(
                "DELIVERY_IN_FLIGHT", "This delivery is being sent right now; try again", 409
            )
        self._wake.set()
        return await self.delivery(delivery_id, viewer)

    async def send_test(self, endpoint_id: int, viewer: Viewer) -> DeliveryView:
        """Store and send a `webhook.test` message to the endpoint."""
        endpoint = await self.get(endpoint_id, viewer)
        data = {"endpoint_id": endpoint.id, "message": "A test event from SpyGlass"}
        ids = await self._store([endpoint.id], TEST_EVENT, None, message_body(TEST_EVENT, data))
        self._wake.set()
        return await self.delivery(ids[0], viewer)

    # -- from the engine: what happened to tasks ---------------------------------------
    def on_status(self, change: StatusChange) -> None:
        if change.status.is_terminal:
            self._progress_sent.pop(change.task_id, None)
        event_type = BY_STATUS.get(change.status)
        if event_type is not None and not self._nobody_wants(event_type):
            self._spawn(self.enqueue(event_type, change.task))

    def _nobody_wants(self, event_type: str) -> bool:
        """Known (from a fresh read of the endpoints) that no endpoint wants `event_type`:
        then a status change costs nothing more."""
        cache = self._cache
        return (
            cache is not None
            and time.monotonic() - cache[0] < ENDPOINT_CACHE_SECONDS
            and not any(event_type in w.events for w in cache[1])
        )

    def on_progress(self, change: TaskChange) -> None:
        """`task.progress`, at most once per task per `webhook_progress_interval`."""
        now = time.monotonic()
        last = self._progress_sent.get(change.task_id)
        if last is not None and now - last < self.settings.webhook_progress_interval:
            return
        if self._nobody_wants("task.progress"):
            return  # not even a task to spawn
        self._progress_sent[change.task_id] = now
        self._spawn(self.enqueue("task.progress", change.task))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def enqueue(self, event_type: str, task: TaskView) -> list[str]:
        """Store one delivery of `event_type` for `task` per endpoint that wants it."""
        try:
            wanted = [
                w.id
                for w in await self._endpoints()
                if event_type in w.events and (w.all_tasks or w.owner_id == task.owner_id)
            ]
            if not wanted:
                return []
            body = message_body(event_type, rest_view(task))
            ids = await self._store(wanted, event_type, task.id, body)
            self._wake.set()
            return ids
        except Exception:
            log.exception("storing webhook deliveries of task %s failed", task.id)
            return []

    async def _endpoints(self) -> list[_Wanted]:
        """Enabled endpoints (read at most every couple of seconds); an admin's
        every-task endpoint counts only while its owner is an admin."""
        cache = self._cache
        if cache is not None and time.monotonic() - cache[0] < ENDPOINT_CACHE_SECONDS:
            return cache[1]

        def run() -> list[_Wanted]:
            query = (
                sa.select(
                    ENDPOINTS.c.id,
                    ENDPOINTS.c.owner_id,
                    ENDPOINTS.c.all_tasks,
                    ENDPOINTS.c.events,
                    (USERS.c.role == "admin").label("is_admin"),
                )
                .join(USERS, USERS.c.id == ENDPOINTS.c.owner_id)
                .where(ENDPOINTS.c.enabled.is_(True))
            )
            with self.database.connect() as conn:
                return [
                    _Wanted(r.id, r.owner_id, bool(r.all_tasks and r.is_admin), frozenset(r.events))
                    for r in conn.execute(query)
                ]

        found = await asyncio.to_thread(run)
        self._cache = (time.monotonic(), found)
        return found

    async def _store(
        self, endpoint_ids: list[int], event_type: str, task_id: str | None, body: str
    ) -> list[str]:
        now = utcnow()
        rows = [
            {
                "id": new_message_id(),
                "endpoint_id": endpoint_id,
                "event_type": event_type,
                "task_id": task_id,
                "payload": body,
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for endpoint_id in endpoint_ids
        ]

        def run() -> None:
            with self.database.begin() as conn:
                conn.execute(sa.insert(DELIVERIES), rows)

        await asyncio.to_thread(run)
        return [str(r["id"]) for r in rows]

    # -- the sender --------------------------------------------------------------------
    async def run_forever(self) -> None:
        """Send what is due, then wait to be woken (a new delivery) or for the next due
        one (`_sleep_until_due`), for the process's lifetime."""
        if not self.settings.webhook_send:
            log.warning("SPYGLASS_WEBHOOK_SEND is off: webhook deliveries are stored, not sent")
            return
        self._client = httpx.AsyncClient(
            timeout=self.settings.webhook_timeout,
            follow_redirects=False,
            headers={"User-Agent": "SpyGlass-Webhooks/1"},
        )
        try:
            while True:
                self._wake.clear()
                try:
                    sent = await self.send_due()
                except Exception:
                    log.exception("sending webhooks failed")
                    sent = 0
                if sent >= BATCH:
                    continue
                # A round that sent nothing waits a little even if something looks due
                # (another sender took it a moment ago): the sender never spins.
                await self._sleep_until_due(0.0 if sent else MIN_WAIT)
        finally:
            await self._client.aclose()
            self._client = None

    async def _sleep_until_due(self, least: float) -> None:
        """Until a delivery may be claimed or the sender is woken (a new delivery, an
        endpoint switched on), waiting at least `least`. While nothing is due it asks the
        database once per `webhook_poll` (when the next one is due), not twice."""
        while True:
            wait = max(least, await self._until_next_due())
            least = 0.0
            if wait <= 0:
                return
            try:
                async with asyncio.timeout(wait):
                    await self._wake.wait()
                return
            except TimeoutError:
                pass  # ask again: due by now, or still nothing to send

    async def _until_next_due(self) -> float:
        """Seconds until a delivery can next be claimed (`_claimable`: a waiting one's next
        attempt, a lapsed claim's end; an endpoint switched off holds its own back), at
        most `webhook_poll`."""

        def run() -> datetime | None:
            with self.database.connect() as conn:
                value: datetime | None = conn.execute(_NEXT_DUE).scalar_one_or_none()
                return value

        try:
            due = await asyncio.to_thread(run)
        except Exception:
            return self.settings.webhook_poll
        if due is None:
            return self.settings.webhook_poll
        if due.tzinfo is None:
            due = due.replace(tzinfo=UTC)
        return max(0.0, min(self.settings.webhook_poll, (due - utcnow()).total_seconds()))

    async def send_due(self) -> int:
        """Claim the deliveries that are due and send them (a few at once); how many."""
        claimed = await asyncio.to_thread(self._claim_due)
        if not claimed:
            return 0
        gate = asyncio.Semaphore(PARALLEL)

        async def one(item: tuple[Any, Any]) -> None:
            async with gate:
                await self._attempt(*item)

        await asyncio.gather(*(one(item) for item in claimed))
        return len(claimed)

    def _claim_due(self) -> list[tuple[Any, Any]]:
        now = utcnow()
        until = now + timedelta(seconds=self.settings.webhook_timeout + CLAIM_SLACK)
        due = _due(now)
        with self.database.connect() as conn:
            candidates = list(
                conn.execute(
                    _claimable(sa.select(DELIVERIES.c.id))
                    .where(due)
                    .order_by(DELIVERIES.c.next_attempt_at)
                    .limit(BATCH)
                )
            )
        taken = []
        for (delivery_id,) in candidates:
            with self.database.begin() as conn:
                moved = conn.execute(
                    sa.update(DELIVERIES)
                    .where(DELIVERIES.c.id == delivery_id, due)
                    .values(state="sending", claimed_until=until)
                )
                if moved.rowcount != 1:
                    continue  # another sender took it
                delivery = conn.execute(
                    sa.select(DELIVERIES).where(DELIVERIES.c.id == delivery_id)
                ).one()
                endpoint = conn.execute(
                    sa.select(ENDPOINTS).where(ENDPOINTS.c.id == delivery.endpoint_id)
                ).one()
                taken.append((delivery, endpoint))
        return taken

    async def _attempt(self, delivery: Any, endpoint: Any) -> None:
        """One try: check the target again, send, log, and decide what comes next."""
        assert self._client is not None
        status: int | None = None
        excerpt: str | None = None
        error: str | None = None
        started = time.monotonic()
        try:
            target = await guard.resolve(
                endpoint.url, allow_private=self.settings.webhook_allow_private
            )
            headers = {
                **signed_headers(endpoint.secret, delivery.id, delivery.payload),
                "Content-Type": "application/json",
            }
            url = target.url
            extensions: dict[str, Any] = {}
            if target.address is not None:  # connect to the address that was checked
                headers["Host"] = url.netloc.decode("ascii")
                if url.scheme == "https":
                    extensions["sni_hostname"] = url.host
                url = url.copy_with(host=target.address)
            response = await self._client.post(
                url, content=delivery.payload.encode(), headers=headers, extensions=extensions
            )
            status = response.status_code
            excerpt = response.text[:EXCERPT]
        except guard.TargetRefused as exc:
            error = exc.message
        except httpx.TimeoutException:
            error = f"timed out after {self.settings.webhook_timeout:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:EXCERPT]
        latency = int((time.monotonic() - started) * 1000)
        ok = status is not None and 200 <= status < 300
        if not ok and error is None:
            error = f"HTTP {status}"
        await asyncio.to_thread(
            self._record, delivery, endpoint, ok, status, latency, excerpt, error
        )

    def _record(
        self,
        delivery: Any,
        endpoint: Any,
        ok: bool,
        status: int | None,
        latency: int,
        excerpt: str | None,
        error: str | None,
    ) -> None:
        now = utcnow()
        attempts = int(delivery.attempts) + 1
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_status_code": status,
            "last_error": None if ok else error,
            "claimed_until": None,
            "updated_at": now,
        }
        if ok:
            values.update(state="succeeded", next_attempt_at=None)
        else:
            created = delivery.created_at
            if created.tzinfo is None:
                created = created.replace(tzinfo=UTC)
            retry_at = now + timedelta(seconds=next_delay(self.settings, attempts))
            window_end = created + timedelta(seconds=self.settings.webhook_retry_window)
            if retry_at > window_end:
                values.update(state="failed", next_attempt_at=None)
            else:
                values.update(state="pending", next_attempt_at=retry_at)
        with self.database.begin() as conn:
            conn.execute(
                sa.insert(ATTEMPTS).values(
                    delivery_id=delivery.id,
                    attempt=attempts,
                    at=now,
                    status_code=status,
                    latency_ms=latency,
                    response_excerpt=excerpt,
                    error=None if ok else error,
                )
            )
            conn.execute(
                sa.update(DELIVERIES).where(DELIVERIES.c.id == delivery.id).values(**values)
            )
            if ok:
                conn.execute(
                    sa.update(ENDPOINTS)
                    .where(ENDPOINTS.c.id == endpoint.id)
                    .values(failures_in_a_row=0)
                )
                return
            conn.execute(
                sa.update(ENDPOINTS)
                .where(ENDPOINTS.c.id == endpoint.id)
                .values(failures_in_a_row=ENDPOINTS.c.failures_in_a_row + 1)
            )
            failures = conn.execute(
                sa.select(ENDPOINTS.c.failures_in_a_row, ENDPOINTS.c.enabled).where(
                    ENDPOINTS.c.id == endpoint.id
                )
            ).one()
            limit = self.settings.webhook_disable_after
            if failures.enabled and failures.failures_in_a_row >= limit:
                reason = (
                    f"Disabled after {failures.failures_in_a_row} failed attempts in a row "
                    f"(last: {error}); fix the receiver, then enable it again"
                )
                conn.execute(
                    sa.update(ENDPOINTS)
                    .where(ENDPOINTS.c.id == endpoint.id)
                    .values(enabled=False, disabled_reason=reason, disabled_at=now)
                )
                log.warning("webhook endpoint %s: %s", endpoint.id, reason)
                self._cache = None


def _due(now: datetime) -> Any:
    """A delivery whose time has come: waiting for an attempt due by `now`, or claimed by a
    sender whose claim lapsed (it stopped mid-send)."""
    return sa.or_(
        sa.and_(DELIVERIES.c.state == "pending", DELIVERIES.c.next_attempt_at <= now),
        sa.and_(DELIVERIES.c.state == "sending", DELIVERIES.c.claimed_until < now),
    )


def _claimable(query: sa.Select[Any]) -> sa.Select[Any]:
    """`query` over the deliveries a sender may take: waiting or claimed ones of an endpoint
    that is switched on (a switched-off one's wait until it is on again)."""
    return query.join(ENDPOINTS, ENDPOINTS.c.id == DELIVERIES.c.endpoint_id).where(
        ENDPOINTS.c.enabled.is_(True), DELIVERIES.c.state.in_(("pending", "sending"))
    )


#: When the next claimable delivery is due: a waiting one's next attempt, a claim's end.
_NEXT_DUE = _claimable(
    sa.select(
        sa.func.min(
            sa.case(
                (DELIVERIES.c.state == "pending", DELIVERIES.c.next_attempt_at),
                else_=DELIVERIES.c.claimed_until,
            )
        )
    )
)


_webhooks: Webhooks | None = None


def get_webhooks() -> Webhooks:
    """The process's webhooks, over the engine's database."""
    global _webhooks
    if _webhooks is None:
        from spyglass.tasks.engine import get_engine

        engine = get_engine()
        _webhooks = Webhooks(engine.database, engine.settings)
    return _webhooks


def install(engine: Any) -> Webhooks:
    """Hear the engine's status changes and progress; returns the webhooks to run."""
    hooks = get_webhooks()
    engine.on_status(hooks.on_status)
    engine.on_progress(hooks.on_progress)
    return hooks
