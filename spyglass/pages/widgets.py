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
