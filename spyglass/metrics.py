"""Prometheus metrics, served at `/metrics`.

Tasks by status are counted in the database at each scrape, so every worker gives the
same figure. The rest (run time and queue wait histograms, finished tasks, socket
clients, bus lag) is measured in each worker and summed over the workers of this host
by prometheus_client's multiprocess mode: Granian's workers share one port, so a
scrape reaches one of them, and that one must speak for all.

Import this module before anything imports prometheus_client (the app module does).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any


def _prepare_multiprocess_dir() -> None:
    """One folder per server start, shared by its workers, in the data folder."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    from spyglass.config import get_settings

    base = get_settings().data_dir / "metrics"
    # Named after the server's main process: this one when the app is loaded before the
    # workers are forked (they inherit the variable), else the parent of this worker.
    owner = os.getppid() if multiprocessing.parent_process() is not None else os.getpid()
    folder = base / str(owner)
    base.mkdir(parents=True, exist_ok=True)
    for old in base.iterdir():  # folders of servers that are gone
        if old != folder and old.name.isdigit() and not _alive(int(old.name)):
            shutil.rmtree(old, ignore_errors=True)
    folder.mkdir(exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_prepare_multiprocess_dir()

from prometheus_client import (  # noqa: E402  (after the multiprocess folder is chosen)
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client import values as _values  # noqa: E402
from prometheus_client.core import GaugeMetricFamily  # noqa: E402

from spyglass import pid  # noqa: E402

# Each count asks whether this process was forked since its files were opened: by default a
# `getpid` system call per count; the remembered id (`spyglass.pid`) gives the same answer.
# Set before any metric is made (every metric takes the value class when it is made).
_values.ValueClass = _values.MultiProcessValue(process_identifier=pid.current)

from spyglass.tasks.status import TaskStatus  # noqa: E402
from spyglass.tasks.view import StatusChange  # noqa: E402

if TYPE_CHECKING:
    from spyglass.tasks.engine import Engine

RUN_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600)
LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)

RUN_TIME = Histogram(
    "spyglass_task_run_seconds",
    "Run time of finished tasks, from PROCESSING to their end",
    ["job", "status"],
    buckets=RUN_BUCKETS,
)
QUEUE_WAIT = Histogram(
    "spyglass_task_queue_wait_seconds",
    "Time tasks waited PENDING before they started",
    ["job"],
    buckets=WAIT_BUCKETS,
)
FINISHED = Counter(
    "spyglass_tasks_finished", "Tasks that ended, by job and status", ["job", "status"]
)
RETENTION_DELETED = Counter(
    "spyglass_retention_deleted",
    "Finished tasks the retention sweep deleted (with their events and files), by status",
    ["status"],
)
SOCKET_CLIENTS = Gauge(
    "spyglass_socket_clients", "WebSocket clients connected now", multiprocess_mode="livesum"
)
BUS_LAG = Histogram(
    "spyglass_bus_lag_seconds",
    "Time a change took from the worker that published it to another worker",
    buckets=LAG_BUCKETS,
)


class TaskStatusCollector:
    """`spyglass_tasks{status}`: every task in the database, by status."""

    def __init__(self, counts: Any) -> None:
        self.counts = counts

    def collect(self) -> Any:
        family = GaugeMetricFamily("spyglass_tasks", "Tasks by status", labels=["status"])
        from spyglass.tasks.status import TaskStatus

        counts = self.counts()
        for status in TaskStatus:
            family.add_metric([status.value], counts.get(status.value, 0))
        yield family


@dataclass(frozen=True)
class QueueFigures:
    """What waits, by (job, queue, count), and how many workers beat (None: inline mode)."""

    depth: list[tuple[str, str, int]]
    workers: int | None


class QueueCollector:
    """`spyglass_queue_depth{job,queue}` and `spyglass_workers`, read at each scrape."""

    def __init__(self, figures: QueueFigures) -> None:
        self.figures = figures

    def collect(self) -> Any:
        depth = GaugeMetricFamily(
            "spyglass_queue_depth", "Tasks waiting to run (PENDING)", labels=["job", "queue"]
        )
        for job, queue, count in self.figures.depth:
            depth.add_metric([job, queue], count)
        yield depth
        workers = GaugeMetricFamily(
            "spyglass_workers", "Worker processes with a recent heartbeat (worker mode)"
        )
        workers.add_metric([], self.figures.workers or 0)
        yield workers


def render(counts: Any, queues: QueueFigures | None = None) -> tuple[bytes, str]:
    """The exposition text of every worker of this host, plus the database's counts."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(TaskStatusCollector(counts))
    if queues is not None:
        registry.register(QueueCollector(queues))
    return generate_latest(registry), CONTENT_TYPE_LATEST


_children: dict[tuple[str, tuple[str, ...]], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    """`metric.labels(*labels)`, looked up once (it takes a lock on every call)."""
    key = (metric._name, labels)  # noqa: SLF001  (prometheus_client has no public name)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def install(engine: Engine) -> None:
    """Measure this worker's engine: status changes of its tasks and its bus's lag."""
    engine.on_status(observe_status)
    engine.on_bus_lag(BUS_LAG.observe)
    engine.on_retention(lambda status, count: _child(RETENTION_DELETED, status).inc(count))


def observe_status(change: StatusChange) -> None:
    """Count a task's end (however it was decided), its wait in the queue and its run time."""
    if change.status is TaskStatus.PROCESSING:
        if change.attempt == 1 and change.waited is not None:
            _child(QUEUE_WAIT, change.job).observe(change.waited)
    elif change.status.is_terminal:
        _child(FINISHED, change.job, change.status.value).inc()
        if change.ran is not None:
            _child(RUN_TIME, change.job, change.status.value).observe(change.ran)


def worker_stopped() -> None:
    """Forget this worker's live gauges (its counters and histograms stay counted)."""
    with contextlib.suppress(Exception):
        multiprocess.mark_process_dead(os.getpid())
