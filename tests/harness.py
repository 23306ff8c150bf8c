"""A real SpyGlass server in a child process, the way `make run` starts it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
REFLEX = str(Path(sys.executable).parent / "reflex")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def separate_checkout(folder: Path) -> Path:
    """A working folder of its own for a second full server (pages and API on one port).

    `reflex run` writes the port into the built pages under `.web`, so two full servers
    must not share one: this copies what the build needs (the app code is the same
    package), with the installed node modules linked rather than copied.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("rxconfig.py", "pyproject.toml"):
        shutil.copy2(ROOT / name, folder / name)
    for name in ("assets", "reflex.lock"):
        shutil.copytree(ROOT / name, folder / name, dirs_exist_ok=True)
    if (ROOT / ".web").exists():  # else `reflex run` sets the folder up from scratch
        shutil.copytree(
            ROOT / ".web",
            folder / ".web",
            ignore=shutil.ignore_patterns("node_modules"),
            dirs_exist_ok=True,
            symlinks=True,
        )
        modules = folder / ".web" / "node_modules"
        if (ROOT / ".web" / "node_modules").exists() and not modules.exists():
            modules.symlink_to(ROOT / ".web" / "node_modules")
    return folder


def wait_for(check: Callable[[], Any], timeout: float = 30, what: str = "it") -> Any:
    """Polls `check` until it returns something truthy, and returns that; fails after
    `timeout` seconds naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SpyGlassServer:
    """`full=True` serves pages and API on one port (prod build); else the backend only."""

    def __init__(
        self,
        data_dir: Path,
        *,
        full: bool = False,
        job_modules: str = "tests.jobs",
        env: dict[str, str] | None = None,
        root: Path = ROOT,
    ) -> None:
        self.data_dir = data_dir
        self.full = full
        #: The folder `reflex run` works in (its `.web` holds the built pages).
        self.root = root
        self.port = free_port()
        self.job_modules = job_modules
        self.extra_env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180.0) -> SpyGlassServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "SPYGLASS_DATA_DIR": str(self.data_dir),
            "SPYGLASS_JOB_MODULES": self.job_modules,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "REFLEX_USE_SYSTEM_BUN": "1",
            "REFLEX_CHECK_LATEST_VERSION": "0",
            "REFLEX_TELEMETRY_ENABLED": "false",
            # No rate limits on starts and token use (an empty rate is none), as a whole test
            # session starts more from one address than any limit allows; tests of the limits
            # set their own.
            "SPYGLASS_LIMIT_DIRECT_START": "",
            "SPYGLASS_LIMIT_API_TOKEN": "",
            **self.extra_env,
        }
        env["PATH"] = os.pathsep.join([str(ROOT / ".tools/node_modules/.bin"), env["PATH"]])
        port = str(self.port)
        mode = (
            ["--single-port", "--frontend-port", port]
            if self.full
            else ["--backend-only", "--backend-port", port]
        )
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [REFLEX, "run", "--env", "prod", *mode],
                cwd=self.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_tail()}")
            try:
                healthy = httpx.get(f"{self.url}/api/health", timeout=2).status_code == 200
                if healthy and (
                    not self.full or httpx.get(f"{self.url}/login/", timeout=5).is_success
                ):
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.kill()
        raise RuntimeError(f"server did not come up in {timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 150) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def _signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """Die at once, as a crashed or OOM-killed server would."""
        self._signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=30)
            self.proc = None

    def stop(self) -> None:
        self._signal(signal.SIGTERM)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait(timeout=20)
            self.proc = None
