"""Each tool's results page in Debian chromium, its numbers checked against the report JSON.

A generated customer table (with a baseline drawn before a shift, gaps, absurd amounts, one
row repeated 60 times and people entered twice with another phone number) is uploaded
through the New task form for each tool; its results page is read and every figure, every
table's size and the cells that carry numbers are compared with `GET /api/tasks/<id>/report`.
Also: duplicates shown as groups with their count, the histogram opening on a measuring
column, labelled chart axes, human type names, drift's reasons, tests and p-values, the
alerts, clean's "what changed", master's conflicts a page at a time, the bill, and no Python
booleans or exception names anywhere on the page.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from playwright.sync_api import Browser, Page, expect

from spyglass.tools.catalogue import TOOLS
from spyglass.tools.common.cards import pick
from tests.accounts import Account, make_account
from tests.badfiles import not_utf8_past_the_head
from tests.driftdata import customers
from tests.harness import SpyGlassServer
from tests.test_tasks_page import browser, sign_in  # noqa: F401  (shared browser fixture)

pytestmark = pytest.mark.browser

ROWS = 600
#: One row repeated this many times more: one group on the page, not 60 lines.
COPIES = 60
#: People entered a second time (same e-mail) with another phone number: master's conflicts.
AGAIN = 30
ABSURD = [1e9, 2e9, 5e9]


def generated(tmp: Path) -> dict[str, Path]:
    now = customers(41, rows=ROWS, shift=True)
    base = customers(42, rows=ROWS)
    now.loc[[3, 7, 11], "amount"] = ABSURD
    again = now.iloc[100 : 100 + AGAIN].copy()
    again["customer_id"] = again["customer_id"] + 10_000_000
    again["phone"] = [f"+44 7700 900{i:03d}" for i in range(AGAIN)]
    again["last_seen"] = again["last_seen"] + pd.Timedelta(days=200)
    frame = pd.concat(
        [now, again, pd.concat([now.iloc[[5]]] * COPIES), now.iloc[40:45]], ignore_index=True
    )
    paths = {"primary": tmp / "customers_now.csv", "baseline": tmp / "customers_before.csv"}
    frame.to_csv(paths["primary"], index=False)
    base.to_csv(paths["baseline"], index=False)
    return paths


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return generated(tmp_path_factory.mktemp("results-pages"))


@pytest.fixture
def user(server: SpyGlassServer) -> Account:
    return make_account(server, prefix="results")


@pytest.fixture
def page(browser: Browser, server: SpyGlassServer, user: Account) -> Iterator[Page]:  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    sign_in(pg, server, user.email, user.password)
    expect(pg.get_by_test_id("signed-in-as")).to_have_text(user.email, timeout=30_000)
    yield pg
    context.close()


def run_tool(page: Page, server: SpyGlassServer, tool: str, files: dict[str, Path]) -> str:
    """Upload through the New task form, wait for Completed on /tasks; the task's id."""
    page.goto(f"{server.url}/")
    expect(page.get_by_test_id("start-task")).to_be_visible(timeout=30_000)
    page.get_by_test_id(f"tool-{tool}").click()
    expect(page.get_by_test_id(f"tool-{tool}")).to_have_attribute("data-state", "checked")
    page.get_by_test_id("file-primary").set_input_files(str(files["primary"]))
    if "baseline" in TOOLS[tool].files:
        page.get_by_test_id("file-baseline").set_input_files(str(files["baseline"]))
    page.get_by_test_id("start-task").click()
    expect(page).to_have_url(f"{server.url}/tasks", timeout=30_000)
    row = page.locator(f"[data-testid=task-row][data-task-name='{tool}']").first
    expect(row.get_by_test_id("task-status")).to_have_text("Completed", timeout=120_000)
    task_id = row.get_attribute("data-task-id")
    assert task_id
    return task_id


