"""This process's id, remembered: `os.getpid()` is a system call each time, and the hot paths
(each database write of the loop, each metric counted) ask whether they are still in the
process that opened their connection or file. A child made by `os.fork` (Granian's workers,
multiprocessing) renews it before any of its own code runs."""

from __future__ import annotations

import os

_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


def current() -> int:
    """`os.getpid()`, without the system call."""
    return _pid
