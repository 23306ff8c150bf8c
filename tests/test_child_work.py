"""CPU work of jobs runs in child processes: a cancel kills them, a memory cap bounds them.

Through the public interfaces of a real server: `task.run_sync` in a test job, and the data
tools' agents; the child processes are found with psutil under the server's process tree.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from spyglass.tools.catalogue import TOOLS
from tests.accounts import Account, make_account
from tests.conftest import start_job
from tests.harness import SpyGlassServer, wait_for
from tests.test_credits import balance
from tests.test_tool_flow import auth


def wait_burning(pid: int, cpu: float = 0.1, timeout: float = 30) -> None:
    """Until process `pid` has used `cpu` more seconds of CPU: it is working, however busy
    the machine (a CPU-percent sample can fall short when others share the cores)."""
    proc = psutil.Process(pid)
    start = sum(proc.cpu_times()[:2])
    wait_for(lambda: sum(proc.cpu_times()[:2]) - start > cpu, timeout, f"{pid} to burn CPU")


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def tree(server: SpyGlassServer) -> list[psutil.Process]:
    assert server.proc is not None
    root = psutil.Process(server.proc.pid)
    return [root, *root.children(recursive=True)]


def _cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""


def job_children(server: SpyGlassServer) -> set[int]:
    """The pids of the jobs' child processes (forked by the fork server of the web process)."""
    procs = tree(server)
    servers = {p.pid for p in procs if "forkserver" in _cmdline(p)}
    return {p.pid for p in procs if p.pid in servers and p.ppid() in servers and not gone(p.pid)}


def web_processes(server: SpyGlassServer) -> list[psutil.Process]:
    """The server's own processes: its tree without the fork server and the job children."""
    return [p for p in tree(server) if "forkserver" not in _cmdline(p)]


def wide_csv(rows: int = 50, columns: int = 10_000, seed: int = 11) -> bytes:
    """The hostile file of issue 11: few rows, very many columns (~1 MB)."""
    rnd = random.Random(seed)
    lines = [",".join(f"c{i}" for i in range(columns))]
    lines += [",".join(str(rnd.randint(0, 9)) for _ in range(columns)) for _ in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def start_tool(
    c: httpx.Client, tool_id: str, agents: list[str], data: bytes, baseline: bytes | None = None
) -> str:
    task = c.post("/api/tasks", json={"tool_id": tool_id, "agents": agents})
    assert task.status_code in (200, 201), task.text
    task_id: str = task.json()["task_id"]
    files = {"primary": data} if baseline is None else {"primary": data, "baseline": baseline}
    body = {"files": {k: {"filename": f"{k}.csv", "content_type": "text/csv"} for k in files}}
    urls = c.post(f"/api/tasks/{task_id}/upload-urls", json=body).json()
    for key, content in files.items():
        info = urls["uploads"][key]
        put = httpx.put(info["url"], content=content, headers=info["headers"], timeout=30)
        assert put.is_success
    return task_id


def events(c: httpx.Client, task_id: str) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = c.get(f"/api/tasks/{task_id}/events").json()["events"]
    return body


async def test_cancel_kills_the_run_sync_child(server: SpyGlassServer, tmp_path: Path) -> None:
    pid_file = tmp_path / "burn.pid"
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        started = await start_job(
            client, "testjobs", "burn", {"pid_file": str(pid_file), "seconds": 120}
        )
        task_id = started["task_id"]
        text = wait_for(lambda: pid_file.exists() and pid_file.read_text(), 30, "the child's pid")
        pid = int(text)
        assert pid not in {p.pid for p in web_processes(server)}, "the CPU work ran in the server"
        wait_burning(pid)
        asked = time.monotonic()
        r = await client.post(f"/api/testjobs/task/cancel/{task_id}")
        assert r.status_code == 200, r.text
        wait_for(lambda: gone(pid), 2, "the child to be killed")
        print(f"run_sync child gone {time.monotonic() - asked:.3f} s after the cancel request")
        result = (await client.get(f"/api/testjobs/task/result/{task_id}")).json()
        assert result["status"] == "CANCELLED", result


async def test_the_child_dies_with_the_web_process(new_server: Any, tmp_path: Path) -> None:
    srv: SpyGlassServer = new_server()
    pid_file = tmp_path / "burn.pid"
    async with httpx.AsyncClient(base_url=srv.url, timeout=30) as client:
        await start_job(client, "testjobs", "burn", {"pid_file": str(pid_file), "seconds": 120})
        pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), 30, "the pid"))
    assert pid not in {p.pid for p in web_processes(srv)}, "the CPU work ran in the server"
    fork_server = psutil.Process(pid).parent()
    assert fork_server is not None
    web = fork_server.parent()
    assert web is not None and web.pid in {p.pid for p in web_processes(srv)}
    killed = time.monotonic()
    web.kill()  # only the web process, as the OOM killer would
    wait_for(lambda: gone(pid), 2, "the child to stop with its web process")
    print(f"child gone {time.monotonic() - killed:.3f} s after kill -9 of the web process")


