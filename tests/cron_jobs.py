"""A cron job, loaded only by the tests of schedules (it would fire in every server)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import ClassVar

from spyglass.states.monitor import MonitorState
from spyglass.tasks import TaskContext, monitored_background_task


class CronJobsState(MonitorState):
    state_alias: ClassVar[str] = "cronjobs"

    @staticmethod
    @monitored_background_task(cron="* * * * * */2")
    async def tick(task: TaskContext) -> float:
        """Every two seconds: notes the time it ran in SPYGLASS_TEST_CRON_FILE."""
        now = time.time()
        with Path(os.environ["SPYGLASS_TEST_CRON_FILE"]).open("a") as fh:
            fh.write(f"{now:.3f} {os.getpid()}\n")
        return now
