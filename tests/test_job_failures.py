"""How a job's failure is recorded: an exception that declares its error code (a bad input
file) ends the task with that code and its message as written, and is not retried; any other
exception is a JOB_ERROR in the exception's own words, never its class name (the server log
has the class and the traceback, for the job's author)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from spyglass.config import Settings
from spyglass.tasks import TaskContext, TaskStatus, monitored_background_task
from spyglass.tasks.engine import Engine
from spyglass.tasks.registry import Registry, job_title
from spyglass.tools.common.frames import DataFileError
from tests.test_engine import run_to_end, spec_of


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    settings = Settings(
        data_dir=tmp_path, db_url=f"sqlite:///{tmp_path / 'f.db'}", port=0, secret_key="unit"
    )
    eng = Engine(settings, Registry())
    await eng.start()
    yield eng
    await eng.stop()


async def test_a_bad_file_fails_with_its_code_and_message_once(engine: Engine) -> None:
    runs: list[int] = []

    @monitored_background_task(retries=2, retry_backoff=0.01)
    async def reads(task: TaskContext) -> None:
        runs.append(1)
        raise DataFileError("'orders.csv' is empty")

    ended = await run_to_end(engine, spec_of(reads))
    assert ended.status is TaskStatus.FAILED
    assert (ended.error_code, ended.error_message) == ("BAD_INPUT_FILE", "'orders.csv' is empty")
    assert runs == [1], "another attempt on the same file would fail the same way"


async def test_any_other_exception_is_a_job_error_in_words_without_its_class(
    engine: Engine,
) -> None:
    @monitored_background_task
    async def broken(task: TaskContext) -> None:
        raise KeyError("price")

    ended = await run_to_end(engine, spec_of(broken))
    # People read what went wrong, never the exception's class (the server log has it).
    assert (ended.error_code, ended.error_message) == ("JOB_ERROR", "No value for the key 'price'")


def test_job_titles_come_from_doc_strings_or_names() -> None:
    assert job_title("Counts to ten.\n\nMore words.", "steps") == "Counts to ten"
    assert job_title("", "task2_with_args") == "Task2 with args"
    assert job_title(None, "key-identifier") == "Key identifier"
