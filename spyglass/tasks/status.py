"""The task lifecycle: statuses, which are final, and how people read them."""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    CREATED = "CREATED"
    UPLOADING = "UPLOADING"
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    UPLOAD_FAILED = "UPLOAD_FAILED"
    EXPIRED = "EXPIRED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES

    @property
    def label(self) -> str:
        """The word the UI shows ("Processing", "Upload failed")."""
        return self.value.replace("_", " ").capitalize()

    @classmethod
    def parse(cls, value: str | TaskStatus) -> TaskStatus:
        """Accept `PROCESSING`, `processing` or the UI word `Processing`."""
        if isinstance(value, TaskStatus):
            return value
        try:
            return cls(str(value).strip().upper().replace(" ", "_"))
        except ValueError:
            allowed = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown task status {value!r}; expected one of {allowed}") from None


TERMINAL_STATUSES = frozenset(
    {
        TaskStatus.COMPLETED,
        TaskStatus.FAILED,
        TaskStatus.CANCELLED,
        TaskStatus.UPLOAD_FAILED,
        TaskStatus.EXPIRED,
    }
)
#: Statuses of a task that a live process is responsible for; found orphaned at start-up.
ACTIVE_STATUSES = frozenset({TaskStatus.PENDING, TaskStatus.PROCESSING})


class ErrorCode(StrEnum):
    TIMEOUT = "TIMEOUT"
    INTERRUPTED = "INTERRUPTED"
    JOB_ERROR = "JOB_ERROR"
    RESULT_NOT_SERIALIZABLE = "RESULT_NOT_SERIALIZABLE"
    #: The job's child process went over its memory cap (`SPYGLASS_JOB_MEMORY_MB`) or died.
    RESOURCE_LIMIT = "RESOURCE_LIMIT"
    #: An input file cannot be used (not a table, empty, a file an agent needs is missing):
    #: running it again on the same files fails the same way.
    BAD_INPUT_FILE = "BAD_INPUT_FILE"
