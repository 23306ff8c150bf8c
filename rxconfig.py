"""Reflex configuration: the app lives in the `spyglass` package.

With `REDIS_URL` set, Reflex keeps page state in that Redis too (`REFLEX_REDIS_URL`), so
several workers serve the same browser tabs; SpyGlass's bus uses the same server.

CORS: only the origins in `SPYGLASS_ALLOWED_ORIGINS` get `Access-Control-Allow-Origin` (Reflex's
default is every origin, with credentials); the app's own pages are same-origin and need none.
"""

import os

import reflex as rx
from reflex.plugins.sitemap import SitemapPlugin

from spyglass.api.security import cors_origins

if os.environ.get("REDIS_URL") and not os.environ.get("REFLEX_REDIS_URL"):
    os.environ["REFLEX_REDIS_URL"] = os.environ["REDIS_URL"]

config = rx.Config(
    app_name="spyglass",
    telemetry_enabled=False,
    show_built_with_reflex=False,
    disable_plugins=[SitemapPlugin],
    redis_url=os.environ.get("REFLEX_REDIS_URL") or None,
    cors_allowed_origins=cors_origins(),
)
