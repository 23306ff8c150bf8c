"""The S000 file flow over HTTP: tools, create → upload-urls → PUT, on local storage and S3."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.accounts import Account, make_account
from tests.conftest import s3_client, s3_env
from tests.harness import SpyGlassServer

CSV = b"id,email,amount\n1,a@example.com,10\n2,b@example.com,12\n"


def auth(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.token}"}


@pytest.fixture
def alice(server: SpyGlassServer) -> Account:
    return make_account(server, prefix="files")


def test_tool_catalogue(server: SpyGlassServer) -> None:
    tools = {
        t["tool_id"]: t for t in httpx.get(f"{server.url}/api/tools", timeout=10).json()["tools"]
    }
    assert set(tools) == {"profile-my-data", "clean-my-data", "master-my-data"}
    profile = {a["agent_id"]: a for a in tools["profile-my-data"]["agents"]}
    assert len(profile) == 6 and profile["drift-detector"]["requires_files"] == [
        "primary",
        "baseline",
    ]
    assert profile["unified-profiler"]["parameters"]["properties"]["include_correlations"]
    assert all(a["cost"] > 0 for t in tools.values() for a in t["agents"])
    assert all(a["available"] for t in tools.values() for a in t["agents"])
    assert (
        len(tools["clean-my-data"]["agents"]) == 8 and len(tools["master-my-data"]["agents"]) == 8
    )


def test_create_tool_task_and_errors(server: SpyGlassServer, alice: Account) -> None:
    with httpx.Client(base_url=server.url, headers=auth(alice), timeout=10) as c:
        r = c.post("/api/tasks", json={"tool_id": "profile-my-data"})
        assert r.status_code == 201, r.text
        task = r.json()
        assert task["status"] == "CREATED" and task["tool_id"] == "profile-my-data"
        # By default every agent available in this version.
        assert len(task["agents"]) == 6 and task["cost"] == 65
        r = c.post(
            "/api/tasks",
            json={"tool_id": "clean-my-data", "agents": ["cleanse-writeback", "null-handler"]},
        )
        assert r.json()["agents"] == ["null-handler", "cleanse-writeback"], "tool order"
        assert r.json()["cost"] == 15
        r = c.post("/api/tasks", json={"tool_id": "master-my-data", "agents": ["key-identifier"]})
        assert r.status_code == 201 and r.json()["agents"] == ["key-identifier"]
        r = c.post("/api/tasks", json={"tool_id": "nope"})
        assert (r.status_code, r.json()["error_code"]) == (400, "INVALID_TOOL")
        r = c.post("/api/tasks", json={"tool_id": "clean-my-data", "agents": ["score-risk"]})
        assert (r.status_code, r.json()["error_code"]) == (400, "INVALID_AGENTS")
        for body in ({}, {"tool_id": "clean-my-data", "task_type": "task1"}):
            assert c.post("/api/tasks", json=body).status_code == 422


def upload_flow(
    server: SpyGlassServer, account: Account, read: Callable[[str], bytes | None]
) -> None:
    """create → upload-urls → PUT every file with no auth header → stored under the task."""
    with httpx.Client(base_url=server.url, headers=auth(account), timeout=10) as c:
        task = c.post("/api/tasks", json={"tool_id": "profile-my-data"}).json()
        body = {
            "files": {
                "primary": {"filename": "../../Customers 2026.csv", "content_type": "text/csv"},
                "baseline": {"filename": "base.csv", "content_type": "text/csv"},
            },
            "has_parameters": True,
        }
        r = c.post(f"/api/tasks/{task['task_id']}/upload-urls", json=body)
        assert r.status_code == 200, r.text
        urls = r.json()
        assert urls["status"] == "UPLOADING" and urls["expires_in_seconds"] == 900
        assert set(urls["uploads"]) == {"primary", "baseline", "parameters"}
        prefix = f"users/{account.id}/tasks/{task['task_id']}/inputs/"
        for key, info in urls["uploads"].items():
            assert info["key"].startswith(prefix) and ".." not in info["key"]
            assert info["method"] == "PUT"
            data = b'{"unified-profiler": {"sample_size": 10}}' if key == "parameters" else CSV
            put = httpx.put(info["url"], content=data, headers=info["headers"], timeout=10)
            assert put.status_code == 200, put.text
            assert read(info["key"]) == data
        assert urls["uploads"]["primary"]["key"].endswith("primary-Customers_2026.csv")
        now = c.get(f"/api/tasks/{task['task_id']}").json()
        assert now["status"] == "UPLOADING" and now["upload_started_at"]
        again = c.post(f"/api/tasks/{task['task_id']}/upload-urls", json=body)
        assert (again.status_code, again.json()["error_code"]) == (400, "INVALID_STATUS")


def test_upload_flow_on_local_storage(server: SpyGlassServer, alice: Account) -> None:
    def read(key: str) -> bytes | None:
        path = server.data_dir / "files" / key
        return path.read_bytes() if path.exists() else None

    upload_flow(server, alice, read)


def test_upload_url_errors(server: SpyGlassServer, alice: Account) -> None:
    other = make_account(server, prefix="files-other")
    with httpx.Client(base_url=server.url, headers=auth(alice), timeout=10) as c:
        task_id = c.post("/api/tasks", json={"tool_id": "profile-my-data"}).json()["task_id"]
        url = f"/api/tasks/{task_id}/upload-urls"
        cases: list[tuple[dict[str, Any], int, str]] = [
            (
                {
                    "files": {
                        "primary": {
                            "filename": "run.exe",
                            "content_type": "application/x-msdownload",
                        }
                    }
                },
                400,
                "UNSUPPORTED_FILE_TYPE",
            ),
            (
                {"files": {"primary": {"filename": "data.csv", "content_type": "image/png"}}},
                400,
                "UNSUPPORTED_FILE_TYPE",
            ),
            (
                {"files": {"primary": {"filename": "p.json", "content_type": "application/json"}}},
                400,
                "UNSUPPORTED_FILE_TYPE",
            ),
            (
                {"files": {"baseline": {"filename": "b.csv", "content_type": "text/csv"}}},
                400,
                "MISSING_PRIMARY_FILE",
            ),
            (
                {
                    "files": {
                        "primary": {"filename": "a.csv", "content_type": "text/csv"},
                        "extra": {"filename": "x.csv", "content_type": "text/csv"},
                    }
                },
                400,
                "INVALID_FILE_KEY",
            ),
            (
                {"files": {"primary": {"filename": "..", "content_type": "text/csv"}}},
                400,
                "INVALID_FILENAME",
            ),
        ]
        for body, status, code in cases:
            r = c.post(url, json=body)
            assert (r.status_code, r.json().get("error_code")) == (status, code), body
        assert c.get(f"/api/tasks/{task_id}").json()["status"] == "CREATED", "nothing changed"
        assert c.post(url, json={"files": "nope"}).status_code == 422
        r = httpx.post(
            f"{server.url}{url}",
            headers=auth(other),
            timeout=10,
            json={"files": {"primary": {"filename": "a.csv", "content_type": "text/csv"}}},
        )
        assert r.status_code == 404
        job = c.post("/api/tasks", json={"task_type": "testjobs.steps"}).json()["task_id"]
        r = c.post(
            f"/api/tasks/{job}/upload-urls",
            json={"files": {"primary": {"filename": "a.csv", "content_type": "text/csv"}}},
        )
        assert r.status_code == 400


def test_upload_flow_on_s3(new_server: Any, moto_endpoint: str) -> None:
    srv: SpyGlassServer = new_server(env=s3_env(moto_endpoint, "flow-bucket"))
    s3 = s3_client(moto_endpoint)

    def read(key: str) -> bytes | None:
        try:
            return s3.get_object(Bucket="flow-bucket", Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None

    upload_flow(srv, make_account(srv, prefix="s3"), read)
    assert httpx.get(f"{srv.url}/api/health", timeout=10).json()["storage"] == {
        "status": "ok",
        "backend": "s3",
    }
