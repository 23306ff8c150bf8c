"""A clean checkout stays clean: `make run` in a fresh clone changes no tracked file.

Reflex copies the `.web/package.json` its package manager wrote back to the tracked
`reflex.lock/package.json` after every install; the tracked copy is kept in exactly the form
that round trip writes (`tests.test_clean_checkout` fails on any difference).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.harness import ROOT, free_port
from tests.test_security import stop, wait_healthy


def make_run_in(folder: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """`make run` in `folder` with its own Makefile, using this checkout's installed tools."""
    env = {
        **os.environ,
        "SPYGLASS_PORT": str(port),
        "SPYGLASS_HOST": "127.0.0.1",
        "SPYGLASS_DATA_DIR": str(log.parent / "data"),
        "PATH": f"{ROOT}/.tools/node_modules/.bin:{os.environ['PATH']}",
    }
    command = [
        "make",
        f"VENV={ROOT}/.venv",
        f"TOOLS={ROOT}/.tools",
        # Installed already (this test runs in that venv): never reinstall from the clone.
        f"--old-file={ROOT}/.venv/.installed",
        f"--old-file={ROOT}/.tools/node_modules/.bin/bun",
        f"--old-file={ROOT}/.tools/node_modules/axe-core/axe.min.js",
        "run",
    ]
    return subprocess.Popen(
        command,
        cwd=folder,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


@pytest.mark.parametrize("layout", ["as committed", "as bun writes it"])
def test_make_run_leaves_a_fresh_clone_clean(tmp_path: Path, layout: str) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    if layout != "as committed":
        # The same pins in bun's layout (as `bun add` writes the file): `reflex run` used to
        # write them back in its own layout, a change in a tracked file at every first run.
        package = clone / "reflex.lock" / "package.json"
        package.write_text(json.dumps(json.loads(package.read_text()), indent=2) + "\n")
        git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
        subprocess.run([*git, "commit", "-qam", "bun's layout"], cwd=clone, check=True)
    assert git_status(clone) == ""
    port = free_port()
    proc = make_run_in(clone, port, tmp_path / "make-run.log")
    try:
        wait_healthy(proc, f"http://127.0.0.1:{port}", timeout=420)
    finally:
        stop(proc)
    assert (clone / ".web" / "build").is_dir()  # the pages were built in the clone
    assert git_status(clone) == "", (tmp_path / "make-run.log").read_text()[-3000:]


def git_status(folder: Path) -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
