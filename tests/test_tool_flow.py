"""The whole S000 flow over HTTP with a real tool run, on local storage and on S3 (moto)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import websockets

from tests.accounts import Account, make_account, set_credits
from tests.badfiles import not_utf8_past_the_head
from tests.conftest import s3_client, s3_env
from tests.harness import SpyGlassServer

CSV = (
    b"id,email,amount,city\n"
    b"1,a@example.com,10.5,Paris\n"
    b"2,,12.0,Lyon\n"
    b"3,c@example.com,,Paris\n"
    b"4,d@example.com,99.5,Nice\n"
    b"4,d@example.com,99.5,Nice\n"
)


def auth(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.token}"}


def wait_end(server: SpyGlassServer, account: Account, state: str, task_id: str) -> list[dict]:
    async def run() -> list[dict]:
        url = f"{server.ws_url}/ws/{state}/tasks/{account.token}/{task_id}"
        seen = []
        async with asyncio.timeout(60), websockets.connect(url) as ws:
            async for raw in ws:
                seen.append(json.loads(raw))
        return seen

    return asyncio.run(run())


def start_tool_task(
    c: httpx.Client, data: bytes = CSV, name: str = "customers.csv", parameters: dict | None = None
) -> tuple[str, dict]:
    task = c.post(
        "/api/tasks", json={"tool_id": "profile-my-data", "agents": ["unified-profiler"]}
    ).json()
    body: dict[str, Any] = {
        "files": {"primary": {"filename": name, "content_type": "text/csv"}},
        "has_parameters": parameters is not None,
    }
    urls = c.post(f"/api/tasks/{task['task_id']}/upload-urls", json=body).json()
    for key, info in urls["uploads"].items():
        content = json.dumps(parameters).encode() if key == "parameters" else data
        assert (
            httpx.put(info["url"], content=content, headers=info["headers"], timeout=10).status_code
            == 200
        )
    return task["task_id"], urls


def full_flow(server: SpyGlassServer, account: Account, stored: Callable[[str], list[str]]) -> None:
    with httpx.Client(base_url=server.url, headers=auth(account), timeout=30) as c:
        task_id, _ = start_tool_task(
            c, parameters={"unified-profiler": {"include_correlations": True}}
        )
        r = c.post(f"/api/tasks/{task_id}/process")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "PROCESSING"
        messages = wait_end(server, account, "data_tools", task_id)
        assert messages[-1]["status"] == "COMPLETED", messages[-1]
        checklists = [m["data"]["agents"] for m in messages if m.get("data", {}).get("agents")]
        if checklists:  # else it ended before the socket opened: the timeline below shows it
            assert checklists[-1] == {"unified-profiler": "completed"}

        task = c.get(f"/api/tasks/{task_id}").json()
        assert task["status"] == "COMPLETED" and task["downloads_available"] is True
        kinds = [e["event_type"] for e in c.get(f"/api/tasks/{task_id}/events").json()["events"]]
        assert "agent_started" in kinds and "agent_completed" in kinds

        downloads = c.get(f"/api/tasks/{task_id}/downloads").json()
        assert downloads["expires_in_seconds"] == 3600
        (report_dl,) = downloads["downloads"]
        assert report_dl["type"] == "report" and report_dl["filename"] == "report.json"
        fetched = httpx.get(report_dl["url"], timeout=10)  # no auth header: the URL is the key
        assert fetched.status_code == 200
        from_file = fetched.json()

        report = c.get(f"/api/tasks/{task_id}/report").json()
        assert report["analysis_id"] == task_id and report["tool"] == "profile-my-data"
        body = report["report"]
        assert body["executiveSummary"] == from_file["executiveSummary"]
        summary = body["executiveSummary"]
        assert (summary["rows"], summary["columns"], summary["missing_cells"]) == (5, 4, 2)
        columns = {col["name"]: col for col in body["agentResults"]["unified-profiler"]["columns"]}
        assert columns["amount"]["nulls"] == 1 and columns["amount"]["max"] == 99.5
        assert columns["amount"]["min"] == 10.5 and columns["city"]["distinct"] == 3
        assert columns["email"]["null_pct"] == 20.0
        assert body["agentResults"]["unified-profiler"]["duplicate_rows"] == 1
        assert body["rowLevelIssues"] == [
            {"row": 5, "issue": "duplicate_row", "detail": "same as an earlier row"}
        ]
        assert "amount" in body["agentResults"]["unified-profiler"]["correlations"]
        assert body["downloads"][0]["filename"] == "report.json"

        prefix = f"users/{account.id}/tasks/{task_id}/"
        assert len(stored(prefix)) == 3  # primary, parameters.json, report.json
        deleted = c.delete(f"/api/tasks/{task_id}").json()
        assert deleted["files_deleted"] == 3
        assert stored(prefix) == []
        assert c.get(f"/api/tasks/{task_id}").status_code == 404


def test_full_flow_on_local_storage(server: SpyGlassServer) -> None:
    account = make_account(server, prefix="flow")

    def stored(prefix: str) -> list[str]:
        root = server.data_dir / "files"
        return sorted(str(p.relative_to(root)) for p in (root / prefix).rglob("*") if p.is_file())

    full_flow(server, account, stored)


def test_full_flow_on_s3(new_server: Any, moto_endpoint: str) -> None:
    srv: SpyGlassServer = new_server(env=s3_env(moto_endpoint, "tool-flow"))
    s3 = s3_client(moto_endpoint)

    def stored(prefix: str) -> list[str]:
        page = s3.list_objects_v2(Bucket="tool-flow", Prefix=prefix)
        return sorted(o["Key"] for o in page.get("Contents", []))

    full_flow(srv, make_account(srv, prefix="s3flow"), stored)


def test_missing_files_end_upload_failed(server: SpyGlassServer) -> None:
    account = make_account(server, prefix="nofiles")
    with httpx.Client(base_url=server.url, headers=auth(account), timeout=30) as c:
        task = c.post("/api/tasks", json={"tool_id": "profile-my-data"}).json()
        c.post(
            f"/api/tasks/{task['task_id']}/upload-urls",
            json={"files": {"primary": {"filename": "a.csv", "content_type": "text/csv"}}},
        )
        r = c.post(f"/api/tasks/{task['task_id']}/process")
        assert (r.status_code, r.json()["error_code"]) == (400, "FILES_NOT_FOUND")
        assert "primary" in r.json()["detail"]
        now = c.get(f"/api/tasks/{task['task_id']}").json()
        assert now["status"] == "UPLOAD_FAILED"
        assert c.post(f"/api/tasks/{task['task_id']}/process").status_code == 400
        early = c.post("/api/tasks", json={"tool_id": "profile-my-data"}).json()
        r = c.post(f"/api/tasks/{early['task_id']}/process")
        assert (r.status_code, r.json()["error_code"]) == (400, "INVALID_STATUS")
        r = c.get(f"/api/tasks/{early['task_id']}/downloads")
        assert (r.status_code, r.json()["error_code"]) == (400, "TASK_NOT_COMPLETED")
        r = c.get(f"/api/tasks/{early['task_id']}/report")
        assert (r.status_code, r.json()["error_code"]) == (400, "TASK_NOT_COMPLETED")


def test_credits_are_checked_up_front_all_or_nothing(server: SpyGlassServer) -> None:
    account = make_account(server, prefix="poor")
    set_credits(server, account, 4)
    with httpx.Client(base_url=server.url, headers=auth(account), timeout=30) as c:
        task_id, _ = start_tool_task(c)
        r = c.post(f"/api/tasks/{task_id}/process")
        assert r.status_code == 402
        body = r.json()
        assert body["error_code"] == "BILLING_INSUFFICIENT_CREDITS"
        assert body["context"] == {
            "available": 4,
            "required": 10,
            "shortfall": 6,
            "breakdown": {"unified-profiler": 10},
        }
        failed = c.get(f"/api/tasks/{task_id}").json()
        assert failed["status"] == "FAILED"
        assert failed["error_code"] == "BILLING_INSUFFICIENT_CREDITS"


def test_unreadable_file_fails_clearly_and_refunds(server: SpyGlassServer) -> None:
    account = make_account(server, prefix="badfile")
    set_credits(server, account, 10)
    with httpx.Client(base_url=server.url, headers=auth(account), timeout=30) as c:
        task_id, _ = start_tool_task(c, data=not_utf8_past_the_head())
        assert c.post(f"/api/tasks/{task_id}/process").status_code == 200
        end = wait_end(server, account, "data_tools", task_id)[-1]
        assert end["status"] == "FAILED"
        assert "not UTF-8" in end["error_message"] and "Traceback" not in end["error_message"]
        # Refunded: the same account can pay for the next run.
        task2, _ = start_tool_task(c)
        assert c.post(f"/api/tasks/{task2}/process").status_code == 200
        assert wait_end(server, account, "data_tools", task2)[-1]["status"] == "COMPLETED"


def test_invalid_parameters_are_refused(server: SpyGlassServer) -> None:
    account = make_account(server, prefix="params")
    with httpx.Client(base_url=server.url, headers=auth(account), timeout=30) as c:
        task_id, _ = start_tool_task(c, parameters={"unified-profiler": {"sample_size": -3}})
        r = c.post(f"/api/tasks/{task_id}/process")
        assert (r.status_code, r.json()["error_code"]) == (422, "INVALID_PARAMETERS")
        assert c.get(f"/api/tasks/{task_id}").json()["status"] == "UPLOADING"


@pytest.mark.parametrize("payload", [b"", b"id,name\n"])
def test_empty_tables_are_refused_before_the_charge(server: SpyGlassServer, payload: bytes) -> None:
    account = make_account(server, prefix="empty")
    set_credits(server, account, 10)
    with httpx.Client(base_url=server.url, headers=auth(account), timeout=30) as c:
        task_id, _ = start_tool_task(c, data=payload or b" ")
        r = c.post(f"/api/tasks/{task_id}/process")
        assert (r.status_code, r.json()["error_code"]) == (422, "BAD_INPUT_FILE")
        assert "customers.csv" in r.json()["detail"]
        assert c.get(f"/api/tasks/{task_id}").json()["status"] == "UPLOAD_FAILED"
        assert c.get("/api/me").json()["credits"] == 10


def test_uploads_never_processed_end_expired(new_server: Any) -> None:
    srv: SpyGlassServer = new_server(env={"SPYGLASS_UPLOAD_EXPIRY": "2"})
    account = make_account(srv, prefix="late")
    with httpx.Client(base_url=srv.url, headers=auth(account), timeout=30) as c:
        task = c.post("/api/tasks", json={"tool_id": "profile-my-data"}).json()
        urls = c.post(
            f"/api/tasks/{task['task_id']}/upload-urls",
            json={"files": {"primary": {"filename": "a.csv", "content_type": "text/csv"}}},
        ).json()
        assert urls["expires_in_seconds"] == 2
        messages = wait_end(srv, account, "data_tools", task["task_id"])  # no request made
        assert messages[-1]["status"] == "EXPIRED"
        assert messages[-1]["error_code"] == "UPLOAD_EXPIRED"
        info = urls["uploads"]["primary"]
        r = httpx.put(info["url"], content=CSV, headers=info["headers"], timeout=10)
        assert (r.status_code, r.json()["error_code"]) == (403, "URL_EXPIRED")
        r = c.post(f"/api/tasks/{task['task_id']}/process")
        assert r.status_code == 400
        assert c.get(f"/api/tasks/{task['task_id']}").json()["status"] == "EXPIRED"


def test_retry_a_failed_tool_task_with_the_same_files(server: SpyGlassServer) -> None:
    account = make_account(server, prefix="retry")
    set_credits(server, account, 0)
    with httpx.Client(base_url=server.url, headers=auth(account), timeout=30) as c:
        task_id, _ = start_tool_task(c)
        assert c.post(f"/api/tasks/{task_id}/process").status_code == 402
        set_credits(server, account, 25)
        r = c.post(f"/api/tasks/{task_id}/retry")
        assert r.status_code == 201, r.text
        new = r.json()
        assert new["retry_of"] == task_id and new["task_id"] != task_id
        assert new["agents"] == ["unified-profiler"]
        assert wait_end(server, account, "data_tools", new["task_id"])[-1]["status"] == "COMPLETED"
        report = c.get(f"/api/tasks/{new['task_id']}/report").json()["report"]
        assert report["executiveSummary"]["rows"] == 5
        me = httpx.get(f"{server.url}/api/me", headers=auth(account), timeout=10).json()
        assert me["credits"] == 15
        done = c.post(f"/api/tasks/{new['task_id']}/retry")
        assert (done.status_code, done.json()["error_code"]) == (400, "TASK_NOT_RETRYABLE")


def test_file_flow_paths_are_private(server: SpyGlassServer) -> None:
    owner = make_account(server, prefix="owner")
    other = make_account(server, prefix="intruder")
    with httpx.Client(base_url=server.url, headers=auth(owner), timeout=30) as c:
        task_id, _ = start_tool_task(c)
        assert c.post(f"/api/tasks/{task_id}/process").status_code == 200
        assert wait_end(server, owner, "data_tools", task_id)[-1]["status"] == "COMPLETED"
    with httpx.Client(base_url=server.url, headers=auth(other), timeout=30) as c:
        for method, path in (
            ("GET", "/downloads"),
            ("GET", "/report"),
            ("POST", "/process"),
            ("POST", "/upload-urls"),
        ):
            body = {"files": {"primary": {"filename": "a.csv", "content_type": "text/csv"}}}
            r = c.request(
                method, f"/api/tasks/{task_id}{path}", json=body if path == "/upload-urls" else None
            )
            assert r.status_code == 404, (path, r.text)
            assert r.json()["error_code"] == "TASK_NOT_FOUND"


def test_openapi_documents_the_rest_api(server: SpyGlassServer) -> None:
    spec = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    paths = spec["paths"]
    for path in (
        "/api/tasks",
        "/api/tasks/{task_id}",
        "/api/tasks/{task_id}/upload-urls",
        "/api/tasks/{task_id}/process",
        "/api/tasks/{task_id}/downloads",
        "/api/tasks/{task_id}/report",
        "/api/tasks/{task_id}/events",
        "/api/tasks/{task_id}/cancel",
        "/api/tasks/{task_id}/retry",
        "/api/tools",
        "/api/health",
        "/api/tokens",
        "/api/me",
    ):
        assert path in paths, path
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    create = paths["/api/tasks"]["post"]
    assert create["security"] == [{"HTTPBearer": []}]
    schema = spec["components"]["schemas"]["CreateTask"]
    assert schema["properties"]["tool_id"]["examples"] == ["profile-my-data"]
    upload = spec["components"]["schemas"]["UploadUrlsRequest"]
    assert upload["properties"]["files"]["examples"]


def _table(rows: int, shift: float, seed: int) -> bytes:
    import random

    rnd = random.Random(seed)
    lines = ["id,email,amount,segment"]
    for i in range(rows):
        email = f"user{i}@example.com" if i % 10 else ""
        lines.append(f"{i},{email},{rnd.gauss(100 + shift, 10):.2f},{rnd.choice('ABC')}")
    return ("\n".join(lines) + "\n").encode()


def test_all_profile_agents_with_a_baseline(server: SpyGlassServer) -> None:
    account = make_account(server, prefix="allagents")
    with httpx.Client(base_url=server.url, headers=auth(account), timeout=30) as c:
        task = c.post("/api/tasks", json={"tool_id": "profile-my-data"}).json()
        assert len(task["agents"]) == 6
        files = {
            "primary": {"filename": "now.csv", "content_type": "text/csv"},
            "baseline": {"filename": "then.csv", "content_type": "text/csv"},
        }
        urls = c.post(f"/api/tasks/{task['task_id']}/upload-urls", json={"files": files}).json()
        for key, data in (("primary", _table(400, 40, 1)), ("baseline", _table(400, 0, 2))):
            info = urls["uploads"][key]
            assert (
                httpx.put(
                    info["url"], content=data, headers=info["headers"], timeout=10
                ).status_code
                == 200
            )
        assert c.post(f"/api/tasks/{task['task_id']}/process").status_code == 200
        messages = wait_end(server, account, "data_tools", task["task_id"])
        assert messages[-1]["status"] == "COMPLETED", messages[-1]
        final_checklist = [m["data"]["agents"] for m in messages if m.get("data")][-1]
        assert set(final_checklist.values()) == {"completed"} and len(final_checklist) == 6
        report = c.get(f"/api/tasks/{task['task_id']}/report").json()["report"]
        summary = report["executiveSummary"]
        assert summary["rows"] == 400 and summary["missing_cells"] == 40
        assert summary["pii_columns"] == ["email"]
        assert summary["drifted_columns"] == ["amount"]
        assert summary["readiness"] in {"A", "B"}
        results = report["agentResults"]
        assert set(results) == {
            "unified-profiler",
            "score-risk",
            "drift-detector",
            "readiness-rater",
            "governance-checker",
            "test-coverage",
        }
        assert {i["type"] for i in report["issueSummary"]["issues"]} >= {
            "pii",
            "drift",
            "missing_values",
        }
        events = c.get(f"/api/tasks/{task['task_id']}/events").json()["events"]
        done = [e["data"]["agent"] for e in events if e["event_type"] == "agent_completed"]
        assert done == task["agents"]


def test_drift_without_a_baseline_fails_clearly_and_refunds(server: SpyGlassServer) -> None:
    account = make_account(server, prefix="nobase")
    set_credits(server, account, 20)
    with httpx.Client(base_url=server.url, headers=auth(account), timeout=30) as c:
        task = c.post(
            "/api/tasks", json={"tool_id": "profile-my-data", "agents": ["drift-detector"]}
        ).json()
        urls = c.post(
            f"/api/tasks/{task['task_id']}/upload-urls",
            json={"files": {"primary": {"filename": "a.csv", "content_type": "text/csv"}}},
        ).json()
        info = urls["uploads"]["primary"]
        httpx.put(info["url"], content=CSV, headers=info["headers"], timeout=10)
        assert c.post(f"/api/tasks/{task['task_id']}/process").status_code == 200
        end = wait_end(server, account, "data_tools", task["task_id"])[-1]
        assert end["status"] == "FAILED"
        assert "drift-detector needs a baseline file" in end["error_message"]
        me = httpx.get(f"{server.url}/api/me", headers=auth(account), timeout=10).json()
        assert me["credits"] == 20, "refunded: no agent ran"


DIRTY = (
    b"id,email,amount,city\n"
    b"1, Ann@Example.com ,10,Paris\n"
    b"2,bob@example.com,,Lyon\n"
    b"3,carl@example.com,12,  Nice\n"
    b"3,carl@example.com,12,  Nice\n"
    b"4,dan@example.com,11,Paris\n"
    b"5,eve@example.com,9999,Lille\n"
    b"6,,13,Paris\n"
)


def test_clean_my_data_writes_a_cleaned_csv(server: SpyGlassServer) -> None:
    import csv
    import io

    account = make_account(server, prefix="cleaner")
    params = {
        "null-handler": {"strategy": "fill_median", "columns": ["amount"]},
        "outlier-remover": {"method": "iqr", "threshold": 1.5},
    }
    with httpx.Client(base_url=server.url, headers=auth(account), timeout=30) as c:
        task = c.post("/api/tasks", json={"tool_id": "clean-my-data"}).json()
        assert len(task["agents"]) == 8 and task["agents"][-1] == "cleanse-writeback"
        urls = c.post(
            f"/api/tasks/{task['task_id']}/upload-urls",
            json={
                "files": {"primary": {"filename": "dirty.csv", "content_type": "text/csv"}},
                "has_parameters": True,
            },
        ).json()
        for key, data in (("primary", DIRTY), ("parameters", json.dumps(params).encode())):
            info = urls["uploads"][key]
            assert (
                httpx.put(
                    info["url"], content=data, headers=info["headers"], timeout=10
                ).status_code
                == 200
            )
        assert c.post(f"/api/tasks/{task['task_id']}/process").status_code == 200
        assert wait_end(server, account, "data_tools", task["task_id"])[-1]["status"] == "COMPLETED"

        downloads = {
            d["filename"]: d
            for d in c.get(f"/api/tasks/{task['task_id']}/downloads").json()["downloads"]
        }
        assert set(downloads) == {"report.json", "cleaned.csv", "quarantine.csv"}
        cleaned = httpx.get(downloads["cleaned.csv"]["url"], timeout=10)
        rows = list(csv.DictReader(io.StringIO(cleaned.text)))
        assert [r["id"] for r in rows] == ["1", "2", "3", "4"]
        assert rows[0]["email"] == "ann@example.com"
        assert rows[1]["amount"] == "12"  # the median of the amounts (an integer column stays so)
        assert rows[2]["city"] == "Nice"
        quarantined = httpx.get(downloads["quarantine.csv"]["url"], timeout=10).text
        # Nothing deleted: the outlier (asked for with the narrow 1.5·IQR fences) and the row
        # without an e-mail are set aside, each with its reason.
        assert quarantined.splitlines()[1:] == [
            "5,eve@example.com,9999,Lille,amount is far outside the usual range",
            "6,,13,Paris,email is missing",
        ]

        summary = c.get(f"/api/tasks/{task['task_id']}/report").json()["report"]["executiveSummary"]
        assert (
            summary["nulls_filled"],
            summary["rows_set_aside_as_outliers"],
            summary["duplicates_merged"],
            summary["rows_quarantined"],
            summary["rows_written"],
        ) == (1, 1, 1, 2, 4)
        assert (
            summary["rows_in"],
            summary["rows_out"],
            summary["rows_quarantined"],
            summary["rows_merged"],
        ) == (7, 4, 2, 1)


def test_clean_my_data_defaults_account_for_every_row(server: SpyGlassServer) -> None:
    """The default run on a realistic 5,000-row file: exact duplicates merged, only the absurd
    values set aside, gaps left as they are; `rows_in = out + quarantined + merged`."""
    import csv
    import io

    from tests.cleandata import customers

    known = customers()
    account = make_account(server, prefix="cleaner")
    with httpx.Client(base_url=server.url, headers=auth(account), timeout=30) as c:
        task = c.post("/api/tasks", json={"tool_id": "clean-my-data"}).json()
        urls = c.post(
            f"/api/tasks/{task['task_id']}/upload-urls",
            json={
                "files": {"primary": {"filename": "customers.csv", "content_type": "text/csv"}},
                "has_parameters": False,
            },
        ).json()
        info = urls["uploads"]["primary"]
        put = httpx.put(info["url"], content=known.csv, headers=info["headers"], timeout=30)
        assert put.status_code == 200
        assert c.post(f"/api/tasks/{task['task_id']}/process").status_code == 200
        assert wait_end(server, account, "data_tools", task["task_id"])[-1]["status"] == "COMPLETED"
        downloads = {
            d["filename"]: d
            for d in c.get(f"/api/tasks/{task['task_id']}/downloads").json()["downloads"]
        }
        cleaned = list(csv.DictReader(io.StringIO(httpx.get(downloads["cleaned.csv"]["url"]).text)))
        held = list(csv.DictReader(io.StringIO(httpx.get(downloads["quarantine.csv"]["url"]).text)))
        report = c.get(f"/api/tasks/{task['task_id']}/report").json()["report"]

    source = list(csv.DictReader(io.StringIO(known.csv.decode())))
    summary = report["executiveSummary"]
    assert (
        summary["rows_in"],
        summary["rows_out"],
        summary["rows_quarantined"],
        summary["rows_merged"],
    ) == (5000, 4955, 5, 40)
    assert summary["rows_in"] == len(cleaned) + len(held) + summary["rows_merged"]
    assert summary["rows_balance"] == (
        "5,000 rows in = 4,955 written + 5 set aside + 40 duplicates merged"
    )
    # Set aside: exactly the rows with an absurd value, as they were, with the reason.
    assert {int(r["customer_id"]) for r in held} == known.absurd_ids
    assert {r["quarantine_reason"] for r in held} == {
        "amount is far outside the usual range",
        "age is far outside the usual range",
    }
    by_id = {r["customer_id"]: r for r in source}
    for row in held:
        reason = row.pop("quarantine_reason")
        assert row == by_id[row["customer_id"]], reason
    # Written: every other customer once, each row as it came in (gaps left empty).
    written = [r["customer_id"] for r in cleaned]
    assert len(set(written)) == len(written) == 4955
    assert set(written) | {r["customer_id"] for r in held} == set(by_id)
    assert all(row == by_id[row["customer_id"]] for row in cleaned)
    assert sum(1 for r in cleaned if r["age"] == "") == sum(
        1
        for r in by_id.values()
        if r["age"] == "" and int(r["customer_id"]) not in known.absurd_ids
    )
    preview = report["agentResults"]["cleanse-previewer"]
    assert {c["column"]: c["quarantined"] for c in preview["changes"]} == {"age": 2, "amount": 3}


def test_master_my_data_builds_golden_records(server: SpyGlassServer) -> None:
    import csv
    import io

    data = (
        b"customer_id,email,name,signup_date\n"
        b"1,Ann@x.com,Ann Lee,2024-01-01\n2,ann@x.com ,Ann Lee,2025-03-01\n"
        b"3,bob@y.com,Bob,2023-05-05\n4,bob@y.com,Robert Smith,2024-07-07\n"
    )
    account = make_account(server, prefix="master")
    params = {"golden-record-builder": {"survivorship_rules": {"name": "longest"}}}
    with httpx.Client(base_url=server.url, headers=auth(account), timeout=30) as c:
        task = c.post("/api/tasks", json={"tool_id": "master-my-data"}).json()
        assert len(task["agents"]) == 8
        urls = c.post(
            f"/api/tasks/{task['task_id']}/upload-urls",
            json={
                "files": {"primary": {"filename": "crm.csv", "content_type": "text/csv"}},
                "has_parameters": True,
            },
        ).json()
        for key, body in (("primary", data), ("parameters", json.dumps(params).encode())):
            info = urls["uploads"][key]
            httpx.put(info["url"], content=body, headers=info["headers"], timeout=10)
        assert c.post(f"/api/tasks/{task['task_id']}/process").status_code == 200
        assert wait_end(server, account, "data_tools", task["task_id"])[-1]["status"] == "COMPLETED"
        downloads = {
            d["filename"]: d
            for d in c.get(f"/api/tasks/{task['task_id']}/downloads").json()["downloads"]
        }
        golden = list(
            csv.DictReader(
                io.StringIO(httpx.get(downloads["golden_records.csv"]["url"], timeout=10).text)
            )
        )
        assert sorted(r["name"] for r in golden) == ["Ann Lee", "Robert Smith"]
        results = c.get(f"/api/tasks/{task['task_id']}/report").json()["report"]["agentResults"]
        built = results["golden-record-builder"]
        assert (built["rows_in"], built["golden_records"], built["merged_rows"]) == (4, 2, 2)
        assert results["key-identifier"]["primary_key"] == ["customer_id"]


def test_a_long_agent_reports_its_steps_on_the_task_socket(server: SpyGlassServer) -> None:
    """Progress inside an agent reaches a watcher through the real server: the socket is open
    before the run starts, so it sees every update, among them the profiler's own steps."""
    account = make_account(server, prefix="steps")
    rows = b"".join(b"%d,%d.5,%d\n" % (i, i % 97, i % 13) for i in range(2000))
    with httpx.Client(base_url=server.url, headers=auth(account), timeout=30) as c:
        task_id, _ = start_tool_task(c, data=b"id,amount,group\n" + rows)

        async def watch() -> list[dict]:
            url = f"{server.ws_url}/ws/data_tools/tasks/{account.token}/{task_id}"
            seen: list[dict] = []
            async with asyncio.timeout(60), websockets.connect(url) as ws:
                first = json.loads(await ws.recv())  # the snapshot: subscribed from here on
                seen.append(first)
                r = await asyncio.to_thread(c.post, f"/api/tasks/{task_id}/process")
                assert r.status_code == 200, r.text
                async for raw in ws:
                    seen.append(json.loads(raw))
            return seen

        messages = asyncio.run(watch())
    assert messages[-1]["status"] == "COMPLETED", messages[-1]
    steps = [m["message"] for m in messages if (m.get("message") or "").startswith("unified-")]
    assert any("statistics of column" in s for s in steps), [m.get("message") for m in messages]
