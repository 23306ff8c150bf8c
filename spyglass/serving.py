"""How `reflex run --env prod` serves SpyGlass: Granian, respawning a worker that dies.

Reflex 0.10.1 builds its production server itself and passes Granian only a few options
(`reflex/utils/exec.py`, `run_granian_backend_prod`, lines 1123-1161):

    from granian.server import Server as Granian          # line 1138, read at call time
    granian_app = Granian(target=..., factory=True, address=host, port=port,
                          interface=Interfaces.ASGI, log_level=..., log_dictconfig=...,
                          workers=int(os.getenv("GRANIAN_WORKERS", ...)))   # lines 1150-1159
    granian_app.serve()

so `respawn_failed_workers` keeps Granian's default, False (`granian/server/common.py:125`).
Then the supervisor's loop (`common.py:548-550`) stops the whole server when any worker exits
unexpectedly: one `kill -9`'d or OOM-killed worker takes every other one down with it. Granian
reads no environment variable for this option (only its own CLI maps `GRANIAN_*` variables to
options, `granian/cli.py:606`), and Reflex has no setting for it.

`respawn_failed_workers()` makes Reflex's call ask for it: `granian.server.Server` becomes a
subclass whose only change is that default. Granian then forks a new worker in place of the
dead one (`common.py:557-562` calls `_respawn_workers`, 356-379) while the others keep serving
the port; it still exits if the same worker dies again within 5.5 s of its respawn (a crash
loop, `common.py:552-555`), and SIGTERM/SIGINT still stop every worker gracefully. Reflex
expects such later forks: it freezes the supervisor's heap before the first one so that "no
thread exists at any later fork either (e.g. a worker respawn)" (`exec.py:1118-1119`).

`GRANIAN_RESPAWN_FAILED_WORKERS=false` (the variable Granian's own CLI reads) restores
Reflex's behaviour. Remove this when Reflex passes the option itself.
"""

from __future__ import annotations

import os

#: What Granian's CLI (click's boolean) reads as false.
_FALSE = {"0", "false", "f", "no", "n", "off"}


def respawn_wanted() -> bool:
    """Respawn failed workers unless `GRANIAN_RESPAWN_FAILED_WORKERS` says no."""
    value = os.environ.get("GRANIAN_RESPAWN_FAILED_WORKERS", "").strip().lower()
    return value not in _FALSE


def respawn_failed_workers() -> None:
    """Have the Granian server that Reflex builds respawn a worker that exits unexpectedly.

    Call it before Reflex starts the server (rxconfig.py does, at import). Idempotent.
    """
    if not respawn_wanted():
        return
    import granian.server

    base = granian.server.Server
    if getattr(base, "spyglass_respawns", False):
        return

    class RespawningServer(base):  # type: ignore[valid-type,misc]
        """Granian's server with `respawn_failed_workers=True` unless the caller says."""

        spyglass_respawns = True

        def __init__(self, *args: object, **kwargs: object) -> None:
            kwargs.setdefault("respawn_failed_workers", True)
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    granian.server.Server = RespawningServer  # type: ignore[misc]
