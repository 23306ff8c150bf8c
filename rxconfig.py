"""Reflex configuration: the app lives in the `spyglass` package.

With `REDIS_URL` set, Reflex keeps page state in that Redis too (`REFLEX_REDIS_URL`), so
several workers serve the same browser tabs; SpyGlass's bus uses the same server.

CORS: only the origins in `SPYGLASS_ALLOWED_ORIGINS` get `Access-Control-Allow-Origin` (Reflex's
default is every origin, with credentials); the app's own pages are same-origin and need none.

Workers: with several Granian workers (`GRANIAN_WORKERS=N`, or Reflex's default with Redis),
a worker that dies (`kill -9`, OOM) is forked again while the others keep serving; Reflex
alone would stop the whole server. See `spyglass/serving.py` for why this is set here.

Weight: the pages' shared root module imports no whole component library
(`spyglass/frontend.py`), so /tasks loads only the Radix components it draws.

Clean checkouts: `make run` leaves tracked files alone (`spyglass/lockfiles.py`).
"""

import os

import reflex as rx
from reflex.plugins.sitemap import SitemapPlugin

from spyglass.api.security import cors_origins
from spyglass.frontend import keep_radix_out_of_the_root
from spyglass.lockfiles import keep_tracked_package_json
from spyglass.serving import respawn_failed_workers

# Reflex reads this file in the process that becomes Granian's supervisor, before it builds
# the server (reflex/utils/exec.py:1138-1161), which passes no `respawn_failed_workers`.
respawn_failed_workers()
# Reflex copies `.web/package.json` over the tracked `reflex.lock/package.json` after every
# install, in whatever layout its package manager wrote: only a change of pins may reach it.
keep_tracked_package_json()
# Each page loads the Radix components it draws, not all of Radix (`spyglass/frontend.py`).
keep_radix_out_of_the_root()

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
