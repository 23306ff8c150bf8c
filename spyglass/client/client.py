"""SpyGlass from Python: start jobs, follow them live, read results, cancel, retry.

With a client token every call acts as its owner (token endpoints, the REST tasks
API, the owner's sockets); without one, only direct jobs are reachable, through the
token-free endpoints.

    client = SpyGlassClient("http://localhost:3000", token="sg_…")
    task = client.start("example_task2", "task2_with_args", {"name": "Matt", "age": 25})
    async for message in client.watch(task["task_id"], "example_task2"): ...
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import websockets

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "UPLOAD_FAILED", "EXPIRED"})


class SpyGlassError(Exception):
    """The server refused (`status`, `detail`, `error_code`), or could not be reached."""

    def __init__(self, detail: str, status: int | None = None, error_code: str | None = None):
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.error_code = error_code

    def __str__(self) -> str:
        code = f" [{self.error_code}]" if self.error_code else ""
        status = f"HTTP {self.status}: " if self.status else ""
        return f"{status}{self.detail}{code}"


class SpyGlassClient:
    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.token = token or None
        self._http = httpx.Client(base_url=self.url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SpyGlassClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------
    def _request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> Any:
        headers = dict(headers or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            response = self._http.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise SpyGlassError(f"cannot reach {self.url}: {exc}") from None
        if response.is_success:
            return response.json()
        try:
            body = response.json()
        except ValueError:
            body = {}
        detail = body.get("detail") if isinstance(body, dict) else None
        if isinstance(detail, list):  # FastAPI's validation errors
            detail = "; ".join(
                f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}" for d in detail
            )
        raise SpyGlassError(
            str(detail or response.reason_phrase),
            response.status_code,
            body.get("error_code") if isinstance(body, dict) else None,
        )

    def _need_token(self, what: str) -> str:
        if not self.token:
            raise SpyGlassError(
                f"{what} needs a client token (--token, SPYGLASS_TOKEN or `spyglass login`)"
            )
        return self.token

    # -- the API -------------------------------------------------------------
    def login(
        self,
        email: str,
        password: str,
        *,
        name: str = "cli",
        scopes: list[str] | None = None,
        expires_in_days: int | None = None,
    ) -> dict[str, Any]:
        """A new client token for an email and password (`POST /api/auth/token`): its
        secret is `["token"]`; it also becomes this client's token."""
        body: dict[str, Any] = {"email": email, "password": password, "name": name}
        if scopes:
            body["scopes"] = scopes
        if expires_in_days is not None:
            body["expires_in_days"] = expires_in_days
        saved, self.token = self.token, None  # sent without any other token
        try:
            issued = self._request("POST", "/api/auth/token", json=body)
        finally:
            self.token = saved
        self.token = issued["token"]
        return dict(issued)

    def jobs(self) -> list[dict[str, Any]]:
        return self._request("GET", "/api/jobs")

    def start(
        self,
        state: str,
        job: str,
        args: dict[str, Any] | None = None,
        *,
        priority: int | None = None,
        queue: str | None = None,
        start_in: float | None = None,
        start_at: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Start `job` of `state` (as the token's owner, or as a direct task without one);
        `priority`, `queue`, `start_in` seconds or `start_at` (ISO 8601) schedule it. With
        `idempotency_key`, sending the same start again (say, after a network error)
        answers the task the first one started instead of starting another."""
        body: dict[str, Any] = {"json": args} if args is not None else {}
        if idempotency_key:
            body["headers"] = {"Idempotency-Key": idempotency_key}
        schedule = {
            "priority": priority,
            "queue": queue,
            "start_in": start_in,
            "start_at": start_at,
        }
        params = {k: v for k, v in schedule.items() if v is not None}
        if params:
            body["params"] = params
        if self.token:
            path = f"/api/{quote(state)}/tasks/{quote(self.token)}/start/{quote(job)}"
        else:
            path = f"/api/{quote(state)}/task/start/{quote(job)}"
        return self._request("POST", path, **body)

    def get(self, task_id: str, state: str | None = None) -> dict[str, Any]:
        """The task now (with a token: the REST view, `state_name` included)."""
        if self.token:
            return self._request("GET", f"/api/tasks/{quote(task_id)}")
        if not state:
            raise SpyGlassError("without a token, name the task's state (--state)")
        return self._request("GET", f"/api/{quote(state)}/task/result/{quote(task_id)}")

    def cancel(self, task_id: str, state: str | None = None) -> dict[str, Any]:
        if self.token:
            return self._request("POST", f"/api/tasks/{quote(task_id)}/cancel")
        if not state:
            raise SpyGlassError("without a token, name the task's state (--state)")
        return self._request("POST", f"/api/{quote(state)}/task/cancel/{quote(task_id)}")

    def retry(self, task_id: str) -> dict[str, Any]:
        self._need_token("retry")
        return self._request("POST", f"/api/tasks/{quote(task_id)}/retry")

    def tasks(self, status: str | None = None, limit: int = 20) -> dict[str, Any]:
        self._need_token("listing tasks")
        params: dict[str, Any] = {"limit": limit}
        if status:
            params["status"] = status
        return self._request("GET", "/api/tasks", params=params)

    def state_of(self, task_id: str) -> str:
        """The state a task belongs to (asked with the token)."""
        return str(self.get(task_id)["state_name"])

    async def watch(self, task_id: str, state: str) -> AsyncIterator[dict[str, Any]]:
        """Every message of the task's socket: its state now, then each change, to the end."""
        ws_url = self.url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        if self.token:
            path = f"/ws/{quote(state)}/tasks/{quote(self.token)}/{quote(task_id)}"
        else:
            path = f"/ws/{quote(state)}/task/ws/{quote(task_id)}"
        try:
            async with websockets.connect(ws_url + path) as ws:
                async for raw in ws:
                    message = json.loads(raw)
                    if message.get("type") == "error":
                        raise SpyGlassError(
                            message.get("detail", "refused"), None, message.get("error_code")
                        )
                    yield message
        except (OSError, websockets.WebSocketException) as exc:
            raise SpyGlassError(f"the progress socket failed: {exc}") from None
