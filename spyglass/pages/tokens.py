"""The client-token panel shared by /tasks (own tokens) and /admins/tasks/ (all tokens)."""

from __future__ import annotations

import reflex as rx

from spyglass.auth.service import MAX_TOKEN_DAYS
from spyglass.pages.widgets import light_code, light_table, select, shown_once
from spyglass.states.tokens import SCOPE_FIELD, TokenRow, TokenState
from spyglass.tasks.access import SCOPES


def _new_token_callout() -> rx.Component:
    return shown_once(
        TokenState.new_token,
        message=rx.text(
            "New token for ",
            rx.text.strong(TokenState.new_token_owner),
            ". Copy it now: it is not shown again.",
        ),
        testid="new-token",
        on_done=TokenState.dismiss_new_token,
    )


def _token_row(row: TokenRow, show_owner: bool) -> rx.Component:
    return light_table.row(
        light_table.cell(light_code(row.prefix, "…")),
        light_table.cell(row.name),
        *([light_table.cell(row.owner_email)] if show_owner else []),
        light_table.cell(row.scopes, data_testid="token-scopes"),
        light_table.cell(row.created_at),
        light_table.cell(row.expires_at),
        light_table.cell(row.last_used_at),
        light_table.cell(
            rx.cond(
                row.active,
                rx.button(
                    "Revoke",
                    size="1",
                    color_scheme="red",
                    variant="soft",
                    on_click=TokenState.revoke(row.id),  # type: ignore[operator]  # @rx.event: see pages/__init__.py
                ),
                rx.badge("Revoked", color_scheme="gray"),
            )
        ),
        data_testid="token-row",
        data_token_name=row.name,
    )


def _scope_id(scope: str) -> str:
    return "token-scope-" + scope.replace(":", "-")


def token_panel(admin: bool) -> rx.Component:
    owner_field = (
        [
            select(
                TokenState.user_emails,
                name="owner_email",
                placeholder="Owner (you)",
                testid="token-owner",
                label="Owner of the new token",
                on_open_change=TokenState.refresh_users,
            )
        ]
        if admin
        else []
    )
    return rx.vstack(
        rx.heading("Client tokens", size="4", as_="h2"),
        rx.text(
            "Scripts use a token in the token API: ",
            light_code("POST /api/<state>/tasks/<token>/start/<job>"),
            " and the sockets ",
            light_code("/ws/<state>/tasks/<token>"),
            ".",
            size="2",
            color_scheme="gray",
        ),
        _new_token_callout(),
        rx.cond(TokenState.error != "", rx.callout(TokenState.error, color_scheme="red")),
        # Plain form and checkboxes (Radix's Form and Checkbox: 3.4 KB gzipped that /tasks, where
        # this panel is, need not load); Reflex's form collects them the same way.
        rx.el.form(
            rx.hstack(
                *owner_field,
                rx.input(
                    name="name",
                    placeholder="Token name",
                    aria_label="Name of the new token",
                    required=True,
                    max_length=100,
                ),
                rx.input(
                    name="expires_in_days",
                    type="number",
                    min=1,
                    max=MAX_TOKEN_DAYS,
                    placeholder="Expires in days (never)",
                    aria_label="Days until the new token expires (empty: never)",
                ),
                rx.button("Issue token", type="submit"),
                align="center",
                wrap="wrap",
            ),
            rx.hstack(
                rx.text("Scopes (none ticked: all):", size="2"),
                *[
                    rx.el.label(
                        rx.flex(
                            rx.el.input(
                                type="checkbox",
                                class_name="sg-checkbox",
                                name=SCOPE_FIELD + scope,
                                id=_scope_id(scope),
                                aria_label=f"Scope {scope}",
                                data_testid=f"scope-{scope}",
                            ),
                            rx.text(scope, size="2"),
                            spacing="1",
                        ),
                        html_for=_scope_id(scope),
                    )
                    for scope in SCOPES
                ],
                align="center",
                wrap="wrap",
                margin_top="8px",
            ),
            on_submit=TokenState.issue,
            reset_on_submit=True,
        ),
        light_table.root(
            light_table.header(
                light_table.row(
                    light_table.column_header_cell("Token"),
                    light_table.column_header_cell("Name"),
                    *([light_table.column_header_cell("Owner")] if admin else []),
                    light_table.column_header_cell("Scopes"),
                    light_table.column_header_cell("Created"),
                    light_table.column_header_cell("Expires"),
                    light_table.column_header_cell("Last used"),
                    light_table.column_header_cell("Actions"),
                )
            ),
            light_table.body(rx.foreach(TokenState.tokens, lambda r: _token_row(r, admin))),
            width="100%",
        ),
        width="100%",
        spacing="3",
    )
