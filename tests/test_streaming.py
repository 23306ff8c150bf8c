"""The streamed profile (`spyglass.tools.profile.streaming`) against the same file loaded whole:
every figure it states as exact is the loaded file's, block after block; what comes from its
sample is the loaded file's when the sample holds every row, and close to it otherwise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.bigfiles_bench import write_csv
from spyglass.storage.base import Storage
from spyglass.storage.local import LocalStorage
from spyglass.storage.s3 import S3Storage
from spyglass.tools.catalogue import TOOLS
from spyglass.tools.common.frames import load_table
from spyglass.tools.common.memo import streamed, table_rows
from spyglass.tools.common.report import build_report, to_json
from spyglass.tools.common.sniff import HEAD_BYTES, DataFileError, check_file, sniff_csv
from spyglass.tools.common.stats import duplicate_rows, frame_stats
from spyglass.tools.common.toolkit import run_agents
from spyglass.tools.profile import streaming
from spyglass.tools.profile.streaming import stream_profile
from spyglass.tools.run import FileTooLargeError, ToolInput, read_input

ROWS = 60_000


@pytest.fixture(scope="module")
def csv_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("stream") / "customers.csv"
    write_csv(path, ROWS, seed=3)
    return path


def _stream(path: Path, monkeypatch: pytest.MonkeyPatch, **limits: int) -> Any:
    monkeypatch.setattr(streaming, "BLOCK_BYTES", 256 * 1024)  # many blocks
    monkeypatch.setattr(streaming, "EXACT_VALUES", 1_000)  # ids and e-mails spill to disk
    for name, value in limits.items():
        monkeypatch.setattr(streaming, name, value)
    data = path.read_bytes()
    dialect = sniff_csv(data[:HEAD_BYTES], path.name, len(data) <= HEAD_BYTES)
    return stream_profile(lambda: path.open("rb"), dialect, path.name)


EXACT = [
    "kind",
    "count",
    "nulls",
    "distinct",
    "minimum",
    "maximum",
    "zeros",
    "infinite",
    "min_length",
    "max_length",
    "date_range",
    "categories",
    "histogram",
]


def _compare(path: Path, sample: Any, *, whole_sample: bool) -> None:
    loaded = load_table(path.read_bytes(), path.name)
    want, got = frame_stats(loaded), frame_stats(sample)
    assert list(got) == list(want)
    assert table_rows(sample) == ROWS and streamed(sample) is not None
    assert duplicate_rows(sample) == duplicate_rows(loaded) > 0
    for name, w in want.items():
        g = got[name]
        for figure in EXACT:
            assert getattr(g, figure) == getattr(w, figure), (name, figure)
        for figure in ("mean", "std", "skewness"):
            expected = getattr(w, figure)
            if expected is None:
                assert getattr(g, figure) is None, (name, figure)
                continue
            assert getattr(g, figure) == pytest.approx(expected, rel=1e-9, abs=1e-9), name
        if w.categories is not None:
            assert sorted(g.top, key=lambda t: (-t[1], t[0])) == sorted(
                w.top, key=lambda t: (-t[1], t[0])
            ), name
        if whole_sample:
            assert (g.quartiles, g.outliers, g.pii) == (w.quartiles, w.outliers, w.pii), name
        elif w.quartiles is not None:
            assert g.quartiles is not None
            spread = (w.maximum or 0) - (w.minimum or 0)
            for a, b in zip(g.quartiles, w.quartiles, strict=True):
                assert abs(a - b) <= 0.02 * spread, name


def test_a_streamed_file_has_the_loaded_files_figures(
    csv_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sample = _stream(csv_file, monkeypatch, SAMPLE_ROWS=ROWS)
    assert len(sample) == ROWS
    _compare(csv_file, sample, whole_sample=True)


def test_a_small_sample_changes_only_what_comes_from_it(
    csv_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sample = _stream(csv_file, monkeypatch, SAMPLE_ROWS=5_000)
    assert len(sample) == 5_000
    assert sample["id"].is_monotonic_increasing, "the sample keeps the file's order"
    _compare(csv_file, sample, whole_sample=False)


def test_a_column_that_changes_type_in_a_later_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = ["n;x;y"] + [f"{i};{i % 7};{i}" for i in range(30_000)]
    lines += ["30000;3.5;7", "30001;;abc"]
    path = tmp_path / "late.csv"
    path.write_text("\n".join(lines) + "\n")
    sample = _stream(path, monkeypatch)
    stats = frame_stats(sample)
    assert (stats["n"].kind, stats["x"].kind, stats["y"].kind) == ("integer", "number", "string")
    assert (stats["x"].nulls, stats["x"].maximum, stats["x"].count) == (1, 6.0, 30_002)
    assert table_rows(sample) == 30_002


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_a_stored_file_over_the_limit_is_streamed_from_storage(
    backend: str, csv_file: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """`read_input` as a task's child calls it: over the limit, profile-my-data streams the
    stored file (local files and S3 objects alike; the checks read only a prefix), and
    clean-my-data refuses it before reading it."""
    storage: Storage
    if backend == "s3":
        endpoint = request.getfixturevalue("moto_endpoint")
        storage = S3Storage(
            "stream-test",
            endpoint_url=endpoint,
            region="us-east-1",
            access_key="testing",
            secret_key="testing",
            max_upload_bytes=1 << 30,
        )
        storage.ensure_bucket()
    else:
        storage = LocalStorage(tmp_path / "files", "secret", 1 << 30)
    data = csv_file.read_bytes()
    key = "users/1/tasks/t1/inputs/primary-customers.csv"
    storage.write(key, data, "text/csv")
    assert storage.read_prefix(key, 100) == data[:100]
    source = ToolInput(storage_key=key, filename="customers.csv")
    frame = read_input(TOOLS["profile-my-data"], storage, source, limit=len(data) // 2)
    assert streamed(frame) is not None and table_rows(frame) == ROWS
    assert len(frame) == ROWS  # the default sample holds every one of these rows
    with pytest.raises(FileTooLargeError, match="too large for clean-my-data"):
        read_input(TOOLS["clean-my-data"], storage, source, limit=len(data) // 2)
    whole = read_input(TOOLS["profile-my-data"], storage, source, limit=len(data))
    assert streamed(whole) is None and len(whole) == ROWS


def test_the_report_and_results_cards_of_a_streamed_file(
    csv_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All six agents (drift against a streamed baseline too) and the report on a streamed
    file; its results page says it was read in blocks, with the sample's size."""
    sample = _stream(csv_file, monkeypatch, SAMPLE_ROWS=5_000)
    baseline = _stream(csv_file, monkeypatch, SAMPLE_ROWS=5_000)
    tool = TOOLS["profile-my-data"]
    frames = {"primary": sample, "baseline": baseline}
    ctx = run_agents(tool, [a.id for a in tool.agents], frames, task_id="streamed")
    report = json.loads(to_json(build_report(tool, ctx)))
    summary = report["executiveSummary"]
    assert summary["rows"] == ROWS and summary["duplicate_rows"] == ROWS // 1_000
    assert report["duplicateGroups"] == [] and report["rowLevelIssues"] == []
    drift = report["agentResults"]["drift-detector"]
    assert drift["current_rows"] == drift["baseline_rows"] == ROWS
    assert drift["drifted_columns"] == [], "a file against itself"
    assert report["agentResults"]["governance-checker"]["pii_columns"] == ["email"]
    figures = {f.label: f for f in tool.cards(report).figures}
    assert figures["Read in blocks"].value == "yes"
    assert "a sample of 5,000 rows" in figures["Read in blocks"].detail


def test_a_header_and_blank_lines_past_the_head_have_no_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "header.csv"
    path.write_text("a,b\n" + "\n" * (HEAD_BYTES + 10))  # passes the checks: more than a head
    assert check_file(path.read_bytes()[:HEAD_BYTES], path.name, complete=False)
    with pytest.raises(DataFileError, match="has a header but no data rows"):
        _stream(path, monkeypatch)
