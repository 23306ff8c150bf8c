"""Errors a client caused, raised anywhere below the API and answered the same way by it."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """`{"detail": message, "error_code": code[, "context"]}` with HTTP `status` at the API.

    Pages show `message` as it is, so it is written for the person who caused it.
    """

    def __init__(
        self, code: str, message: str, status: int = 400, context: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.context = context

    def headers(self) -> dict[str, str]:
        """Extra HTTP headers of the answer (e.g. `Retry-After`)."""
        return {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"detail": self.message, "error_code": self.code}
        if self.context is not None:
            body["context"] = self.context
        return body
