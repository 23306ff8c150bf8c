"""A checkout stays clean when Reflex builds it: the tracked `reflex.lock/package.json`.

Reflex 0.10.1 keeps the frontend's pins in `reflex.lock/` and mirrors them both ways
(`reflex/utils/frontend_skeleton.py`): it renders `.web/package.json` from the tracked copy
with its own template (one line of JSON, `_compile_package_json`), lets the package manager
edit it (`bun add` rewrites it in bun's layout, indented, whenever it touches it), and then
copies `.web/package.json` back over the tracked file byte for byte
(`sync_web_lockfiles_to_root`, after `reflex init` and after every frontend install,
`reflex/utils/js_runtimes.py:850`). The two writers disagree on layout, so the tracked file
flipped between them: a fresh clone showed a change after its first `make run` although no
pin had moved.

`keep_tracked_package_json()` makes that copy-back skip a `package.json` whose JSON is the same
as the tracked one (same names, versions, scripts; key order and layout aside): the tracked
file changes only when a pin does, which is a change to commit. Called from `rxconfig.py`, so
it holds in every `reflex` command. Remove it when Reflex compares before it copies.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

PACKAGE_JSON = "package.json"


def _same_json(a: Path, b: Path) -> bool:
    try:
        return bool(json.loads(a.read_text()) == json.loads(b.read_text()))
    except (OSError, ValueError):
        return False


def keep_tracked_package_json() -> None:
    from reflex.utils import frontend_skeleton

    original: Callable[[str], Any] = frontend_skeleton.sync_web_lockfile_to_root
    if getattr(original, "spyglass_keeps_layout", False):
        return

    @functools.wraps(original)
    def sync_web_lockfile_to_root(filename: str) -> None:
        if filename == PACKAGE_JSON:
            web = frontend_skeleton.get_web_lockfile_path(filename)
            tracked = frontend_skeleton.get_root_lockfile_path(filename)
            if web.exists() and tracked.exists() and _same_json(web, tracked):
                return  # the same pins: leave the tracked file as it is
        original(filename)

    sync_web_lockfile_to_root.spyglass_keeps_layout = True  # type: ignore[attr-defined]
    frontend_skeleton.sync_web_lockfile_to_root = sync_web_lockfile_to_root