def test_cancel_kills_a_running_agent_and_refunds(server: SpyGlassServer) -> None:
    account = make_account(server, prefix="cpucancel")
    before = balance(server, account)
    with httpx.Client(base_url=server.url, headers=auth(account), timeout=30) as c:
        # golden-record-builder on 10,000 columns burns CPU for over a minute
        task_id = start_tool(c, "master-my-data", ["golden-record-builder"], wide_csv())
        existing = job_children(server)
        assert c.post(f"/api/tasks/{task_id}/process").status_code == 200
        wait_for(
            lambda: any(e["event_type"] == "agent_started" for e in events(c, task_id)),
            60,
            "the agent to start",
        )
        child = wait_for(lambda: job_children(server) - existing, 10, "the agent's child")
        assert len(child) == 1, child
        pid = child.pop()
        wait_burning(pid)  # the agent is working
        asked = time.monotonic()
        r = c.post(f"/api/tasks/{task_id}/cancel")
        assert r.status_code == 200, r.text
        wait_for(lambda: gone(pid), 2, "the agent's child to be killed")
        print(f"agent child gone {time.monotonic() - asked:.3f} s after the cancel request")

        task = c.get(f"/api/tasks/{task_id}").json()
        assert task["status"] == "CANCELLED", task
        timeline = events(c, task_id)
        last = timeline[-1]
        assert last["event_type"] == "status" and last["data"]["status"] == "CANCELLED", last
        assert not [e for e in timeline if e["event_type"] == "agent_completed"]
        assert (
            "refunded for the agents that did not finish (golden-record-builder)"
            in (last["message"])
        )
        assert balance(server, account) == before  # no agent finished: all refunded
        # nothing more comes: the child is gone and the job with it
        assert len(events(c, task_id)) == len(timeline)


def test_a_very_wide_file_stays_within_the_cap_and_out_of_the_server(new_server: Any) -> None:
    """50 × 10,000 (and a baseline as wide) through the six profile agents under a 1 GB cap:
    it finishes within the cap (correlations are bounded, every other step is linear in the
    columns) or, on a machine where it cannot, ends RESOURCE_LIMIT with a plain message;
    either way the web process does not grow."""
    srv: SpyGlassServer = new_server(env={"SPYGLASS_JOB_MEMORY_MB": "1024"})
    account: Account = make_account(srv, prefix="wide")
    agents = [a.id for a in TOOLS["profile-my-data"].agents]
    with httpx.Client(base_url=srv.url, headers=auth(account), timeout=30) as c:
        baseline = wide_csv(seed=12)
        task_id = start_tool(c, "profile-my-data", agents, wide_csv(), baseline)
        web = web_processes(srv)
        start = {p.pid: p.memory_info().rss for p in web}
        peak = dict(start)
        assert c.post(f"/api/tasks/{task_id}/process").status_code == 200

        def ended() -> bool:
            for p in web:
                peak[p.pid] = max(peak[p.pid], p.memory_info().rss)
            status: str = c.get(f"/api/tasks/{task_id}").json()["status"]
            return status in ("COMPLETED", "FAILED", "CANCELLED")

        wait_for(ended, 120, "the task to end")
        task = c.get(f"/api/tasks/{task_id}").json()
        print("the 10,000-column file under a 1024 MB cap:", task["status"], task["error_code"])
        if task["status"] == "COMPLETED":
            report = c.get(f"/api/tasks/{task_id}/report").json()["report"]
            profile = report["agentResults"]["unified-profiler"]
            assert len(profile["columns"]) == 10_000 and len(profile["correlations"]) == 100
            assert report["agentResults"]["drift-detector"]["columns_compared"] == 10_000
        else:
            assert (task["status"], task["error_code"]) == ("FAILED", "RESOURCE_LIMIT"), task
            assert "more memory than a task may use (1024 MB)" in task["error_message"]
            assert "Traceback" not in task["error_message"]
        growth = {pid: (peak[pid] - start[pid]) / 2**20 for pid in start}
        print("web processes' RSS growth (MB):", json.dumps(growth))
        assert max(growth.values()) < 100, growth
        assert not job_children(srv), "the child process outlived its task"
