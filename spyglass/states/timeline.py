"""Where a task's time went, from its events: one bar per agent (a data tool's run) or per
attempt (a job's), each with when it began, how long it took, how long it waited before
it and how many attempts it needed.

A data tool's agents run in turn: each one's `agent_started` and `agent_completed` events
(`data.agent`) bound its bar, and the wait before it is the time since the previous agent
ended (for the first, since the task was queued: reading the files, waiting for a slot).
A job's attempts begin at each PROCESSING status and end at a failed attempt's warning,
its end, or the next wait; the wait before one is its time in the queue, or the back-off
before a retry.

When the task has ended without completing, nothing is left "running": the agent that was
running when it failed is "failed" (when cancelled or interrupted: "stopped"), and those
that never began are "not run".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from spyglass.states.display import duration_text, parse_time

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "UPLOAD_FAILED", "EXPIRED"}
#: Words for each state a step can be in.
STATE_WORDS = {
    "done": "done",
    "running": "running",
    "waiting": "waiting",
    "failed": "failed",
    "stopped": "stopped",
    "not run": "not run",
}


@dataclass(frozen=True)
class Point:
    """What the timeline needs of one event."""

    seq: int
    at: datetime
    event_type: str
    data: Any


def point(seq: int, timestamp: datetime | str | None, event_type: str, data: Any) -> Point | None:
    at = parse_time(timestamp)
    return Point(seq, at, event_type, data) if at is not None else None


@dataclass
class Bar:
    """One step of the run, as the page draws it."""

    key: str = ""
    label: str = ""
    state: str = ""
    #: Where the bar begins and how wide it is, in % of the whole run (and as CSS lengths).
    offset_pct: float = 0.0
    width_pct: float = 0.0
    left: str = "0%"
    span: str = "0%"
    duration_ms: int = 0
    duration: str = ""
    wait_ms: int = 0
    wait: str = ""
    attempts: int = 0
    #: "1 retry", "2 retries" (empty without any).
    retries: str = ""
    #: The whole line in words, for screen readers and the bar's tooltip.
    summary: str = ""


@dataclass
class Timeline:
    bars: list[Bar]
    #: The whole run: from queued to its end (or now).
    total_ms: int
    #: Where a failed task stopped, in words ("Data profiling and statistics
    #: (unified-profiler)", "Reading the files", "In attempt 3 of 3, after 1.2 s"), or "".
    failed_step: str
    #: How many times it ran (a job's attempts; the most any agent needed).
    attempts: int = 0


def _status(p: Point) -> str | None:
    return p.data.get("status") if isinstance(p.data, dict) else None


def _code(p: Point) -> str | None:
    return p.data.get("error_code") if isinstance(p.data, dict) else None


def _agent(p: Point) -> str | None:
    agent = p.data.get("agent") if isinstance(p.data, dict) else None
    return agent if isinstance(agent, str) else None


def _retries(attempts: int) -> str:
    n = max(0, attempts - 1)
    return "" if n == 0 else f"{n} retr{'y' if n == 1 else 'ies'}"


def build(
    points: Sequence[Point],
    *,
    status: str,
    agents: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
    now: datetime,
) -> Timeline:
    """The bars of a run whose events are `points` (in order) and whose status is `status`."""
    points = sorted(points, key=lambda p: p.seq)
    if not points:
        return Timeline([], 0, "", 0)
    queued = next((p.at for p in points if _status(p) == "PENDING"), points[0].at)
    ended = status in TERMINAL
    # A server that stopped (INTERRUPTED) failed no step: the one running was stopped.
    interrupted = any(_code(p) == "INTERRUPTED" for p in points if _status(p) == "FAILED")
    end_at = next((p.at for p in reversed(points) if _status(p) in TERMINAL), None)
    finish = end_at if ended and end_at is not None else (points[-1].at if ended else now)
    if agents:
        steps = _agent_steps(points, agents, status, queued, finish, interrupted)
    else:
        steps = _attempt_steps(points, status, queued, finish)
    origin = min([queued, *(s[1] for s in steps if s[1] is not None)])
    total = max((finish - origin).total_seconds(), 0.001)
    bars = []
    names = labels or {}
    for key, start, stop, state, wait, attempts in steps:
        label = names.get(key, key)
        bar = Bar(key=key, label=label, state=state, attempts=attempts, retries=_retries(attempts))
        if start is not None and stop is not None:
            seconds = max(0.0, (stop - start).total_seconds())
            bar.duration_ms = round(seconds * 1000)
            bar.duration = duration_text(seconds)
            bar.offset_pct = round(100 * (start - origin).total_seconds() / total, 2)
            bar.width_pct = round(max(0.6, 100 * seconds / total), 2)
            bar.offset_pct = min(bar.offset_pct, 100 - bar.width_pct)
        bar.left, bar.span = f"{bar.offset_pct:g}%", f"{bar.width_pct:g}%"
        if wait is not None:
            bar.wait_ms = round(wait * 1000)
            bar.wait = duration_text(wait)
        parts = [label, STATE_WORDS.get(state, state)]
        if bar.duration:
            parts.append(f"took {bar.duration}" if state == "done" else f"ran {bar.duration}")
        if bar.wait:
            parts.append(f"waited {bar.wait} before it")
        if bar.retries:
            parts.append(bar.retries)
        bar.summary = ", ".join(parts)
        bars.append(bar)
    attempts = max((b.attempts for b in bars), default=0) if agents else len(bars)
    if not agents:
        for bar in bars:  # a job's attempts: their count is said once, not per bar
            bar.retries = ""
    failed = status == "FAILED"
    return Timeline(
        bars, round(total * 1000), _failed_step(bars, bool(agents)) if failed else "", attempts
    )


def _failed_step(bars: Sequence[Bar], tool: bool) -> str:
    culprit = next((b for b in reversed(bars) if b.state in ("failed", "stopped")), None)
    if tool:
        if culprit is not None:
            return (
                culprit.label
                if culprit.label == culprit.key
                else f"{culprit.label} ({culprit.key})"
            )
        if not any(b.duration for b in bars):
            return "Reading the files"
        return "Writing the report"
    if culprit is None:
        return ""
    after = f", after {culprit.duration}" if culprit.duration else ""
    if len(bars) == 1:
        return f"While running{after}"
    return f"In attempt {culprit.attempts} of {len(bars)}{after}"


Step = tuple[str, datetime | None, datetime | None, str, float | None, int]


def _agent_steps(
    points: Sequence[Point],
    agents: Sequence[str],
    status: str,
    queued: datetime,
    finish: datetime,
    interrupted: bool,
) -> list[Step]:
    starts: dict[str, list[datetime]] = {}
    done: dict[str, datetime] = {}
    for p in points:
        agent = _agent(p)
        if agent is None:
            continue
        if p.event_type == "agent_started":
            starts.setdefault(agent, []).append(p.at)
            done.pop(agent, None)  # a new attempt: its end is still to come
        elif p.event_type == "agent_completed":
            done[agent] = p.at
    ended = status in TERMINAL
    steps: list[Step] = []
    previous_end = queued
    for agent in sorted(agents, key=lambda a: starts[a][-1] if a in starts else finish):
        if agent not in starts:
            steps.append((agent, None, None, "not run" if ended else "waiting", None, 0))
            continue
        start = starts[agent][-1]
        if agent in done:
            stop, state = done[agent], "done"
        elif not ended:
            stop, state = finish, "running"
        else:
            failed = status == "FAILED" and not interrupted
            stop, state = finish, "failed" if failed else "stopped"
        wait = max(0.0, (start - previous_end).total_seconds())
        steps.append((agent, start, stop, state, wait, len(starts[agent])))
        previous_end = max(previous_end, stop)
    order = {a: i for i, a in enumerate(agents)}
    # Agents in the order they ran, then those that never began in the order chosen.
    return sorted(steps, key=lambda s: (s[1] is None, s[1] or finish, order.get(s[0], 0)))


def _attempt_steps(
    points: Sequence[Point], status: str, queued: datetime, finish: datetime
) -> list[Step]:
    spans: list[tuple[datetime, datetime | None, str]] = []
    begun: datetime | None = None
    for p in points:
        st = _status(p)
        if st == "PROCESSING":
            if begun is not None:  # a new attempt without an end between: the last one stopped
                spans.append((begun, p.at, "stopped"))
            begun = p.at
        elif begun is not None:
            if p.event_type == "warning" and isinstance(p.data, dict) and "attempt" in p.data:
                spans.append((begun, p.at, "failed"))  # retried after this
                begun = None
            elif st in TERMINAL:
                state = {"COMPLETED": "done", "FAILED": "failed"}.get(st, "stopped")
                if _code(p) == "INTERRUPTED":
                    state = "stopped"
                spans.append((begun, p.at, state))
                begun = None
            elif st == "PENDING":  # back in the queue (a worker stopped, a queued retry)
                spans.append((begun, p.at, "stopped"))
                begun = None
    if begun is not None:
        ended = status in TERMINAL
        spans.append((begun, finish, "running" if not ended else "stopped"))
    steps: list[Step] = []
    previous_end = queued
    many = len(spans) > 1
    for i, (start, stop, state) in enumerate(spans, start=1):
        wait = max(0.0, (start - previous_end).total_seconds())
        key = f"Attempt {i}" if many else "Run"
        steps.append((key, start, stop, state, wait, i))
        previous_end = stop or start
    return steps
