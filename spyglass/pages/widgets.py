"""Small components shared by pages."""

from __future__ import annotations

from typing import Any

import reflex as rx
from reflex_components_code.code import construct_theme_var  # type: ignore[import-untyped]

#: react-syntax-highlighter's WCAG-AA light theme (every token 4.5:1 on its background);
#: Reflex's default, one-light, draws some tokens at 3:1.
COMMAND_THEME = construct_theme_var("a11yOneLight")


def select(
    items: Any, *, testid: str, label: Any, placeholder: str = "", **root_props: Any
) -> rx.Component:
    """A Radix select whose trigger (the clickable part) carries `data-testid` and is named
    `label` for screen readers (the trigger shows only the value)."""
    return rx.select.root(
        rx.select.trigger(placeholder=placeholder, data_testid=testid, aria_label=label),
        rx.select.content(
            rx.select.group(rx.foreach(items, lambda item: rx.select.item(item, value=item)))
        ),
        **root_props,
    )


def labelled_select(label: str, items: Any, *, testid: str, **root_props: Any) -> rx.Component:
    """A filter: its name, then its select."""
    return rx.fragment(
        rx.text(label, size="2", aria_hidden="true"),
        select(items, testid=testid, label=label, **root_props),
    )


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


def first_visit() -> rx.Component:
    """/tasks before the first task: what to do first."""
    return rx.callout(
        rx.vstack(
            rx.text(
                rx.text.strong("No tasks yet."),
                " Start one on New task: choose a tool, drop a CSV or Excel file, and follow "
                "it here as it runs.",
            ),
            rx.button(rx.link("New task", href="/"), as_child=True, size="2"),
            spacing="3",
        ),
        icon="info",
        data_testid="tasks-empty",
    )


def command(code: Any, *, language: str = "bash", can_copy: bool = True) -> rx.Component:
    """A command to copy (curl, wscat …): readable colors, long lines wrapped on small screens."""
    return rx.code_block(
        code,
        language=language,
        theme=COMMAND_THEME,
        can_copy=can_copy,
        wrap_long_lines=True,
        width="100%",
    )
