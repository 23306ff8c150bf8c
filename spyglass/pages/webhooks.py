"""/webhooks: register endpoints for task events, read their delivery log, send a delivery
again or a test event. Usable on a phone (390 px): everything wraps, tables scroll."""

from __future__ import annotations

import reflex as rx

from spyglass.pages.layout import layout
from spyglass.pages.widgets import shown_once
from spyglass.states.webhooks import EVENT_FIELDS, DeliveryRow, EndpointRow, WebhooksState

EVENT_HELP = {
    "task.started": "started",
    "task.progress": "progress (at most every few seconds)",
    "task.completed": "completed",
    "task.failed": "failed",
    "task.cancelled": "cancelled",
}


def _secret_callout() -> rx.Component:
    return shown_once(
        WebhooksState.new_secret,
        message=rx.text(
            "Signing secret of the new endpoint. Copy it now: it is not shown again. "
            "Verify each delivery's webhook-signature with it (Standard Webhooks)."
        ),
        testid="webhook-secret",
        on_done=WebhooksState.dismiss_secret,
        width="100%",
    )


def _checkbox(name: str, label: str) -> rx.Component:
    return rx.el.label(
        rx.flex(rx.checkbox(name=name, id=name), rx.text(label, size="2"), spacing="2"),
        html_for=name,
    )


def _form() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.el.label(rx.text("Endpoint URL", size="2", weight="bold"), html_for="webhook-url"),
            rx.input(
                id="webhook-url",
                name="url",
                type="url",
                placeholder="https://hooks.example.com/spyglass",
                required=True,
                max_length=2000,
                width="100%",
            ),
            rx.el.label(rx.text("Description", size="2"), html_for="webhook-description"),
            rx.input(
                id="webhook-description",
                name="description",
                placeholder="What receives it (optional)",
                max_length=200,
                width="100%",
            ),
            rx.el.fieldset(
                rx.el.legend(rx.text("Send when a task is …", size="2", weight="bold")),
                rx.flex(
                    *[_checkbox(name, EVENT_HELP[event]) for name, event in EVENT_FIELDS.items()],
                    wrap="wrap",
                    spacing="3",
                ),
                style={"border": "none", "padding": "0", "margin": "0"},
            ),
            rx.cond(
                WebhooksState.admin,
                _checkbox("all_tasks", "Every user's tasks (admins)"),
            ),
            rx.button("Add endpoint", type="submit"),
            spacing="2",
            width="100%",
        ),
        on_submit=WebhooksState.create,
        reset_on_submit=True,
        width="100%",
        aria_label="Add a webhook endpoint",
    )


def _endpoint_card(row: EndpointRow) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text(row.url, weight="bold", style={"overflow_wrap": "anywhere"}),
            rx.cond(row.description != "", rx.text(row.description, size="2")),
            rx.text("Events: ", row.events, size="2", color_scheme="gray"),
            rx.cond(row.all_tasks, rx.badge("Every user's tasks", color_scheme="purple")),
            rx.cond(
                row.enabled,
                rx.badge("Enabled", color_scheme="green"),
                rx.callout(
                    rx.text("Disabled: ", row.disabled_reason),
                    color_scheme="red",
                    size="1",
                    data_testid="webhook-disabled",
                ),
            ),
            rx.flex(
                rx.button(
                    "Delivery log",
                    size="1",
                    variant="soft",
                    on_click=WebhooksState.show_log(row.id),  # type: ignore[operator]  # @rx.event: see pages/__init__.py
                ),
                rx.button(
                    "Send test event",
                    size="1",
                    variant="soft",
                    on_click=WebhooksState.send_test(row.id),  # type: ignore[operator]
                ),
                rx.cond(
                    row.enabled,
                    rx.button(
                        "Disable",
                        size="1",
                        variant="soft",
                        color_scheme="gray",
                        on_click=WebhooksState.set_enabled(row.id, False),  # type: ignore[operator]
                    ),
                    rx.button(
                        "Enable",
                        size="1",
                        variant="soft",
                        color_scheme="green",
                        on_click=WebhooksState.set_enabled(row.id, True),  # type: ignore[operator]
                    ),
                ),
                rx.button(
                    "Delete",
                    size="1",
                    variant="soft",
                    color_scheme="red",
                    on_click=WebhooksState.delete(row.id),  # type: ignore[operator]
                ),
                wrap="wrap",
                spacing="2",
            ),
            spacing="2",
            width="100%",
        ),
        width="100%",
        data_testid="webhook-endpoint",
    )


