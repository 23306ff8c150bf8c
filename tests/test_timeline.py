"""Where a run's time went, from its events: bars per agent or attempt, with durations that
match the events, waits, retries, and no step left "running" once the task has ended."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from spyglass.states.display import duration_text, human_error, remedy, title_of
from spyglass.states.timeline import Point, build

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class Events:
    """A run's events, written at seconds after T0."""

    def __init__(self) -> None:
        self.points: list[Point] = []

    def at(self, seconds: float, event_type: str, data: Any = None) -> Events:
        self.points.append(
            Point(len(self.points) + 1, T0 + timedelta(seconds=seconds), event_type, data)
        )
        return self

    def status(self, seconds: float, status: str, event_type: str = "status") -> Events:
        return self.at(seconds, event_type, {"status": status})

    def agent(self, seconds: float, which: str, agent: str) -> Events:
        return self.at(seconds, f"agent_{which}", {"agent": agent})


def bars_by_key(timeline: Any) -> dict[str, Any]:
    return {b.key: b for b in timeline.bars}


def test_one_bar_per_agent_with_the_durations_and_waits_of_its_events() -> None:
    run = (
        Events()
        .status(0, "PENDING")
        .status(0.5, "PROCESSING")
        .agent(2.0, "started", "unified-profiler")
        .agent(5.25, "completed", "unified-profiler")
        .agent(5.5, "started", "score-risk")
        .agent(6.0, "completed", "score-risk")
        .status(6.5, "COMPLETED", "success")
    )
    agents = ["unified-profiler", "score-risk", "readiness-rater"]
    timeline = build(run.points, status="COMPLETED", agents=agents, now=T0)
    bars = bars_by_key(timeline)
    assert [b.key for b in timeline.bars] == ["unified-profiler", "score-risk", "readiness-rater"]
    assert (bars["unified-profiler"].duration_ms, bars["unified-profiler"].wait_ms) == (3250, 2000)
    assert (bars["score-risk"].duration_ms, bars["score-risk"].wait_ms) == (500, 250)
    assert bars["unified-profiler"].state == bars["score-risk"].state == "done"
    assert bars["readiness-rater"].state == "not run"  # it ended without running this one
    assert timeline.total_ms == 6500 and timeline.failed_step == ""
    # Bars sit on the run's time axis: from queued (0 %) to the end (100 %).
    assert bars["unified-profiler"].offset_pct == round(100 * 2 / 6.5, 2)
    assert bars["score-risk"].width_pct == round(100 * 0.5 / 6.5, 2)


def test_nothing_is_left_running_once_the_task_ended() -> None:
    running = (
        Events()
        .status(0, "PENDING")
        .status(0.1, "PROCESSING")
        .agent(1, "started", "a")
        .agent(2, "completed", "a")
        .agent(2.5, "started", "b")
    )
    live = build(
        running.points, status="PROCESSING", agents=["a", "b", "c"], now=T0 + timedelta(seconds=4)
    )
    assert [b.state for b in live.bars] == ["done", "running", "waiting"]
    assert bars_by_key(live)["b"].duration_ms == 1500  # until now

    cancelled = build(
        running.status(3, "CANCELLED").points, status="CANCELLED", agents=["a", "b", "c"], now=T0
    )
    assert [b.state for b in cancelled.bars] == ["done", "stopped", "not run"]
    assert bars_by_key(cancelled)["b"].duration_ms == 500  # until it was cancelled

    failed_run = Events()
    failed_run.points = running.points[:-1]  # without the CANCELLED line
    failed_run.at(3.5, "error", {"status": "FAILED", "error_code": "JOB_ERROR"})
    failed = build(
        failed_run.points,
        status="FAILED",
        agents=["a", "b", "c"],
        labels={"b": "Risk scoring"},
        now=T0,
    )
    assert [b.state for b in failed.bars] == ["done", "failed", "not run"]
    assert failed.failed_step == "Risk scoring (b)"


def test_a_server_that_stopped_failed_no_step() -> None:
    run = (
        Events()
        .status(0, "PENDING")
        .status(0.1, "PROCESSING")
        .agent(1, "started", "a")
        .at(9, "error", {"status": "FAILED", "error_code": "INTERRUPTED", "retryable": True})
    )
    tool = build(run.points, status="FAILED", agents=["a", "b"], now=T0)
    assert [b.state for b in tool.bars] == ["stopped", "not run"]
    assert tool.failed_step == "a"
    job = build(run.points, status="FAILED", now=T0)
    assert [(b.key, b.state) for b in job.bars] == [("Run", "stopped")]


def test_a_bad_file_fails_before_any_agent() -> None:
    run = (
        Events()
        .status(0, "PENDING")
        .status(0.2, "PROCESSING")
        .at(0.3, "error", {"status": "FAILED", "error_code": "BAD_INPUT_FILE"})
    )
    timeline = build(run.points, status="FAILED", agents=["a", "b"], now=T0)
    assert [b.state for b in timeline.bars] == ["not run", "not run"]
    assert timeline.failed_step == "Reading the files"


def test_a_jobs_attempts_with_their_back_off() -> None:
    run = (
        Events()
        .status(0, "PENDING")
        .status(1, "PROCESSING")
        .at(2, "warning", {"error_code": "JOB_ERROR", "attempt": 1, "retry_in": 0.5})
        .status(2.5, "PROCESSING")
        .at(4, "warning", {"error_code": "JOB_ERROR", "attempt": 2, "retry_in": 1})
        .status(5, "PROCESSING")
        .at(5.75, "error", {"status": "FAILED", "error_code": "JOB_ERROR"})
    )
    timeline = build(run.points, status="FAILED", now=T0)
    assert [b.key for b in timeline.bars] == ["Attempt 1", "Attempt 2", "Attempt 3"]
    assert [b.duration_ms for b in timeline.bars] == [1000, 1500, 750]
    assert [b.wait_ms for b in timeline.bars] == [1000, 500, 1000]  # queued, then back-offs
    assert [b.state for b in timeline.bars] == ["failed", "failed", "failed"]
    assert timeline.attempts == 3
    assert timeline.failed_step == "In attempt 3 of 3, after 0.75 s"

    single = build(
        Events().status(0, "PENDING").status(0.5, "PROCESSING").status(3, "CANCELLED").points,
        status="CANCELLED",
        now=T0,
    )
    assert [(b.key, b.state, b.duration_ms) for b in single.bars] == [("Run", "stopped", 2500)]


def test_words_for_people() -> None:
    assert human_error("RuntimeError: the job broke on purpose") == "The job broke on purpose"
    assert human_error("'orders.csv' is empty") == "'orders.csv' is empty"
    assert duration_text(0.42) == "0.42 s"
    assert duration_text(0.000031) == "< 0.01 s"
    assert duration_text(3.46) == "3.5 s"
    assert duration_text(12.4) == "12 s"
    assert duration_text(125) == "2 min 05 s"
    assert duration_text(3720) == "1 h 02 min"
    assert title_of("data_tools", "profile-my-data", "profile-my-data") == "Profile my data"
    assert title_of("nowhere", "task2_with_args") == "Task2 with args"
    assert "another file" in remedy("BAD_INPUT_FILE", tool=True)
    assert "author" in remedy("JOB_ERROR", tool=False)
    assert "file" not in remedy("JOB_ERROR", tool=False)
