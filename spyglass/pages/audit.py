"""`/admins/audit`: the audit log for admins, filtered, paged, exported as CSV. Read-only.

On a phone each event becomes a card (class sg-cards), its fields one under another.
"""

from __future__ import annotations

from typing import Any

import reflex as rx

from spyglass.pages.layout import layout
from spyglass.pages.widgets import download_link, loading
from spyglass.states.audit import ACTION_CHOICES, TARGET_CHOICES, AuditRow, AuditState
from spyglass.states.auth import AuthState


def _field(label: str, control: rx.Component, name: str) -> rx.Component:
    return rx.vstack(
        rx.el.label(rx.text(label, size="2"), html_for=f"audit-{name}"),
        control,
        spacing="1",
        min_width="150px",
        flex="1 1 150px",
    )


def _input(label: str, name: str, value: Any, **props: Any) -> rx.Component:
    return _field(
        label,
        rx.input(id=f"audit-{name}", name=name, default_value=value, width="100%", **props),
        name,
    )


def _select(label: str, name: str, choices: list[str], value: Any) -> rx.Component:
    """A native select (it posts with the form, and reads well to screen readers)."""
    options = [rx.el.option(choice or "Any", value=choice) for choice in choices]
    return _field(
        label,
        rx.el.select(
            *options,
            id=f"audit-{name}",
            name=name,
            default_value=value,
            class_name="sg-native-select",
            data_testid=f"audit-filter-{name}",
        ),
        name,
    )


def _filters() -> rx.Component:
    return rx.form(
        rx.flex(
            _input("Actor (email, system, anonymous)", "actor", AuditState.actor, type="search"),
            _select("Action", "action", ACTION_CHOICES, AuditState.action),
            _select("Target", "target_type", TARGET_CHOICES, AuditState.target_type),
            _input("Target id", "target_id", AuditState.target_id, type="search"),
            _input("From (UTC day)", "since", AuditState.since, type="date"),
            _input("To (UTC day)", "until", AuditState.until, type="date"),
            wrap="wrap",
            spacing="3",
            width="100%",
        ),
        rx.hstack(
            rx.button("Filter", type="submit", data_testid="audit-apply"),
            rx.button(
                "Clear",
                type="reset",
                variant="soft",
                on_click=AuditState.clear,
                color_scheme="gray",
            ),
            rx.spacer(),
            rx.hstack(
                rx.icon("download", size=16, aria_hidden="true"),
                download_link("Download CSV", AuditState.csv_url, testid="audit-csv"),
                align="center",
                spacing="2",
            ),
            align="center",
            wrap="wrap",
            spacing="3",
            width="100%",
            margin_top="12px",
        ),
        on_submit=AuditState.apply,
        width="100%",
        aria_label="Filter the audit log",
    )


def _cell(label: str, value: Any, **props: Any) -> rx.Component:
    """A cell that names its field on a phone (where the table's header is hidden)."""
    return rx.table.cell(
        rx.text(label + ": ", size="1", color_scheme="gray", as_="span", class_name="sg-phone"),
        value,
        **props,
    )


def _row(row: AuditRow) -> rx.Component:
    wrap = {"overflow_wrap": "break-word"}
    return rx.table.row(
        _cell("When (UTC)", rx.text(row.at, size="2", as_="span"), white_space="nowrap"),
        _cell("Who", rx.text(row.actor, size="2", as_="span", style=wrap)),
        _cell("Action", rx.code(row.action), data_testid="audit-action"),
        _cell("Target", rx.text(row.target, size="2", as_="span", style=wrap)),
        rx.table.cell(  # empty without a detail (a phone's card then skips it)
            rx.cond(
                row.detail != "",
                rx.fragment(
                    rx.text(
                        "Detail: ", size="1", color_scheme="gray", as_="span", class_name="sg-phone"
                    ),
                    rx.text(row.detail, size="1", as_="span", style=wrap),
                ),
            ),
            max_width="320px",
        ),
        _cell(
            "From",
            rx.text(row.ip, " ", row.credential, size="2", as_="span"),
            title=row.user_agent,
        ),
        data_testid="audit-row",
        data_action=row.action,
    )


def _log() -> rx.Component:
    return rx.vstack(
        _filters(),
        rx.text(AuditState.summary, size="2", data_testid="audit-summary", role="status"),
        rx.cond(
            AuditState.loading,
            loading("Loading…"),
            rx.table.root(
                rx.table.header(
                    rx.table.row(
                        *[
                            rx.table.column_header_cell(name)
                            for name in ("When (UTC)", "Who", "Action", "Target", "Detail", "From")
                        ]
                    )
                ),
                rx.table.body(rx.foreach(AuditState.rows, _row)),
                width="100%",
                class_name="sg-cards",
                aria_label="Audit log",
            ),
        ),
        rx.hstack(
            rx.button(
                "Newer",
                variant="soft",
                disabled=AuditState.offset == 0,
                on_click=AuditState.prev_page,
            ),
            rx.button(
                "Older",
                variant="soft",
                disabled=~AuditState.has_more,
                on_click=AuditState.next_page,
            ),
            spacing="2",
        ),
        rx.text(
            "The log is read-only: nothing in SpyGlass changes or removes an entry. ",
            rx.link("Back to the dashboard", href="/admins/tasks/"),
            size="2",
            color_scheme="gray",
        ),
        width="100%",
        spacing="4",
    )


def audit_page() -> rx.Component:
    return layout(
        rx.cond(
            AuditState.forbidden | (AuthState.checked & ~AuthState.is_admin),
            rx.callout(
                "Forbidden: this page is for admins only.",
                icon="shield_alert",
                color_scheme="red",
                data_testid="forbidden",
            ),
            rx.cond(AuthState.is_admin, _log()),
        ),
        title="Admin · audit log",
    )
