"""Small components shared by pages."""

from __future__ import annotations

from typing import Any

import reflex as rx


def select(items: Any, *, testid: str, placeholder: str = "", **root_props: Any) -> rx.Component:
    """A Radix select whose trigger (the clickable part) carries `data-testid`."""
    return rx.select.root(
        rx.select.trigger(placeholder=placeholder, data_testid=testid),
        rx.select.content(
            rx.select.group(rx.foreach(items, lambda item: rx.select.item(item, value=item)))
        ),
        **root_props,
    )


def labelled_select(label: str, items: Any, *, testid: str, **root_props: Any) -> rx.Component:
    """A filter: its name, then its select."""
    return rx.fragment(rx.text(label, size="2"), select(items, testid=testid, **root_props))


def loading(text: str) -> rx.Component:
    return rx.hstack(rx.spinner(), rx.text(text), align="center")


def not_found(text: str, testid: str) -> rx.Component:
    """What a page shows for an unknown task, or another user's (the same answer)."""
    return rx.callout(
        rx.text(text, " ", rx.link("Back to your tasks", href="/tasks")),
        icon="search_x",
        color_scheme="gray",
        data_testid=testid,
    )