def open_results(page: Page, server: SpyGlassServer, user: Account, task_id: str) -> dict:
    page.goto(f"{server.url}/task/{task_id}/results")
    expect(page.get_by_test_id("headline")).to_be_visible(timeout=30_000)
    answer = httpx.get(
        f"{server.url}/api/tasks/{task_id}/report",
        headers={"Authorization": f"Bearer {user.token}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    report: dict = answer.json()["report"]
    expect(page.get_by_test_id("headline")).to_have_text(report["executiveSummary"]["headline"])
    return report


def figure(text: str) -> float:
    """A number as the page writes it: `12,345`, `1.2e-05`, `12.5 %`."""
    return float(text.replace(",", "").replace("%", "").strip())


def same(shown: str, value: Any) -> bool:
    """Whether text on the page says the report's value (a count for a list or a mapping)."""
    if isinstance(value, list):
        value = len(value)
    elif isinstance(value, dict):
        value = sum(value.values())
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int | float):
        return math.isclose(figure(shown), value, rel_tol=5e-3, abs_tol=5e-4)
    return shown == str(value)


def check_figures(page: Page, report: dict) -> int:
    """Every summary card says the number at its source in the report."""
    cards = page.locator("[data-testid=summary-card]")
    expect(cards.first).to_be_visible()
    checked = 0
    for card in cards.all():
        source = card.get_attribute("data-source") or ""
        shown = card.get_by_test_id("card-value").inner_text()
        value = pick(report, source)
        assert same(shown, value), (card.get_attribute("data-label"), source, shown, value)
        checked += 1
    return checked


def check_table_sizes(page: Page, report: dict) -> None:
    """Each table says how many entries its source holds, and lists them a page at a time."""
    for table in page.locator("[data-testid^=table-]").all():
        source = table.get_attribute("data-source") or ""
        entries = pick(report, source)
        if not isinstance(entries, list | dict):
            continue
        total = int(table.get_attribute("data-total") or 0)
        assert total == len(entries), (source, total, len(entries))
        name = (table.get_attribute("data-testid") or "").removeprefix("table-")
        expect(table.locator(f"[data-testid={name}-row]")).to_have_count(min(20, total))


def rows(page: Page, table: str) -> list[list[str]]:
    return [
        r.locator("td").all_inner_texts()
        for r in page.locator(f"[data-testid=table-{table}] [data-testid={table}-row]").all()
    ]


def by_key(page: Page, table: str) -> dict[str, list[str]]:
    found = page.locator(f"[data-testid=table-{table}] [data-testid={table}-row]")
    return {
        r.get_attribute("data-key") or "": r.locator("td").all_inner_texts() for r in found.all()
    }


def no_internals(page: Page) -> None:
    """No Python booleans or None, no exception class names, in anything the page shows."""
    text = page.locator("body").inner_text()
    assert not re.search(r"\b(True|False|None|NaN|nan)\b", text), re.findall(
        r".{30}\b(?:True|False|None|NaN|nan)\b.{30}", text
    )
    assert not re.search(r"\w+(Error|Exception):", text)
    assert "datetime64" not in text and "int64" not in text.lower() and "float64" not in text


def check_bill(page: Page, tool: str, report: dict) -> None:
    charged = sum(TOOLS[tool].breakdown(report["executiveSummary"]["agents"]).values())
    bill = page.get_by_test_id("bill")
    expect(bill).to_have_attribute("data-charged", str(charged), timeout=15_000)
    expect(bill).to_have_attribute("data-refunded", "0")
    expect(bill).to_have_attribute("data-settled", "yes")
    lines = page.locator("[data-testid=bill-line]")
    expect(lines).to_have_count(len(report["executiveSummary"]["agents"]))
    expect(page.locator("[data-testid=bill-line][data-outcome=kept]")).to_have_count(lines.count())
    expect(page.get_by_test_id("bill-words")).to_have_text(f"Charged {charged} credits; all kept.")


def chart_labels(page: Page, chart: str) -> str:
    labels = page.locator(f"[data-testid=chart-{chart}] .recharts-label")
    return " ".join(labels.all_text_contents())  # SVG text: no innerText


def test_each_tools_results_page_shows_the_reports_numbers(
    page: Page, server: SpyGlassServer, user: Account, files: dict[str, Path]
) -> None:
    source = pd.read_csv(files["primary"])

    # -- profile-my-data ----------------------------------------------------------------
    task_id = run_tool(page, server, "profile-my-data", files)
    report = open_results(page, server, user, task_id)
    summary, results = report["executiveSummary"], report["agentResults"]
    assert summary["agents"] == [a.id for a in TOOLS["profile-my-data"].agents]
    assert check_figures(page, report) == 10
    assert summary["duplicate_rows"] == int(source.duplicated().sum()) == COPIES + 5
    check_table_sizes(page, report)

    # Duplicates as groups with their count: the row repeated 60 times is one line.
    groups = rows(page, "duplicate")
    assert len(groups) == len(report["duplicateGroups"]) == 6
    first = report["duplicateGroups"][0]
    assert groups[0][:2] == [str(first["row"]), str(COPIES)] and first["row"] == 6
    assert groups[0][2].endswith(f"and {COPIES - 20} more")

    # The histogram opens on a column that measures (not customer_id), axes labelled.
    choice = page.locator("[data-testid=chart-histogram]")
    expect(choice).to_be_visible()
    expect(page.get_by_test_id("chart-choice")).to_have_text("amount")
    amount = next(c for c in results["unified-profiler"]["columns"] if c["name"] == "amount")
    bins = sum(1 for n in amount["histogram"]["counts"] if n)
    expect(choice.locator(".recharts-bar-rectangle")).to_have_count(bins, timeout=10_000)
    assert "amount (ranges of values)" in chart_labels(page, "histogram")
    assert "rows" in chart_labels(page, "histogram")
    assert "% of rows empty" in chart_labels(page, "nulls")

    # Columns with human type names and the profile's figures.
    columns = by_key(page, "column")
    kinds = {"customer_id": "whole number", "amount": "decimal", "signup_date": "date"}
    kinds |= {"name": "text", "active": "true/false", "age": "whole number"}
    for name, kind in kinds.items():
        assert columns[name][1] == kind, (name, columns[name])
    for col in report["analysisSummary"]["columns"]:
        cells = columns[col["name"]]
        assert figure(cells[2]) == col["nulls"] and same(cells[3], col["null_pct"])
        assert figure(cells[4]) == col["distinct"]

    # Findings in plain words, each with its number.
    issues = report["issueSummary"]["issues"]
    shown = {r[1]: r[2] for r in rows(page, "finding")}
    assert len(shown) == min(20, len(issues))
    for issue in issues[:20]:
        if issue["message"] in shown and issue.get("count") is not None:
            assert figure(shown[issue["message"]]) == issue["count"]
    assert f"amount: {int(source['amount'].isna().sum()):,} of {len(source):,} values" in " ".join(
        shown
    )

    # The alerts, each with what was found and the rule.
    alerts = results["unified-profiler"]["alerts"]
    listed = rows(page, "alert")
    for alert, cells in zip(alerts, listed, strict=False):
        assert (cells[2], cells[3]) == (alert["detail"], alert["rule"])
        assert cells[1] == (alert["column"] or "the whole table")

    # Drift: each column's verdict, a skipped one with its reason, a compared one with its
    # test and p-value; drifted means significant and material, as the caption says.
    drift = results["drift-detector"]
    verdicts = by_key(page, "drift")
    for col in drift["columns"]:
        cells = verdicts[col["column"]]
        if col.get("skipped"):
            assert cells[6] == f"skipped: {col['skipped']}"
        elif col.get("p_value") is not None:
            assert cells[2] == {"ks": "Kolmogorov–Smirnov", "chi2": "χ²"}[col["test"]]
            assert math.isclose(figure(cells[3]), col["p_value"], rel_tol=1e-2)
            assert same(cells[4], col["psi"])
            assert cells[6].startswith("drifted" if col["status"] == "drifted" else "stable")
    assert set(summary["drifted_columns"]) >= {"country", "amount", "signup_date"}
    assert "customer_id" not in summary["drifted_columns"]
    caption = page.locator("[data-testid=chart-psi] [data-testid=caption]").inner_text()
    assert "significant" in caption and "material" in caption and "above 0.2 has" not in caption
    expect(page.locator("[data-testid=chart-psi] .recharts-bar-rectangle")).to_have_count(
        sum(1 for c in drift["columns"] if c.get("psi"))
    )

    # Personal data found, with its figures.
    pii = by_key(page, "pii")
    for finding in results["governance-checker"]["findings"]:
        assert figure(pii[finding["column"]][3]) == finding["values"]
    check_bill(page, "profile-my-data", report)
    no_internals(page)

    # -- clean-my-data ------------------------------------------------------------------
    task_id = run_tool(page, server, "clean-my-data", files)
    report = open_results(page, server, user, task_id)
    summary, results = report["executiveSummary"], report["agentResults"]
    assert check_figures(page, report) == 7
    check_table_sizes(page, report)
    expect(page.get_by_test_id("rows-balance")).to_have_text(summary["rows_balance"])
    assert (
        summary["rows_in"]
        == len(source)
        == (summary["rows_out"] + summary["rows_quarantined"] + summary["rows_merged"])
    )
    # What changed, per column: filled, fixed, emptied, set aside.
    changed = by_key(page, "change")
    for change in results["cleanse-previewer"]["changes"]:
        cells = changed[change["column"]]
        counts = [change[k] for k in ("filled", "changed", "emptied", "quarantined")]
        assert [figure(c) for c in cells[1:5]] == counts, (change["column"], cells)
    assert figure(changed["amount"][4]) == len(ABSURD)
    # Why rows were set aside, with how many.
    reasons = by_key(page, "reason")
    for reason in report["quarantineReasons"]:
        assert figure(reasons[reason["reason"]][1]) == reason["rows"]
    assert figure(reasons["amount is far outside the usual range"][1]) == len(ABSURD)
    columns = by_key(page, "column")
    for col in report["analysisSummary"]["columns"]:
        assert figure(columns[col["name"]][4]) == col["nulls_after"]
    assert columns["last_seen"][1] == "date" and columns["visits"][1] == "whole number"
    expect(page.locator("[data-testid=chart-rows] .recharts-bar-rectangle")).to_have_count(3)
    check_bill(page, "clean-my-data", report)
    no_internals(page)

    # -- master-my-data -----------------------------------------------------------------
    task_id = run_tool(page, server, "master-my-data", files)
    report = open_results(page, server, user, task_id)
    summary, results = report["executiveSummary"], report["agentResults"]
    assert check_figures(page, report) == 7
    check_table_sizes(page, report)
    expect(page.get_by_test_id("rows-balance")).to_have_text(summary["rows_balance"])
    resolved = results["survivorship-resolver"]
    conflicts = resolved["conflicts"]
    assert resolved["total_conflicts"] == len(conflicts) >= AGAIN * 2  # phone and customer_id

    def conflict_rows(start: int) -> list[list[str]]:
        words = {"most_recent": "the newest value", "most_frequent": "the most frequent value"}
        return [
            [c["key"], c["column"], " | ".join(c["values"]), words[c["rule"]], c["chosen"]]
            for c in conflicts[start : start + 20]
        ]

    table = page.get_by_test_id("table-conflict")
    assert rows(page, "conflict") == conflict_rows(0)
    expect(table.get_by_test_id("range")).to_have_text(f"1–20 of {len(conflicts)}")
    table.get_by_test_id("page-next").click()
    expect(table.get_by_test_id("page")).to_have_text(f"Page 2 of {math.ceil(len(conflicts) / 20)}")
    expect(table.get_by_test_id("range")).to_have_text(f"21–40 of {len(conflicts)}")
    assert rows(page, "conflict") == conflict_rows(20)
    table.get_by_test_id("page-previous").click()
    expect(table.get_by_test_id("range")).to_have_text(f"1–20 of {len(conflicts)}")
    by_column = resolved["conflicts_by_column"]
    expect(page.locator("[data-testid=chart-conflicts] .recharts-bar-rectangle")).to_have_count(
        len(by_column)
    )
    assert {"phone", "customer_id"} <= set(by_column)
    contracts = by_key(page, "contract")
    for name, info in results["contract-enforcer"]["columns"].items():
        assert figure(contracts[name][2]) == info["violations"]
    flags = results["stewardship-flagger"]
    assert len(rows(page, "flag")) == min(20, len(flags["flags"]))
    check_bill(page, "master-my-data", report)
    no_internals(page)

    # The task page shows the same bill.
    page.goto(f"{server.url}/tasks/{task_id}")
    charged = sum(TOOLS["master-my-data"].breakdown(summary["agents"]).values())
    expect(page.get_by_test_id("bill")).to_have_attribute(
        "data-charged", str(charged), timeout=30_000
    )


def test_a_failed_run_shows_plain_words_and_its_refund(
    page: Page, server: SpyGlassServer, user: Account, tmp_path: Path
) -> None:
    """A file that is not a table: the results page says why without the exception's name,
    and the bill shows every credit refunded (no agent finished)."""
    latin = tmp_path / "latin1.csv"
    latin.write_bytes(not_utf8_past_the_head())
    page.goto(f"{server.url}/")
    expect(page.get_by_test_id("start-task")).to_be_visible(timeout=30_000)
    page.get_by_test_id("file-primary").set_input_files(str(latin))
    page.get_by_test_id("start-task").click()
    expect(page).to_have_url(f"{server.url}/tasks", timeout=30_000)
    row = page.locator("[data-testid=task-row][data-task-name='profile-my-data']").first
    expect(row.get_by_test_id("task-status")).to_have_text("Failed", timeout=60_000)
    task_id = row.get_attribute("data-task-id")
    page.goto(f"{server.url}/task/{task_id}/results")
    notice = page.get_by_test_id("results-not-ready")
    expect(notice).to_contain_text("'latin1.csv' is not UTF-8 text", timeout=30_000)
    assert "Error" not in notice.inner_text()
    tool = TOOLS["profile-my-data"]
    cost = sum(tool.breakdown(a.id for a in tool.agents if not a.requires).values())
    bill = page.get_by_test_id("bill")
    expect(bill).to_have_attribute("data-charged", str(cost), timeout=15_000)
    expect(bill).to_have_attribute("data-refunded", str(cost))
    expect(bill).to_have_attribute("data-kept", "0")
    expect(page.get_by_test_id("bill-words")).to_contain_text(f"{cost} credits refunded")
    expect(page.locator("[data-testid=bill-line][data-outcome=refunded]")).to_have_count(5)
