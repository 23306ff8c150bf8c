"""Files that pass the checks made before a task is charged (its first bytes) and fail when the
run reads them whole: how the tests make a run that fails on its file, refunded."""

from __future__ import annotations

from spyglass.tools.common.sniff import HEAD_BYTES


def not_utf8_past_the_head() -> bytes:
    """A CSV that is UTF-8 for its first HEAD_BYTES and Latin-1 after: 'is not UTF-8 text'."""
    rows = HEAD_BYTES // len(b"Ann,Paris\n") + 100
    return b"name,city\n" + b"Ann,Paris\n" * rows + "José,Besançon\n".encode("latin-1")
