"""The end user's journey in Debian chromium, with the sample files of `assets/samples/`.

sign in → New task → upload a CSV (straight to its presigned URL, with a progress bar)
→ /tasks follows it live → details → results show the file's own numbers → download
the cleaned CSV. Expected figures are computed here with pandas from the same file.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.accounts import Account, make_account, set_credits
from tests.badfiles import not_utf8_past_the_head
from tests.harness import ROOT, SpyGlassServer
from tests.test_tasks_page import browser, sign_in  # noqa: F401  (shared browser fixture)

pytestmark = pytest.mark.browser
SAMPLES = ROOT / "assets" / "samples"
CUSTOMERS = SAMPLES / "customers.csv"
BASELINE = SAMPLES / "customers_baseline.csv"


@pytest.fixture
def user(server: SpyGlassServer) -> Account:
    return make_account(server, prefix="journey")


@pytest.fixture
def page(browser: Browser, server: SpyGlassServer, user: Account) -> Iterator[Page]:  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    sign_in(pg, server, user.email, user.password)
    expect(pg.get_by_test_id("signed-in-as")).to_have_text(user.email, timeout=30_000)
    yield pg
    context.close()


def open_new_task(page: Page, server: SpyGlassServer, tool: str) -> None:
    page.goto(f"{server.url}/")
    expect(page.get_by_test_id("start-task")).to_be_visible(timeout=30_000)
    page.get_by_test_id(f"tool-{tool}").click()
    expect(page.get_by_test_id(f"tool-{tool}")).to_have_attribute("data-state", "checked")


def card(page: Page, label: str, part: str = "card-value") -> str:
    selector = f"[data-testid=summary-card][data-label='{label}'] [data-testid={part}]"
    return page.locator(selector).inner_text()


def test_the_whole_journey_cleans_the_uploaded_file(
    page: Page, server: SpyGlassServer, user: Account
) -> None:
    source = pd.read_csv(CUSTOMERS)
    open_new_task(page, server, "clean-my-data")
    expect(page.get_by_test_id("total-cost")).to_have_text("70")
    page.get_by_test_id("file-primary").set_input_files(str(CUSTOMERS))
    expect(page.get_by_test_id("chosen-primary")).to_contain_text("customers.csv")
    page.get_by_test_id("start-task").click()

    # The form sends us to /tasks, where the new row goes live to Completed.
    expect(page).to_have_url(f"{server.url}/tasks", timeout=30_000)
    row = page.locator("[data-testid=task-row][data-task-name='clean-my-data']")
    expect(row).to_have_count(1, timeout=15_000)
    expect(row.get_by_test_id("task-status")).to_have_text("Completed", timeout=60_000)
    expect(row.get_by_test_id("task-agents")).to_have_text("8/8 agents")
    task_id = row.get_attribute("data-task-id")
    assert task_id

    # Details: one bar per agent, each done; the timeline recorded.
    row.get_by_test_id("task-link").click()
    expect(page).to_have_url(f"{server.url}/tasks/{task_id}", timeout=15_000)
    expect(page.locator("[data-testid=timeline-row][data-state=done]")).to_have_count(8)
    expect(page.get_by_test_id("timeline-event").last).to_contain_text("Completed")

    # Results: the file's own figures.
    page.get_by_test_id("open-results").click()
    expect(page).to_have_url(f"{server.url}/task/{task_id}/results", timeout=15_000)
    expect(page.get_by_test_id("headline")).to_have_text(
        f"{len(source)} rows × {source.shape[1]} columns; {int(source.isna().sum().sum())} "
        f"empty cells, {int(source.duplicated().sum())} duplicate rows",
        timeout=30_000,
    )
    expect(page.locator("[data-testid=column-row]")).to_have_count(source.shape[1])
    # Written, set aside, merged: one bar each.
    expect(page.locator("[data-testid=chart-rows] .recharts-bar-rectangle")).to_have_count(
        3, timeout=10_000
    )

    # The cleaned file: no duplicate rows, tidy text, and nothing invented: the gaps in the
    # measures are left as they are, every value written is the value read.
    link = page.locator("[data-testid=download-link][data-filename='cleaned.csv']")
    response = page.request.get(link.evaluate("a => a.href"))  # as the browser resolves it
    assert response.ok, response.status
    cleaned = list(csv.DictReader(io.StringIO(response.text())))
    written = int(re.sub(r"\D", "", card(page, "Rows written")))
    assert len(cleaned) == written and 0 < written < len(source)
    frame = pd.read_csv(io.StringIO(response.text()))
    assert not frame.duplicated().any()
    first = source.drop_duplicates("customer_id").set_index("customer_id")
    for measure in ("age", "monthly_spend"):
        read = first.loc[frame["customer_id"], measure].to_numpy()
        assert frame[measure].isna().to_numpy().tolist() == pd.isna(read).tolist()
        assert frame[measure].isna().any()  # the file has gaps there: none was filled
        kept = frame[measure].notna().to_numpy()
        assert (frame[measure].to_numpy()[kept] == read[kept]).all()
    assert frame["email"].notna().all() and (frame["email"] == frame["email"].str.lower()).all()
    assert set(frame["country"]) <= {c.strip().title() for c in source["country"]}
    # Card numbers are identifiers: kept exactly, never filled in or written as floats.
    cards = {str(v) for v in source["card_number"].dropna().astype("int64")}
    assert {c for c in (r["card_number"] for r in cleaned) if c} <= cards

    # Set aside, not deleted: the absurd amounts and ages, and the rows without an e-mail or
    # phone, each with its reason; every row read is written, set aside or a merged copy.
    link = page.locator("[data-testid=download-link][data-filename='quarantine.csv']")
    response = page.request.get(link.evaluate("a => a.href"))
    assert response.ok, response.status
    held = pd.read_csv(io.StringIO(response.text()))
    assert int(re.sub(r"\D", "", card(page, "Rows set aside"))) == len(held)
    merged = int(re.sub(r"\D", "", card(page, "Duplicates merged")))
    assert len(source) == written + len(held) + merged
    # Exact copies are merged, but for the copy of a row set aside, which goes with it.
    assert merged == int(source.duplicated().sum() - held.duplicated().sum()) > 0
    assert {99999.0, 25000.0, 18500.0, -400.0} <= set(held["monthly_spend"])
    assert {160.0, 245.0} <= set(held["age"])
    reasons = held["quarantine_reason"].str.split("; ").explode()
    assert reasons.str.fullmatch(
        r"(email|phone) is missing|(age|monthly_spend) is far outside the usual range"
    ).all()
    assert set(source.loc[source["email"].isna(), "customer_id"]) <= set(held["customer_id"])

    # What changed, on the page: the balance of rows, and per column what the run did.
    expect(page.get_by_test_id("rows-balance")).to_have_text(
        f"{len(source):,} rows in = {written:,} written + {len(held):,} set aside"
        f" + {merged:,} duplicates merged"
    )
    shown = {
        r.get_attribute("data-key"): r.locator("td").all_inner_texts()
        for r in page.locator("[data-testid=change-row]").all()
    }
    for column in ("email", "phone", "age", "monthly_spend"):
        named = reasons[reasons.str.startswith(f"{column} is ")]
        assert shown[column][4] == str(len(named)), column  # set aside for this column
    assert all(cells[1] == "0" for cells in shown.values())  # nothing filled by default
    assert int(shown["country"][2]) > 0  # "  SPAIN " and the like, spelt the usual way
    assert shown["monthly_spend"][5].endswith(
        "set aside (monthly_spend is far outside the usual range)"
    )


def test_upload_progress_bar_follows_a_slow_upload(
    page: Page, server: SpyGlassServer, tmp_path: Path
) -> None:
    big = tmp_path / "big.csv"
    lines = ["id,amount,city"] + [f"{i},{i % 97}.5,City{i % 13}" for i in range(40_000)]
    big.write_text("\n".join(lines) + "\n")  # ~0.6 MB
    open_new_task(page, server, "profile-my-data")
    page.get_by_test_id("file-primary").set_input_files(str(big))
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 150_000},
    )
    page.get_by_test_id("start-task").click()
    expect(page.get_by_test_id("upload-progress")).to_be_attached(timeout=15_000)
    expect(page.get_by_test_id("upload-percent")).to_have_text(
        re.compile(r"^([1-9]|[1-9]\d)%$"), timeout=15_000
    )
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    expect(page).to_have_url(f"{server.url}/tasks", timeout=60_000)
    row = page.locator("[data-testid=task-row][data-task-name='profile-my-data']")
    expect(row.get_by_test_id("task-status")).to_have_text("Completed", timeout=60_000)
    expect(row).to_contain_text("40000 rows × 3 columns")


def test_the_default_new_task_run_completes(page: Page, server: SpyGlassServer) -> None:
    """First tool, its default agents, one file, no baseline: it runs to the end."""
    page.goto(f"{server.url}/")
    expect(page.get_by_test_id("start-task")).to_be_visible(timeout=30_000)
    expect(page.get_by_test_id("tool-profile-my-data")).to_have_attribute("data-state", "checked")
    expect(page.get_by_test_id("agent-drift-detector")).to_have_attribute("data-state", "unchecked")
    page.get_by_test_id("file-primary").set_input_files(str(CUSTOMERS))
    page.get_by_test_id("start-task").click()
    expect(page).to_have_url(f"{server.url}/tasks", timeout=30_000)
    row = page.locator("[data-testid=task-row][data-task-name='profile-my-data']").first
    expect(row.get_by_test_id("task-status")).to_have_text("Completed", timeout=60_000)
    expect(row).to_contain_text("5/5 agents")


def test_profile_results_show_the_files_numbers(page: Page, server: SpyGlassServer) -> None:
    source = pd.read_csv(CUSTOMERS)
    open_new_task(page, server, "profile-my-data")
    expect(page.get_by_test_id("total-cost")).to_have_text("45")  # no baseline: no drift agent
    page.get_by_test_id("file-primary").set_input_files(str(CUSTOMERS))
    page.get_by_test_id("file-baseline").set_input_files(str(BASELINE))
    expect(page.get_by_test_id("total-cost")).to_have_text("65")  # the baseline ticks it
    page.get_by_test_id("start-task").click()
    expect(page).to_have_url(f"{server.url}/tasks", timeout=30_000)
    row = page.locator("[data-testid=task-row][data-task-name='profile-my-data']")
    expect(row.get_by_test_id("task-status")).to_have_text("Completed", timeout=60_000)
    row.get_by_role("link", name="Results").click()

    expect(page.get_by_test_id("headline")).to_contain_text(f"{len(source)} rows", timeout=30_000)
    assert card(page, "Rows") == f"{len(source):,}"
    assert card(page, "Duplicate rows") == str(int(source.duplicated().sum()))
    pii = card(page, "PII columns", "card-detail")
    assert card(page, "PII columns") == "3"
    assert all(name in pii for name in ("email", "phone", "card_number"))
    # spend rose since the baseline
    assert "monthly_spend" in card(page, "Drifted columns", "card-detail")
    age = page.locator("[data-testid=column-row][data-key='age'] td")
    ages = source["age"].dropna()
    assert age.nth(1).inner_text() == "decimal"
    assert age.nth(2).inner_text() == str(int(source["age"].isna().sum()))
    shown_pct = float(age.nth(3).inner_text().removesuffix(" %"))
    assert abs(shown_pct - 100 * source["age"].isna().mean()) < 0.01
    assert float(age.nth(5).inner_text()) == ages.min()
    assert float(age.nth(6).inner_text()) == ages.max()
    for chart in ("chart-histogram", "chart-nulls", "chart-risk", "chart-psi"):
        expect(page.locator(f"[data-testid={chart}] .recharts-bar-rectangle").first).to_be_attached(
            timeout=10_000
        )
    # Duplicate rows as groups: one line per row that repeats, with its number of copies.
    repeated = source[source.duplicated(keep=False)].drop_duplicates()
    expect(page.locator("[data-testid=duplicate-row]")).to_have_count(len(repeated))
    expect(page.locator("[data-testid=download-link][data-filename='report.json']")).to_have_count(
        1
    )


def test_the_form_explains_what_is_wrong(
    page: Page, server: SpyGlassServer, user: Account, tmp_path: Path
) -> None:
    open_new_task(page, server, "profile-my-data")
    error = page.get_by_test_id("form-error")
    page.get_by_test_id("start-task").click()
    expect(error).to_have_text("Choose a CSV or Excel file first.")

    page.get_by_test_id("file-primary").set_input_files(str(CUSTOMERS))
    page.get_by_test_id("agent-drift-detector").click()  # ticked by hand, with no baseline
    page.get_by_test_id("start-task").click()
    expect(error).to_contain_text("add a baseline file, or untick drift-detector")

    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    page.get_by_test_id("agent-drift-detector").click()
    page.get_by_test_id("file-primary").set_input_files(str(empty))
    page.get_by_test_id("start-task").click()
    expect(error).to_have_text("'empty.csv' is empty.")

    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    page.get_by_test_id("file-primary").set_input_files(str(notes))
    page.get_by_test_id("start-task").click()
    expect(error).to_contain_text("is not a CSV or Excel")

    page.get_by_test_id("file-primary").set_input_files(str(CUSTOMERS))
    page.get_by_test_id("param-score-risk.risk_threshold").fill("7")
    page.get_by_test_id("start-task").click()
    expect(error).to_contain_text("risk_threshold: Input should be less than or equal to 1")

    # Nothing was created by any of these.
    tasks = httpx.get(
        f"{server.url}/api/tasks",
        headers={"Authorization": f"Bearer {user.token}"},
        timeout=10,
    ).json()
    assert tasks["pagination"]["total"] == 0

    set_credits(server, user, 20)
    page.reload()
    expect(page.get_by_test_id("credits")).to_have_text("20", timeout=15_000)
    expect(page.get_by_test_id("start-task")).to_be_disabled()
    for agent in ("score-risk", "governance-checker"):
        page.get_by_test_id(f"agent-{agent}").click()
    expect(page.get_by_test_id("total-cost")).to_have_text("20")
    expect(page.get_by_test_id("start-task")).to_be_enabled()


def test_a_file_refused_by_the_checks_is_explained_on_the_form(
    page: Page, server: SpyGlassServer, user: Account, tmp_path: Path
) -> None:
    """A file the checks before the charge refuse (here: a header and no row, in a semicolon
    CSV): the New task form says why, the page stays on the form and no credit moves."""
    me = {"Authorization": f"Bearer {user.token}"}
    before = httpx.get(f"{server.url}/api/me", headers=me, timeout=10).json()["credits"]
    header = tmp_path / "header.csv"
    header.write_bytes(b"id;name;amount\n")
    open_new_task(page, server, "profile-my-data")
    page.get_by_test_id("file-primary").set_input_files(str(header))
    page.get_by_test_id("start-task").click()
    error = page.get_by_test_id("form-error")
    expect(error).to_have_text("'header.csv' has a header but no data rows", timeout=30_000)
    assert page.url.rstrip("/") == server.url
    after = httpx.get(f"{server.url}/api/me", headers=me, timeout=10).json()["credits"]
    assert after == before


def test_a_file_that_is_not_a_table_fails_with_a_remedy(
    page: Page, server: SpyGlassServer, tmp_path: Path
) -> None:
    latin = tmp_path / "latin1.csv"
    latin.write_bytes(not_utf8_past_the_head())
    open_new_task(page, server, "profile-my-data")
    page.get_by_test_id("file-primary").set_input_files(str(latin))
    page.get_by_test_id("start-task").click()
    expect(page).to_have_url(f"{server.url}/tasks", timeout=30_000)
    row = page.locator("[data-testid=task-row][data-task-name='profile-my-data']")
    expect(row.get_by_test_id("task-status")).to_have_text("Failed", timeout=30_000)
    row.get_by_test_id("task-link").click()
    expect(page.get_by_test_id("task-message")).to_contain_text("is not UTF-8 text")
    expect(page.get_by_test_id("failed-step")).to_have_text("Where it stopped: Reading the files")
    expect(page.get_by_test_id("remedy")).to_contain_text("choose another file")
    task_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    page.goto(f"{server.url}/task/{task_id}/results")
    expect(page.get_by_test_id("results-not-ready")).to_contain_text("is not UTF-8 text")


def test_results_of_another_users_task_are_not_found(page: Page, server: SpyGlassServer) -> None:
    stranger = make_account(server, prefix="stranger")
    h = {"Authorization": f"Bearer {stranger.token}"}
    task = httpx.post(
        f"{server.url}/api/tasks", headers=h, json={"tool_id": "profile-my-data"}, timeout=10
    ).json()
    page.goto(f"{server.url}/task/{task['task_id']}/results")
    expect(page.get_by_test_id("results-not-found")).to_be_visible(timeout=15_000)
    page.goto(f"{server.url}/task/00000000-0000-4000-8000-000000000000/results")
    expect(page.get_by_test_id("results-not-found")).to_be_visible(timeout=15_000)


def test_a_file_dropped_on_the_zone_is_chosen(page: Page, server: SpyGlassServer) -> None:
    open_new_task(page, server, "master-my-data")
    page.evaluate(
        """() => {
            const data = new DataTransfer();
            const file = new File(["id,email\\n1,a@x.com\\n"], "dropped.csv");
            data.items.add(file);
            const zone = document.querySelector("[data-dropzone=primary]");
            zone.dispatchEvent(new DragEvent("dragover", {bubbles: true, dataTransfer: data}));
            zone.dispatchEvent(new DragEvent("drop", {bubbles: true, dataTransfer: data}));
        }"""
    )
    expect(page.get_by_test_id("chosen-primary")).to_contain_text("dropped.csv")
    page.get_by_test_id("start-task").click()
    expect(page).to_have_url(f"{server.url}/tasks", timeout=30_000)
    row = page.locator("[data-testid=task-row][data-task-name='master-my-data']")
    expect(row.get_by_test_id("task-status")).to_have_text("Completed", timeout=60_000)
