"""Errors a client caused, raised anywhere below the API and answered the same way by it."""

from __future__ import annotations


class DomainError(Exception):
    """`{"detail": message, "error_code": code}` with HTTP `status` when it reaches the API."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
