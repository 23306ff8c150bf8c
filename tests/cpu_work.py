"""Module-level functions the tests run in job child processes (`task.run_sync`)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def burn(pid_file: str, seconds: float) -> int:
    """Write this process's pid to `pid_file`, then burn CPU for `seconds`."""
    Path(pid_file).write_text(str(os.getpid()))
    deadline = time.monotonic() + seconds
    spins = 0
    while time.monotonic() < deadline:
        spins += sum(range(1000)) > 0
    return spins


def hog(megabytes: int) -> int:
    """Allocate `megabytes` MB (more than the child may use)."""
    block = bytearray(megabytes * 1024 * 1024)
    return len(block)


def echo(value: object) -> object:
    if value == "boom":
        raise ValueError("boom from the child")
    try:
        from spyglass.tasks.child import send

        send({"got": value})
    except RuntimeError:
        pass
    return value


def nap(seconds: float, value: object) -> object:
    """Sleep `seconds`, then return `value`."""
    time.sleep(seconds)
    return value
