"""Which uploads the app still takes, and the sweep that clears abandoned ones.

A signed upload URL writes only while its task waits for its files (CREATED or UPLOADING)
and only under a key the task announced: a PUT after processing started, after the task
ended or was deleted, writes nothing (409 UPLOAD_CLOSED / 404 UPLOAD_NOT_FOUND).
"""

from __future__ import annotations

import asyncio
import logging
import re

from spyglass.storage import get_storage
from spyglass.storage.base import StorageError
from spyglass.tasks.engine import get_engine
from spyglass.tasks.status import TaskStatus

log = logging.getLogger(__name__)

WAITING_FOR_FILES = frozenset({TaskStatus.CREATED, TaskStatus.UPLOADING})
#: Seconds without a write after which a part of an upload counts as abandoned. A live
#: upload writes every few milliseconds; a killed one never again.
PARTIAL_UPLOAD_MAX_IDLE = 300.0
_TASK_OF_INPUT = re.compile(r"^users/[^/]+/tasks/([^/]+)/inputs/[^/]+$")


async def check_upload_target(key: str) -> None:
    """Raise unless `key` is an announced input of a task that is waiting for its files."""
    match = _TASK_OF_INPUT.match(key)
    engine = get_engine()
    task = await engine.get(match.group(1)) if match else None
    if task is None:
        raise StorageError("UPLOAD_NOT_FOUND", "This upload's task no longer exists", 404)
    if task.status not in WAITING_FOR_FILES:
        status = task.status.label
        raise StorageError(
            "UPLOAD_CLOSED",
            f"This task no longer takes uploads (it is {status.lower()}); "
            "start a new task to send another file",
            409,
        )
    if key not in await engine.input_keys(task.id):
        raise StorageError("UPLOAD_NOT_FOUND", "This task did not ask for that file", 404)


async def sweep_once(max_age: float) -> None:
    """End abandoned upload tasks EXPIRED and remove parts of uploads nobody finished."""
    await get_engine().expire_uploads(max_age)
    removed = await asyncio.to_thread(get_storage().sweep_partial_uploads, PARTIAL_UPLOAD_MAX_IDLE)
    if removed:
        log.info("removed %d abandoned partial upload(s)", removed)


async def sweep_forever(max_age: float) -> None:
    """Run for the server's lifetime, first at start-up, then soon after each URL dies."""
    interval = max(0.5, min(60.0, max_age / 4))
    while True:
        try:
            await sweep_once(max_age)
        except Exception:
            log.exception("sweeping abandoned uploads failed")
        await asyncio.sleep(interval)
