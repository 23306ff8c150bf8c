"""The task engine: declare jobs, run them, record them, stream their progress.

This package knows nothing of Reflex pages; states and routes use it.
"""

from spyglass.tasks.context import TaskContext
from spyglass.tasks.decorator import monitored_background_task
from spyglass.tasks.engine import Engine, get_engine
from spyglass.tasks.registry import JobInputError, JobSpec, registry
from spyglass.tasks.status import ErrorCode, TaskStatus

__all__ = [
    "Engine",
    "ErrorCode",
    "JobInputError",
    "JobSpec",
    "TaskContext",
    "TaskStatus",
    "get_engine",
    "monitored_background_task",
    "registry",
]
