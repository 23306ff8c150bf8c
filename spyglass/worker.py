"""`spyglass worker`: run queued jobs (worker mode, `SPYGLASS_EXECUTOR=procrastinate`).

Start as many as you like, on any machines that reach the same PostgreSQL
(`SPYGLASS_DB_URL`) and Redis (`REDIS_URL`, for live progress); each takes up to
`--concurrency` jobs at once from the queues it is given (all by default). SIGTERM or
Ctrl-C stops it gracefully: it takes no new job and lets running ones finish for up to
`SPYGLASS_SHUTDOWN_GRACE` seconds, then ends them FAILED/INTERRUPTED.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from spyglass.config import get_settings

log = logging.getLogger("spyglass.worker")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--concurrency", type=int, default=4, help="jobs run at once by this worker (default 4)"
    )
    parser.add_argument(
        "--queue",
        action="append",
        dest="queues",
        metavar="NAME",
        help="take jobs only from this queue (repeat for several; default: every queue)",
    )


async def run(concurrency: int, queues: list[str] | None) -> None:
    from spyglass.jobs import load_jobs
    from spyglass.tasks.engine import Engine, set_engine

    settings = get_settings()
    load_jobs()
    from spyglass.webhooks import service as webhooks

    engine = Engine(settings, role="worker")
    set_engine(engine)
    hooks = webhooks.install(engine)  # its tasks' events are stored (and sent) here too
    await engine.start()
    sender = asyncio.create_task(hooks.run_forever(), name="spyglass-webhooks")
    try:
        await engine.run_worker(concurrency, queues)
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        await engine.stop()


def main(options: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = get_settings()
    except ValueError as exc:
        print(f"spyglass worker: {exc}", file=sys.stderr)
        return 2
    if not settings.queued:
        print(
            "spyglass worker: set SPYGLASS_EXECUTOR=procrastinate (with a PostgreSQL "
            "SPYGLASS_DB_URL) on the web servers and on the workers",
            file=sys.stderr,
        )
        return 2
    if options.concurrency < 1:
        print("spyglass worker: --concurrency must be at least 1", file=sys.stderr)
        return 2
    asyncio.run(run(options.concurrency, options.queues))
    return 0
