"""A file larger than a task may hold in memory, over HTTP on a real server with a small cap
(SPYGLASS_JOB_MEMORY_MB=800, an address-space limit: the task's child cannot go over it):
profile-my-data streams it and its report has the known answers of the generated file (rows,
empty cells per column, minimum and maximum, duplicate rows); clean-my-data and
master-my-data fail at once with a message saying the file is too large for them, and every
credit comes back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.bigfiles_bench import measure, write_csv
from spyglass.tools.run import in_memory_limit
from tests.accounts import Account, make_account, set_credits
from tests.harness import SpyGlassServer
from tests.test_tool_flow import wait_end

#: The streamed run peaks at about 715 MB of address space here, loading whole at over 800.
CAP_MB = 800
ROWS = 1_000_000
CREDITS = 200


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    path = tmp_path_factory.mktemp("big") / "customers.csv"
    return path, write_csv(path, ROWS, seed=7)


def auth(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.token}"}


def run_tool(
    server: SpyGlassServer, account: Account, tool: str, agents: list[str] | None, data: bytes
) -> tuple[str, dict[str, Any]]:
    with httpx.Client(base_url=server.url, headers=auth(account), timeout=60) as c:
        task = c.post("/api/tasks", json={"tool_id": tool, "agents": agents}).json()
        files = {"primary": {"filename": "customers.csv", "content_type": "text/csv"}}
        tickets = c.post(f"/api/tasks/{task['task_id']}/upload-urls", json={"files": files})
        info = tickets.json()["uploads"]["primary"]
        put = httpx.put(info["url"], content=data, headers=info["headers"], timeout=120)
        assert put.status_code == 200, put.text
        assert c.post(f"/api/tasks/{task['task_id']}/process").status_code == 200
        end = wait_end(server, account, "data_tools", task["task_id"])[-1]
        return task["task_id"], end


def test_the_file_is_more_than_pandas_can_load_under_the_cap(
    big_file: tuple[Path, dict[str, Any]],
) -> None:
    path, known = big_file
    assert known["bytes"] > in_memory_limit(CAP_MB)
    loaded = measure(path, "pandas", CAP_MB)
    assert not loaded["ok"], loaded
    streamed = measure(path, "streamed", CAP_MB)
    assert streamed["ok"] and streamed["rows"] == ROWS, streamed
    assert streamed["peak_vm_mb"] <= CAP_MB and streamed["peak_rss_mb"] < CAP_MB


def test_a_file_over_the_memory_cap_profiles_and_the_others_refuse_it(
    new_server: Any, big_file: tuple[Path, dict[str, Any]]
) -> None:
    path, known = big_file
    server: SpyGlassServer = new_server(env={"SPYGLASS_JOB_MEMORY_MB": str(CAP_MB)})
    account = make_account(server, prefix="big")
    set_credits(server, account, CREDITS)
    data = path.read_bytes()
    agents = ["unified-profiler", "score-risk", "readiness-rater", "test-coverage"]
    task_id, end = run_tool(server, account, "profile-my-data", agents, data)
    assert end["status"] == "COMPLETED", end
    with httpx.Client(base_url=server.url, headers=auth(account), timeout=60) as c:
        report = c.get(f"/api/tasks/{task_id}/report").json()["report"]
        summary = report["executiveSummary"]
        assert (summary["rows"], summary["columns"]) == (ROWS, known["columns"])
        assert summary["duplicate_rows"] == known["duplicates"]
        assert summary["missing_cells"] == sum(known["nulls"].values())
        profile = report["agentResults"]["unified-profiler"]
        assert profile["rows"] == ROWS and profile["streamed"]["sample_rows"] <= 100_000
        columns = {col["name"]: col for col in profile["columns"]}
        for name, nulls in known["nulls"].items():
            assert columns[name]["nulls"] == nulls, name
            assert columns[name]["count"] == ROWS
        for name in ("amount", "qty", "score"):
            assert columns[name]["min"] == pytest.approx(known["min"][name]), name
            assert columns[name]["max"] == pytest.approx(known["max"][name]), name
        assert columns["qty"]["type"] == "integer" and columns["amount"]["type"] == "number"
        assert columns["country"]["distinct"] == 8
        assert columns["id"]["distinct"] == ROWS - known["duplicates"]
        assert sum(columns["amount"]["histogram"]["counts"]) == ROWS - known["nulls"]["amount"]
        charged = 10 + 10 + 5 + 5
        assert c.get("/api/me").json()["credits"] == CREDITS - charged
        for tool in ("clean-my-data", "master-my-data"):
            _, end = run_tool(server, account, tool, None, data)
            assert end["status"] == "FAILED" and end["error_code"] == "RESOURCE_LIMIT", end
            message = end["error_message"]
            size = f"({known['bytes'] / 1e6:,.0f} MB)"
            assert f"'customers.csv' {size} is too large for {tool}" in message, message
            assert "Profile it with profile-my-data (it reads a CSV of any size)" in message
            assert c.get("/api/me").json()["credits"] == CREDITS - charged, "refunded"
