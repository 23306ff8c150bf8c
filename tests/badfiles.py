"""Files that pass the checks made before a task is charged (its first bytes) and fail when the
run reads them whole: how the tests make a run that fails on its file, refunded."""

from __future__ import annotations

from spyglass.tools.common.sniff import HEAD_BYTES


def not_utf8_past_the_head() -> bytes:
    """A CSV that is UTF-8 for its first HEAD_BYTES and Latin-1 after: 'is not UTF-8 text'."""
    rows = HEAD_BYTES // len(b"Ann,Paris\n") + 100
    return b"name,city\n" + b"Ann,Paris\n" * rows + "José,Besançon\n".encode("latin-1")


def not_utf8_past_the_first_block() -> bytes:
    """UTF-8 for its first 2 MB (past the first block pyarrow parses, which makes `city` a text
    column), then a Latin-1 row: pyarrow stops on it."""
    rows = 2 * 1024 * 1024 // len(b"Ann,Paris\n")
    return b"name,city\n" + b"Ann,Paris\n" * rows + "José,Besançon\n".encode("latin-1")


def not_utf8_in_a_wide_header() -> bytes:
    """A header of 40,000 columns, wider than the head the checks read, whose last name is
    Latin-1."""
    names = [f"column_{i}" for i in range(40_000)] + ["Besançon"]
    header = ",".join(names).encode("latin-1")
    return header + b"\n" + b",".join(b"1" for _ in names) + b"\n"
