"""The Reflex app: pages, the API mounted above Reflex's own routes, and the engine's lifespan."""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import AsyncIterator

import reflex as rx

from spyglass.api.app import create_api
from spyglass.config import get_settings
from spyglass.pages.tasks import tasks_page
from spyglass.states import examples  # noqa: F401  (declares the example jobs)
from spyglass.tasks.engine import get_engine

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

for module in get_settings().job_modules:  # jobs must be declared before the API is built
    importlib.import_module(module)


@contextlib.asynccontextmanager
async def engine_lifespan() -> AsyncIterator[None]:
    engine = get_engine()
    await engine.start()
    try:
        yield
    finally:
        await engine.stop()


app = rx.App(api_transformer=create_api(), theme=rx.theme(accent_color="indigo"))
app.register_lifespan_task(engine_lifespan)
app.add_page(tasks_page, route="/tasks", title="Tasks · SpyGlass", on_load=None)
app.add_page(tasks_page, route="/", title="SpyGlass")
