"""`/metrics` in Prometheus format, read with prometheus_client's own parser."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import websockets
import websockets.sync.client
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import start_job, wait_terminal, ws_base


def scrape(client_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample by (name, sorted labels)."""
    text = httpx.get(f"{client_url}/metrics", timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_count_tasks_time_them_and_see_sockets(client: httpx.AsyncClient) -> None:
    base = str(client.base_url).rstrip("/")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    before = await asyncio.to_thread(scrape, base)
    ids = [
        (await start_job(client, "testjobs", "steps", {"steps": 2, "delay": 0.01}))["task_id"]
        for _ in range(3)
    ]
    for task_id in ids:
        assert (await wait_terminal(client, "testjobs", task_id))["status"] == "COMPLETED"
    after = await asyncio.to_thread(scrape, base)
    job = "probe_jobs_state.steps"
    finished = "spyglass_tasks_finished_total"
    assert (
        value(after, finished, job=job, status="COMPLETED")
        - value(before, finished, job=job, status="COMPLETED")
        == 3
    )
    runs = "spyglass_task_run_seconds_count"
    assert value(after, runs, job=job, status="COMPLETED") >= 3
    assert value(after, "spyglass_task_queue_wait_seconds_count", job=job) >= 3
    assert value(after, "spyglass_tasks", status="COMPLETED") >= 3
    assert ("spyglass_tasks", (("status", "EXPIRED"),)) in after  # every status is listed

    long = await start_job(client, "testjobs", "steps", {"steps": 200, "delay": 0.05})
    url = f"{ws_base(client)}/ws/testjobs/task/ws/{long['task_id']}"
    async with websockets.connect(url) as one, websockets.connect(url) as two:
        json.loads(await one.recv()), json.loads(await two.recv())
        during = await asyncio.to_thread(scrape, base)
        assert value(during, "spyglass_socket_clients") >= 2
        # Counted from the database, which PROCESSING reaches with the next coalesced write.
        async with asyncio.timeout(10):
            while value(during, "spyglass_tasks", status="PROCESSING") < 1:
                await asyncio.sleep(0.05)
                during = await asyncio.to_thread(scrape, base)
    await client.post(f"/api/testjobs/task/cancel/{long['task_id']}")


def test_tasks_ended_by_recovery_are_counted(new_server: Any) -> None:
    """A task whose server died is ended at the next start: that end counts as finished."""
    env = {"PROMETHEUS_MULTIPROC_DIR": ""}  # each server picks its own folder in its data
    srv = new_server(env=env)
    started = httpx.post(
        f"{srv.url}/api/testjobs/task/start/steps", json={"steps": 400, "delay": 0.05}, timeout=10
    ).json()
    with websockets.sync.client.connect(
        f"{srv.ws_url}/ws/testjobs/task/ws/{started['task_id']}"
    ) as ws:
        while json.loads(ws.recv())["status"] != "PROCESSING":
            pass
    srv.kill()
    again = new_server(srv.data_dir, env=env)
    result = httpx.get(
        f"{again.url}/api/testjobs/task/result/{started['task_id']}", timeout=10
    ).json()
    assert (result["status"], result["error_code"]) == ("FAILED", "INTERRUPTED")
    samples = scrape(again.url)
    job = "probe_jobs_state.steps"
    assert value(samples, "spyglass_tasks_finished_total", job=job, status="FAILED") == 1


def test_the_remembered_process_id_is_the_childs_after_a_fork() -> None:
    """prometheus_client names its files by the id `spyglass.pid` gives (no system call per
    count): a forked worker must get its own, at once."""
    import os

    from spyglass import metrics, pid

    assert metrics.RUN_TIME is not None  # the metrics module set its value class
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: report what it remembers, and what the system says
        os.write(write, f"{pid.current()} {os.getpid()}".encode())
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(child, 0)
    remembered, actual = (int(n) for n in os.read(read, 100).split())
    os.close(read)
    assert status == 0 and remembered == actual == child
    assert pid.current() == os.getpid() != child
