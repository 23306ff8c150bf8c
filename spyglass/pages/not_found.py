"""The page for an address that is no page (Reflex's `404` route)."""

from __future__ import annotations

import reflex as rx

from spyglass.pages.layout import layout


def not_found_page() -> rx.Component:
    return layout(
        rx.vstack(
            rx.text("There is no page at this address. It may have moved, or the link is wrong."),
            rx.flex(
                rx.button(rx.link("Go to your tasks", href="/tasks"), as_child=True),
                rx.button(rx.link("Start a new task", href="/"), as_child=True, variant="soft"),
                spacing="3",
                wrap="wrap",
            ),
            spacing="4",
            data_testid="not-found-page",
        ),
        title="Page not found",
    )
