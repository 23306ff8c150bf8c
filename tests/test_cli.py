"""The `spyglass` command end to end: the installed console script against a real server."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.accounts import PASSWORD, make_account
from tests.harness import SpyGlassServer

SPYGLASS = str(Path(sys.executable).parent / "spyglass")


def cli(*args: str, token: str | None = None, timeout: float = 60) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPYGLASS_")}
    if token:
        env["SPYGLASS_TOKEN"] = token
    done = subprocess.run(
        [SPYGLASS, *args], capture_output=True, text=True, timeout=timeout, env=env
    )
    return done.returncode, done.stdout, done.stderr


def test_jobs_and_a_direct_job_watched_to_its_result(server: SpyGlassServer) -> None:
    code, out, _ = cli("--url", server.url, "jobs")
    assert code == 0 and "task2_with_args" in out and "example_task2" in out
    code, out, err = cli(
        "--url", server.url,
        "start", "example_task2", "task2_with_args", "--arg", "name=Matt", "--arg", "age=25",
        "--watch",
    )  # fmt: skip
    assert code == 0, err
    lines = out.splitlines()
    assert any(line.startswith("PROCESSING") for line in lines)
    assert lines[-1] == 'COMPLETED "Completed task for Matt, age 25"'
    percents = [float(m) for m in re.findall(r"(\d+\.\d)%", out)]
    assert percents == sorted(percents) and percents[-1] == 100.0


def test_token_commands_start_result_list_cancel_retry(server: SpyGlassServer) -> None:
    user = make_account(server, prefix="cli")
    url = ("--url", server.url)
    code, out, err = cli(
        *url, "start", "testjobs", "steps", "--arg", "steps=5", "--arg", "delay=0.02", "--watch",
        token=user.token,
    )  # fmt: skip
    assert code == 0, err
    assert out.splitlines()[-1] == 'COMPLETED {"steps": 5}'
    code, out, _ = cli(*url, "tasks", "--status", "COMPLETED", token=user.token)
    assert code == 0 and "COMPLETED" in out and "1 of 1" in out
    task_id = re.search(r"[0-9a-f-]{36}", out)
    assert task_id
    code, out, _ = cli(*url, "result", task_id.group(0), token=user.token)
    assert code == 0 and out.strip().endswith('COMPLETED 100% {"steps": 5}')

    code, out, _ = cli(
        *url, "start", "testjobs", "steps", "--args", '{"steps": 400, "delay": 0.05}',
        token=user.token,
    )  # fmt: skip
    assert code == 0
    long_id = out.split()[0]
    time.sleep(0.5)
    code, out, _ = cli(*url, "cancel", long_id, token=user.token)
    assert code == 0 and "CANCELLED" in out
    code, out, _ = cli(*url, "result", long_id, token=user.token)
    assert code == 1 and "CANCELLED" in out  # the task did not complete
    code, out, _ = cli(*url, "retry", long_id, token=user.token)
    assert code == 0 and "PENDING" in out
    retried = out.split()[0]
    code, out, _ = cli(*url, "cancel", retried, token=user.token)
    assert code == 0


def test_a_failing_job_and_refused_requests_set_the_exit_code(server: SpyGlassServer) -> None:
    user = make_account(server, prefix="cli-errors")
    url = ("--url", server.url)
    code, out, _ = cli(*url, "start", "testjobs", "boom", "--watch", token=user.token)
    assert code == 1 and "FAILED" in out and "the job broke on purpose" in out
    code, _, err = cli(*url, "tasks", token="sg_not-a-real-token")
    assert code == 2 and "INVALID_TOKEN" in err
    code, _, err = cli(*url, "start", "example_task2", "no_such_job")
    assert code == 2 and "JOB_NOT_FOUND" in err
    code, _, err = cli(*url, "start", "example_task2", "task2_with_args", "--arg", "age=old")
    assert code == 2 and "VALIDATION_ERROR" in err and "age" in err
    code, _, err = cli(*url, "retry", "00000000-0000-4000-8000-000000000000")
    assert code == 2 and "needs a client token" in err
    code, _, err = cli("--url", "http://127.0.0.1:9", "jobs")
    assert code == 2 and "cannot reach" in err


def test_a_terminal_gets_a_progress_bar(server: SpyGlassServer) -> None:
    """On a terminal (a pseudo-terminal here) watching draws rich's progress bar."""
    primary, secondary = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPYGLASS_")}
    env.update(TERM="xterm", COLUMNS="100")
    proc = subprocess.Popen(
        [SPYGLASS, "--url", server.url, "start", "testjobs", "steps",
         "--arg", "steps=20", "--arg", "delay=0.05", "--watch"],
        stdin=secondary, stdout=secondary, stderr=secondary, env=env,
    )  # fmt: skip
    os.close(secondary)
    output = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([primary], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        elif proc.poll() is not None:
            break
    os.close(primary)
    assert proc.wait(timeout=10) == 0
    text = output.decode(errors="replace")
    assert "━" in text and "100%" in text and "COMPLETED" in text


def login_cli(
    config: Path, *args: str, password: str | None = None, timeout: float = 60
) -> tuple[int, str, str]:
    """`spyglass …` with its config folder at `config` (XDG_CONFIG_HOME), no token in the
    environment, the password (if any) on standard input."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPYGLASS_")}
    env["XDG_CONFIG_HOME"] = str(config)
    done = subprocess.run(
        [SPYGLASS, *args],
        input=None if password is None else password + "\n",
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    return done.returncode, done.stdout, done.stderr


def test_login_stores_a_private_token_that_later_commands_use(
    server: SpyGlassServer, tmp_path: Path
) -> None:
    user = make_account(server, prefix="cli-login")
    config = tmp_path / "config"
    token_file = config / "spyglass" / "token"

    code, _, err = login_cli(
        config, "--url", server.url, "login", "--email", user.email, password="wrong password"
    )
    assert code == 2 and "BAD_CREDENTIALS" in err
    assert not token_file.exists()

    code, out, err = login_cli(
        config, "--url", server.url, "login", "--email", user.email, "--password-stdin",
        "--name", "laptop", "--expires-in-days", "30",
        password=PASSWORD,
    )  # fmt: skip
    assert code == 0, err
    assert f"Logged in to {server.url} as {user.email}" in out and "tasks:read" in out
    assert str(token_file) in out.replace("\n", "")
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert token_file.parent.stat().st_mode & 0o777 == 0o700
    stored = token_file.read_text().strip()
    assert stored.startswith("sg_") and stored not in out  # the secret is not printed

    # Later commands use it: no --token, no SPYGLASS_TOKEN, not even --url.
    code, out, err = login_cli(
        config, "start", "testjobs", "steps", "--arg", "steps=2", "--arg", "delay=0.01", "--watch"
    )
    assert code == 0, err
    assert out.splitlines()[-1] == 'COMPLETED {"steps": 2}'
    code, out, err = login_cli(config, "--url", server.url, "tasks")
    assert code == 0, err
    assert "COMPLETED" in out and "1 of 1" in out
    me = httpx.get(
        f"{server.url}/api/me", headers={"Authorization": f"Bearer {stored}"}, timeout=30
    ).json()
    assert me["email"] == user.email and me["token"]["name"] == "laptop"
    # Another server never gets it.
    code, _, err = login_cli(config, "--url", "http://127.0.0.1:9", "tasks")
    assert code == 2 and "needs a client token" in err

    code, out, _ = login_cli(config, "logout")
    assert code == 0 and not token_file.exists()
    code, _, err = login_cli(config, "--url", server.url, "tasks")
    assert code == 2 and "needs a client token" in err


def test_login_with_a_read_only_scope_cannot_start(server: SpyGlassServer, tmp_path: Path) -> None:
    user = make_account(server, prefix="cli-scope")
    config = tmp_path / "config"
    code, _, err = login_cli(
        config, "--url", server.url, "login", "--email", user.email, "--scope", "tasks:read",
        password=PASSWORD,
    )  # fmt: skip
    assert code == 0, err
    code, _, err = login_cli(config, "--url", server.url, "start", "testjobs", "steps")
    assert code == 2 and "INSUFFICIENT_SCOPE" in err and "tasks:start" in err


def test_login_on_a_terminal_asks_for_the_email_and_a_hidden_password(
    server: SpyGlassServer, tmp_path: Path
) -> None:
    user = make_account(server, prefix="cli-prompt")
    config = tmp_path / "config"
    primary, secondary = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPYGLASS_")}
    env.update(TERM="xterm", COLUMNS="200", XDG_CONFIG_HOME=str(config))
    proc = subprocess.Popen(
        [SPYGLASS, "--url", server.url, "login"],
        stdin=secondary, stdout=secondary, stderr=secondary, env=env,
    )  # fmt: skip
    os.close(secondary)
    output = b""

    def read_until(text: bytes, timeout: float = 30) -> None:
        nonlocal output
        deadline = time.monotonic() + timeout
        while text not in output and time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(primary, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                output += chunk
        assert text in output, output.decode(errors="replace")

    read_until(b"Email: ")
    os.write(primary, user.email.encode() + b"\n")
    read_until(b"Password: ")
    os.write(primary, PASSWORD.encode() + b"\n")
    read_until(b"Logged in to")
    assert proc.wait(timeout=30) == 0
    os.close(primary)
    assert PASSWORD.encode() not in output  # not echoed
    token_file = config / "spyglass" / "token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    code, out, err = login_cli(config, "--url", server.url, "tasks")
    assert code == 0 and "0 of 0" in out, err