def _delivery_row(row: DeliveryRow) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row.event_type),
        rx.table.cell(
            rx.badge(
                row.state,
                color_scheme=rx.match(
                    row.state, ("succeeded", "green"), ("failed", "red"), "amber"
                ),
            )
        ),
        rx.table.cell(row.attempts),
        rx.table.cell(row.last_status),
        rx.table.cell(row.created_at),
        rx.table.cell(rx.text(row.log, size="1", white_space="pre-wrap")),
        rx.table.cell(
            rx.flex(
                rx.button(
                    "Send again",
                    size="1",
                    variant="soft",
                    on_click=WebhooksState.resend(row.id),  # type: ignore[operator]
                ),
                rx.button(
                    "Payload",
                    size="1",
                    variant="ghost",
                    on_click=WebhooksState.show_payload(row.id),  # type: ignore[operator]
                ),
                wrap="wrap",
                spacing="1",
            )
        ),
        data_testid="webhook-delivery",
        data_state=row.state,
    )


def _log() -> rx.Component:
    return rx.cond(
        WebhooksState.selected != 0,
        rx.vstack(
            rx.flex(
                rx.heading("Delivery log", size="4"),
                rx.text(WebhooksState.selected_url, size="2", style={"overflow_wrap": "anywhere"}),
                rx.button("Refresh", size="1", variant="soft", on_click=WebhooksState.refresh_log),
                wrap="wrap",
                spacing="3",
                align="center",
            ),
            rx.cond(
                WebhooksState.deliveries.length() == 0,  # type: ignore[attr-defined]
                rx.text("Nothing sent yet.", size="2", color_scheme="gray"),
                rx.box(
                    rx.table.root(
                        rx.table.header(
                            rx.table.row(
                                rx.table.column_header_cell("Event"),
                                rx.table.column_header_cell("State"),
                                rx.table.column_header_cell("Attempts"),
                                rx.table.column_header_cell("Last answer"),
                                rx.table.column_header_cell("Created"),
                                rx.table.column_header_cell("Attempts log"),
                                rx.table.column_header_cell("Actions"),
                            )
                        ),
                        rx.table.body(rx.foreach(WebhooksState.deliveries, _delivery_row)),
                        width="100%",
                        aria_label="Deliveries",
                    ),
                    width="100%",
                    overflow_x="auto",
                ),
            ),
            rx.cond(
                WebhooksState.payload != "",
                rx.code_block(WebhooksState.payload, language="json", wrap_long_lines=True),
            ),
            width="100%",
            spacing="2",
        ),
    )


def webhooks_page() -> rx.Component:
    return layout(
        rx.text(
            "SpyGlass posts task events to your endpoints, signed as the Standard Webhooks "
            "specification says, and retries failures with backoff for a day.",
            size="2",
            color_scheme="gray",
        ),
        _secret_callout(),
        rx.cond(
            WebhooksState.error != "",
            rx.callout(WebhooksState.error, color_scheme="red", data_testid="webhook-error"),
        ),
        _form(),
        rx.heading("Endpoints", size="4"),
        rx.cond(
            WebhooksState.endpoints.length() == 0,  # type: ignore[attr-defined]
            rx.text("No endpoints yet.", size="2", color_scheme="gray"),
        ),
        rx.foreach(WebhooksState.endpoints, _endpoint_card),
        _log(),
        title="Webhooks",
    )
