"""`spyglass`: login, jobs, start (and watch with a progress bar), watch, result, cancel,
retry, tasks.

    spyglass --url https://spyglass.example.com login --email me@example.com
    spyglass start example_task2 task2_with_args --arg name=Matt --arg age=25 --watch

The server is `--url` or SPYGLASS_URL, else the one `spyglass login` signed in to, else
http://localhost:3000. The client token is `--token` or SPYGLASS_TOKEN, else the one
`spyglass login` stored for that server (`$XDG_CONFIG_HOME/spyglass/token`, mode 0600);
without one, only direct jobs can be used. Exit codes: 0 done (or COMPLETED), 1 the task
ended otherwise, 2 a refused or failed request.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from spyglass.client import store
from spyglass.client.client import TERMINAL, SpyGlassClient, SpyGlassError

EXIT_FAILED, EXIT_ERROR = 1, 2


def parse_args_list(pairs: list[str]) -> dict[str, Any]:
    """`name=Matt age=25` → {"name": "Matt", "age": 25} (values read as JSON when they can be)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, eq, raw = pair.partition("=")
        if not eq or not key:
            raise SpyGlassError(f"--arg takes name=value, not {pair!r}")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spyglass", description="Start SpyGlass jobs and follow them live."
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("SPYGLASS_URL"),
        help="the server (default: SPYGLASS_URL, the one you logged in to, or "
        f"{store.DEFAULT_URL})",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("SPYGLASS_TOKEN"),
        help="a client token (default: SPYGLASS_TOKEN, or the one `spyglass login` stored)",
    )
    parser.add_argument("--json", action="store_true", help="print raw JSON")
    sub = parser.add_subparsers(dest="command", required=True)
    login = sub.add_parser(
        "login",
        help="trade your email and password for a client token, stored for later commands",
        description="Asks for the password (or reads it from standard input when that is "
        "not a terminal, or with --password-stdin) and stores a new client token in "
        f"{store.config_dir()}/token (mode 0600) for this server.",
    )
    login.add_argument("--email", help="your account's email (asked if not given)")
    login.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    login.add_argument("--name", default="cli", help="the token's name (default: cli)")
    login.add_argument(
        "--scope",
        action="append",
        dest="scopes",
        choices=["tasks:read", "tasks:start", "tasks:manage", "tokens:manage"],
        help="a scope of the token (repeat; default: every scope your role allows)",
    )
    login.add_argument(
        "--expires-in-days", type=int, metavar="DAYS", help="default: the server's (90 days)"
    )
    sub.add_parser("logout", help="forget the stored client token")
    sub.add_parser("jobs", help="every job with its input fields")
    start = sub.add_parser("start", help="start a job")
    start.add_argument("state")
    start.add_argument("job")
    start.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE")
    start.add_argument("--args", dest="args_json", help="all arguments as one JSON object")
    start.add_argument("--watch", action="store_true", help="follow it to its end")
    start.add_argument("--priority", type=int, help="higher starts first (default: the job's)")
    start.add_argument("--queue", help="the queue it waits in (default: the job's)")
    start.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="the same key again within 24 h answers the task it started (no second start)",
    )
    when = start.add_mutually_exclusive_group()
    when.add_argument("--start-in", type=float, metavar="SECONDS", help="start it later")
    when.add_argument("--start-at", metavar="ISO8601", help="start it at, e.g. 2026-12-01T09:00Z")
    for name, text in (
        ("watch", "follow a task to its end"),
        ("result", "a task's status and result"),
        ("cancel", "cancel a task"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("task_id")
        cmd.add_argument("--state", help="the task's state (needed without a token)")
    retry = sub.add_parser("retry", help="run a failed or cancelled task again (token)")
    retry.add_argument("task_id")
    retry.add_argument("--watch", action="store_true")
    tasks = sub.add_parser("tasks", help="your tasks, newest first (token)")
    tasks.add_argument("--status", help="comma list, e.g. FAILED,CANCELLED")
    tasks.add_argument("--limit", type=int, default=20)
    from spyglass.worker import add_arguments

    add_arguments(sub.add_parser("worker", help="run queued jobs (worker mode, on a server)"))
    return parser


def main(argv: list[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    if options.command == "worker":
        from spyglass import worker

        return worker.main(options)
    console = Console()
    errors = Console(stderr=True)
    stored = store.load()
    url = store.normalise_url(options.url or (stored.url if stored else store.DEFAULT_URL))
    token = options.token
    if not token and stored is not None and stored.url == url:
        token = stored.token  # only to the server it was issued by
    try:
        if options.command == "logout":
            forgot = store.forget()
            console.print("Logged out." if forgot else "No stored token.", highlight=False)
            return 0
        if options.command == "login":
            with SpyGlassClient(url) as client:
                return _login(client, options, console)
        with SpyGlassClient(url, token) as client:
            return _run(client, options, console)
    except SpyGlassError as exc:
        errors.print(f"[red]error:[/red] {exc}", highlight=False)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


def _run(client: SpyGlassClient, options: argparse.Namespace, console: Console) -> int:
    command = options.command
    if command == "jobs":
        jobs = client.jobs()
        if options.json:
            return _dump(console, jobs)
        table = Table("state", "job", "direct", "inputs", "description")
        for job in jobs:
            fields = ", ".join((job.get("input_schema") or {}).get("properties", {}))
            table.add_row(
                (job.get("aliases") or [job["state_name"]])[0],
                job["task_name"],
                "yes" if job.get("direct") else "no",
                fields,
                (job.get("doc") or "").strip().splitlines()[0] if job.get("doc") else "",
            )
        console.print(table)
        return 0
    if command == "start":
        args = parse_args_list(options.arg)
        if options.args_json:
            try:
                args = {**json.loads(options.args_json), **args}
            except ValueError:
                raise SpyGlassError("--args must be a JSON object") from None
        task = client.start(
            options.state,
            options.job,
            args or None,
            priority=options.priority,
            queue=options.queue,
            start_in=options.start_in,
            start_at=options.start_at,
            idempotency_key=options.idempotency_key,
        )
        if not options.watch:
            return _dump(console, task) if options.json else _line(console, task)
        return _watch(client, task["task_id"], options.state, console, options.json)
    if command == "watch":
        state = options.state or client.state_of(options.task_id)
        return _watch(client, options.task_id, state, console, options.json)
    if command == "result":
        task = client.get(options.task_id, options.state)
        _dump(console, task) if options.json else _line(console, task, result=True)
        return 0 if task["status"] == "COMPLETED" else EXIT_FAILED
    if command == "cancel":
        task = client.cancel(options.task_id, options.state)
        return _dump(console, task) if options.json else _line(console, task)
    if command == "retry":
        task = client.retry(options.task_id)
        if options.watch:
            return _watch(client, task["task_id"], task["state_name"], console, options.json)
        return _dump(console, task) if options.json else _line(console, task)
    if command == "tasks":
        listed = client.tasks(options.status, options.limit)
        if options.json:
            return _dump(console, listed)
        rows = [
            (
                task["task_id"],
                f"{task['state_name']}.{task['task_type']}",
                task["status"],
                f"{task['progress']:.0f}%",
                task.get("error_message") or task.get("message") or "",
            )
            for task in listed["tasks"]
        ]
        if console.is_terminal:
            table = Table("task", "job", "status", "progress", "message")
            for row in rows:
                table.add_row(*row)
            console.print(table)
        else:  # one task a line, whole ids, for scripts
            for row in rows:
                console.print("\t".join(row), highlight=False, soft_wrap=True)
        page = listed["pagination"]
        console.print(f"{len(listed['tasks'])} of {page['total']}", style="dim")
        return 0
    raise SpyGlassError(f"unknown command {command}")


def _login(client: SpyGlassClient, options: argparse.Namespace, console: Console) -> int:
    email = options.email
    if not email:
        if not sys.stdin.isatty():
            raise SpyGlassError("give --email when standard input is not a terminal")
        email = input("Email: ").strip()
    if options.password_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
    if not email or not password:
        raise SpyGlassError("an email and a password are needed")
    issued = client.login(
        email,
        password,
        name=options.name,
        scopes=options.scopes,
        expires_in_days=options.expires_in_days,
    )
    path = store.save(client.url, issued["token"])
    if options.json:
        return _dump(console, {k: v for k, v in issued.items() if k != "token"})
    expiry = issued.get("expires_at") or "never"
    console.print(
        f"Logged in to {client.url} as {issued['owner_email']}: token {issued['prefix']}… "
        f"({' '.join(issued['scopes'])}; expires {expiry}) stored in {path}",
        highlight=False,
        soft_wrap=True,
    )
    return 0


def _dump(console: Console, body: Any) -> int:
    console.print_json(json.dumps(body, default=str))
    return 0


def _line(console: Console, task: dict[str, Any], *, result: bool = False) -> int:
    text = f"{task['task_id']} {task['status']} {task.get('progress', 0):.0f}%"
    if task.get("error_message"):
        text += f" {task['error_message']}"
    elif result and task.get("result") is not None:
        text += f" {json.dumps(task['result'], default=str)}"
    console.print(text, highlight=False, soft_wrap=True)
    return 0


def _watch(client: SpyGlassClient, task_id: str, state: str, console: Console, raw: bool) -> int:
    """Follow the task's socket: a progress bar on a terminal, one line per change elsewhere."""
    last: dict[str, Any] = {}

    async def follow() -> None:
        if raw or not console.is_terminal:
            async for msg in client.watch(task_id, state):
                last.update(msg)
                if raw:
                    console.print_json(json.dumps(msg, default=str))
                elif msg.get("type") != "event":
                    console.print(
                        f"{msg['status']:<10} {msg.get('progress') or 0:5.1f}%  "
                        f"{msg.get('message') or ''}",
                        highlight=False,
                        soft_wrap=True,
                    )
            return
        columns = (
            TextColumn("{task.fields[status]:<10}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[note]}"),
        )
        with Progress(*columns, console=console) as bar:
            line = bar.add_task("task", total=100, status="…", note="")
            async for msg in client.watch(task_id, state):
                last.update(msg)
                if msg.get("type") == "event":
                    continue
                eta = msg.get("eta_seconds")
                note = (msg.get("message") or "") + (f" (about {eta:.0f} s left)" if eta else "")
                bar.update(
                    line, completed=msg.get("progress") or 0, status=msg["status"], note=note
                )

    asyncio.run(follow())
    status = last.get("status")
    if status not in TERMINAL:
        raise SpyGlassError("the progress socket closed before the task ended")
    if not raw:
        if status == "COMPLETED":
            console.print(
                f"[green]COMPLETED[/green] {json.dumps(last.get('result'), default=str)}",
                highlight=False,
                soft_wrap=True,
            )
        else:
            detail = last.get("error_message") or last.get("message") or ""
            console.print(f"[red]{status}[/red] {detail}", highlight=False, soft_wrap=True)
    return 0 if status == "COMPLETED" else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
