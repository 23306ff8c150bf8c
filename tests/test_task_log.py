"""`GET /api/tasks/{id}/log`: the whole timeline as JSON Lines or CSV, with a client token or
the browser's session cookie, under the one access policy."""

from __future__ import annotations

import csv
import io
import json

import httpx
import websockets.sync.client

from spyglass.api.logs import _cell
from tests.accounts import Account, make_account, session_cookie
from tests.harness import SpyGlassServer


def run_to_end(server: SpyGlassServer, who: Account, job: str, body: object = None) -> str:
    r = httpx.post(
        f"{server.url}/api/testjobs/tasks/{who.token}/start/{job}", json=body, timeout=10
    )
    assert r.status_code == 200, r.text
    task_id = r.json()["task_id"]
    url = f"{server.ws_url}/ws/testjobs/tasks/{who.token}/{task_id}"
    with websockets.sync.client.connect(url, open_timeout=30) as ws:
        while json.loads(ws.recv(timeout=60))["status"] not in ("COMPLETED", "FAILED"):
            pass
    return task_id


def all_events(server: SpyGlassServer, who: Account, task_id: str) -> list[dict]:
    """The timeline as the events API pages it."""
    events: list[dict] = []
    h = {"Authorization": f"Bearer {who.token}"}
    while True:
        after = events[-1]["seq"] if events else 0
        page = httpx.get(
            f"{server.url}/api/tasks/{task_id}/events",
            params={"after_seq": after, "limit": 1000},
            headers=h,
            timeout=30,
        ).json()["events"]
        if not page:
            return events
        events.extend(page)


def test_the_log_has_every_event_as_json_lines_and_csv(server: SpyGlassServer) -> None:
    owner = make_account(server, prefix="log")
    # More lines than one page of the engine's timeline reads (1000).
    task_id = run_to_end(server, owner, "steps", {"steps": 1200, "delay": 0})
    expected = all_events(server, owner, task_id)
    assert len(expected) > 1200

    r = httpx.get(
        f"{server.url}/api/tasks/{task_id}/log",
        headers={"Authorization": f"Bearer {owner.token}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-ndjson")
    assert f'filename="task-{task_id}-log.jsonl"' in r.headers["content-disposition"]
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert [e["seq"] for e in lines] == list(range(1, len(expected) + 1))
    for got, want in zip(lines, expected, strict=True):
        assert got == {"task_id": task_id, **want}

    # The browser's way: its session cookie, no token.
    with httpx.Client(cookies=session_cookie(server, owner), timeout=30) as browser:
        r = browser.get(f"{server.url}/api/tasks/{task_id}/log", params={"format": "csv"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [int(row["seq"]) for row in rows] == [e["seq"] for e in expected]
    for row, want in zip(rows, expected, strict=True):
        assert row["event_type"] == want["event_type"]
        assert row["message"] == (want["message"] or "")
        assert row["timestamp"] == want["timestamp"]
        assert (json.loads(row["data"]) if row["data"] else None) == want["data"]


def test_the_log_follows_the_access_policy(server: SpyGlassServer) -> None:
    owner = make_account(server, prefix="logowner")
    stranger = make_account(server, prefix="logstranger")
    admin = make_account(server, prefix="logadmin", admin=True)
    task_id = run_to_end(server, owner, "steps", {"steps": 2, "delay": 0})
    url = f"{server.url}/api/tasks/{task_id}/log"

    def get(**kwargs: object) -> httpx.Response:
        return httpx.get(url, timeout=30, **kwargs)  # type: ignore[arg-type]

    assert get().status_code == 401
    assert get(cookies={"spyglass_session": "nonsense"}).status_code == 401
    assert get(headers={"Authorization": "Bearer sg_wrong"}).status_code == 401
    for who in (stranger,):
        r = get(headers={"Authorization": f"Bearer {who.token}"})
        assert (r.status_code, r.json()["error_code"]) == (404, "TASK_NOT_FOUND")
        r = get(cookies=session_cookie(server, who))
        assert r.status_code == 404
    assert get(cookies=session_cookie(server, admin)).status_code == 200
    r = get(headers={"Authorization": f"Bearer {owner.token}"}, params={"format": "xml"})
    assert r.status_code == 422


def test_csv_cells_a_spreadsheet_would_run_are_defused() -> None:
    assert _cell('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert _cell("@SUM(1)") == "'@SUM(1)"
    assert _cell("step 3") == "step 3"
    assert _cell(None) == ""


def test_the_rest_list_searches_by_id_prefix_file_name_and_time(server: SpyGlassServer) -> None:
    owner = make_account(server, prefix="search")
    h = {"Authorization": f"Bearer {owner.token}"}
    with httpx.Client(base_url=server.url, headers=h, timeout=30) as c:
        named = c.post("/api/tasks", json={"tool_id": "profile-my-data"}).json()["task_id"]
        c.post(
            f"/api/tasks/{named}/upload-urls",
            json={"files": {"primary": {"filename": "Q3_Sales.csv", "content_type": "text/csv"}}},
        )
        job = c.post("/api/tasks", json={"task_type": "testjobs.steps"}).json()["task_id"]

        def found(**params: str) -> set[str]:
            r = c.get("/api/tasks", params=params)
            assert r.status_code == 200, r.text
            return {t["task_id"] for t in r.json()["tasks"]}

        assert found(q="q3_sales") == {named}
        assert found(q=job[:8].upper()) == {job}
        assert found(q="nothing-like-it") == set()
        assert found(created_after="2020-01-01T00:00:00Z") == {named, job}
        assert found(created_before="2020-01-01T00:00:00+14:00") == set()
        for wrong in ("yesterday", "0.5", "2020-01-01T00:00:00", "2020-02-30T00:00:00Z"):
            r = c.get("/api/tasks", params={"created_after": wrong})
            assert r.status_code == 422, (wrong, r.text)
