"""The periodic retention sweep: one process at a time (a lease in the database) deletes
what the admins' retention rules say is due, every `SPYGLASS_RETENTION_INTERVAL` seconds."""

from __future__ import annotations

import asyncio
import logging

from spyglass import audit
from spyglass.tasks.engine import Engine

log = logging.getLogger(__name__)
LEASE = "retention"
#: Seconds from start to the first periodic sweep, at most.
FIRST_SWEEP_AFTER = 600.0


async def sweep_once(engine: Engine, *, force: bool = False) -> dict[str, int] | None:
    """Sweep if this process holds the lease now (None: another one does). `force` (an
    admin's "sweep now") sweeps unless a sweep is running elsewhere this very moment."""
    interval = engine.settings.retention_interval
    hold = min(interval * 0.9, 600.0) if force else interval * 0.9
    if not await engine.take_sweep_lease(LEASE, hold):
        return None
    deleted = await engine.sweep_retention()
    if force:  # the periodic sweep keeps its rhythm
        await engine.take_sweep_lease(LEASE, interval * 0.9)
    if deleted:
        log.info("retention removed %s", deleted)
    return deleted


async def sweep_forever(engine: Engine) -> None:
    # The first sweep one interval after start (at most 10 minutes, so a fleet restarted
    # more often than its interval still sweeps): not while the server settles, nor between
    # an admin's new rules and the preview they are looking at.
    await asyncio.sleep(min(engine.settings.retention_interval, FIRST_SWEEP_AFTER))
    while True:
        try:
            deleted = await sweep_once(engine)
            if deleted:  # the server's own sweep: recorded when it removed anything
                detail = {"count": sum(deleted.values()), "by_status": deleted}
                await audit.record(None, None, "retention.sweep", "retention", "", detail)
        except Exception:
            log.exception("the retention sweep failed")
        await asyncio.sleep(engine.settings.retention_interval)
