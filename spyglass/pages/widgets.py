"""Small components shared by pages."""

from __future__ import annotations

from typing import Any

import reflex as rx
from reflex_components_code.code import construct_theme_var  # type: ignore[import-untyped]

#: react-syntax-highlighter's WCAG-AA light theme (every token 4.5:1 on its background);
#: Reflex's default, one-light, draws some tokens at 3:1.
COMMAND_THEME = construct_theme_var("a11yOneLight")


def select(
    items: Any, *, testid: str, placeholder: str = "", label: Any = "", **root_props: Any
) -> rx.Component:
    """A Radix select whose trigger (the clickable part) carries `data-testid` (and, given a
    `label`, its name for screen readers)."""
    # Named (for screen readers), with its placeholder in a colour that reads (gray 11).
    named: dict[str, Any] = (
        {
            "aria_label": label,
            "style": {"&[data-placeholder] .rt-SelectTriggerInner": {"color": "var(--gray-11)"}},
        }
        if isinstance(label, rx.Var) or label
        else {}
    )
    return rx.select.root(
        rx.select.trigger(placeholder=placeholder, data_testid=testid, **named),
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


def choice_select(options: Any, *, label: str, testid: str, **root_props: Any) -> rx.Component:
    """A filter whose options read differently from what they mean (`Choice(value, label)`):
    its visible name, then a Radix select named by it for screen readers."""
    return rx.hstack(
        rx.text(label, size="2", as_="span"),
        rx.select.root(
            rx.select.trigger(data_testid=testid, aria_label=label),
            rx.select.content(
                rx.select.group(
                    rx.foreach(options, lambda c: rx.select.item(c.label, value=c.value))
                )
            ),
            **root_props,
        ),
        align="center",
        spacing="2",
    )


def native_choice_select(
    options: Any, *, label: str, testid: str, value: Any, on_change: Any
) -> rx.Component:
    """`choice_select` as the browser's own `<select>` (drawn like Radix's fields by
    `sg-native-select`): its visible name, then the select named by it. No JavaScript of its
    own: /tasks keeps Radix's select (its collection, list box and scroll area, 10 KB gzipped)
    out of the scripts it loads."""
    return rx.hstack(
        rx.text(label, size="2", as_="span"),
        rx.el.select(
            rx.foreach(options, lambda c: rx.el.option(c.label, value=c.value)),
            value=value,
            on_change=on_change,
            aria_label=label,
            class_name="sg-native-select sg-inline",
            data_testid=testid,
        ),
        align="center",
        spacing="2",
    )


class LightTable:
    """`rx.table`'s parts as plain elements with Radix Themes' own table classes (its style
    sheet, on every page already, draws them the same): Radix's `Table.Root` wraps the table
    in its ScrollArea, whose code (6 KB gzipped with the table's) /tasks need not load. The
    root scrolls sideways by itself (`sg-light-table`) where a table is wider than the page."""

    @staticmethod
    def root(*children: Any, class_name: str = "", aria_label: Any = None, **props: Any) -> Any:
        return rx.el.div(
            rx.el.table(*children, class_name="rt-TableRootTable", aria_label=aria_label),
            class_name=f"rt-TableRoot rt-r-size-2 rt-variant-ghost sg-light-table {class_name}",
            **props,
        )

    @staticmethod
    def header(*children: Any, **props: Any) -> Any:
        return rx.el.thead(*children, class_name="rt-TableHeader", **props)

    @staticmethod
    def body(*children: Any, **props: Any) -> Any:
        return rx.el.tbody(*children, class_name="rt-TableBody", **props)

    @staticmethod
    def row(*children: Any, **props: Any) -> Any:
        return rx.el.tr(*children, class_name="rt-TableRow", **props)

    @staticmethod
    def cell(*children: Any, **props: Any) -> Any:
        return rx.el.td(*children, class_name="rt-TableCell", **props)

    @staticmethod
    def column_header_cell(*children: Any, **props: Any) -> Any:
        return rx.el.th(
            *children, scope="col", class_name="rt-TableCell rt-TableColumnHeaderCell", **props
        )


light_table = LightTable()


def light_code(*children: Any, **props: Any) -> rx.Component:
    """`rx.code` (soft, the default) as a plain `<code>` with Radix Themes' classes: the same
    look, without Radix's Code component in the scripts of the pages that show only these."""
    return rx.el.code(*children, class_name="rt-reset rt-Code rt-variant-soft", **props)


def dialog_description(*children: Any) -> rx.Component:
    """A dialog's description (announced when it opens) as a `div`, so that it may hold
    paragraphs (Radix renders a `p` by default)."""
    return rx.alert_dialog.description(*children, custom_attrs={"as": "div"})


def confirm_dialog(
    trigger: rx.Component,
    *,
    title: str | rx.Var,
    description: Any,
    confirm: str,
    on_confirm: Any,
    keep: str = "Keep it",
    testid: str = "confirm",
    color_scheme: str = "red",
    extra: rx.Component | None = None,
) -> rx.Component:
    """`trigger` opens a dialog that asks before `on_confirm` runs: its `keep` button (or
    Escape) closes it and changes nothing. `extra` is another way out, beside them."""
    return rx.alert_dialog.root(
        rx.alert_dialog.trigger(trigger),
        rx.alert_dialog.content(
            rx.alert_dialog.title(title),
            dialog_description(description),
            rx.hstack(
                rx.alert_dialog.cancel(
                    rx.button(
                        keep, variant="soft", color_scheme="gray", data_testid=f"{testid}-keep"
                    )
                ),
                *([extra] if extra is not None else []),
                rx.alert_dialog.action(
                    rx.button(
                        confirm,
                        color_scheme=color_scheme,
                        on_click=on_confirm,
                        data_testid=f"{testid}-confirm",
                    )
                ),
                justify="end",
                spacing="2",
                margin_top="16px",
                wrap="wrap",
            ),
            data_testid=f"{testid}-dialog",
        ),
    )


#: Kept off the screen, read by screen readers.
SCREEN_READER_ONLY = {
    "position": "absolute",
    "width": "1px",
    "height": "1px",
    "padding": "0",
    "margin": "-1px",
    "overflow": "hidden",
    "clip": "rect(0, 0, 0, 0)",
    "white_space": "nowrap",
    "border": "0",
}


def screen_reader_text(*children: Any) -> rx.Component:
    return rx.el.span(*children, style=SCREEN_READER_ONLY)


def command_line(text: Any, *, testid: str = "command") -> rx.Component:
    """A shell command to copy: wrapped at any character on a narrow screen, with a Copy
    button."""
    return rx.hstack(
        rx.code(
            text,
            variant="soft",
            size="2",
            style={
                "word_break": "break_all",
                "white_space": "pre-wrap",
                "min_width": "0",
                "flex": "1 1 auto",
            },
            data_testid=testid,
        ),
        rx.icon_button(
            rx.icon("copy", size=14, aria_hidden="true"),
            size="1",
            variant="soft",
            color_scheme="gray",
            aria_label="Copy the command",
            on_click=rx.set_clipboard(text),
        ),
        align="start",
        spacing="2",
        width="100%",
    )


def scroll_table(*children: Any, label: str, **table_props: Any) -> rx.Component:
    """A table in a region that scrolls sideways on a narrow screen (there the table is as
    wide as its columns; from the `md` breakpoint on, as wide as the page, its long texts
    wrapping): named `label`, and focusable so that the keyboard can scroll it too."""
    return rx.box(
        rx.table.root(
            *children,
            width=rx.breakpoints(initial="max-content", md="100%"),
            min_width="100%",
            **table_props,
        ),
        overflow_x="auto",
        width="100%",
        tab_index=0,
        role="region",
        aria_label=label,
    )


def shown_once(
    value: Any, *, message: rx.Component, testid: str, on_done: Any, **box: Any
) -> rx.Component:
    """A secret shown once (a new client token, a webhook's signing secret): what it is, the
    value with Copy, and Done to put it away. Nothing while `value` is empty."""
    return rx.cond(
        value != "",
        rx.callout(
            rx.vstack(
                message,
                rx.hstack(
                    light_code(value, data_testid=testid),
                    rx.button("Copy", size="1", variant="soft", on_click=rx.set_clipboard(value)),
                    rx.button("Done", size="1", variant="ghost", on_click=on_done),
                    align="center",
                    wrap="wrap",
                ),
                **box,
            ),
            icon="key",
            color_scheme="green",
            style={"overflow_wrap": "anywhere"},
        ),
    )


def download_link(text: str, href: Any, *, testid: str) -> rx.Component:
    """A link the browser saves: a document request, not the app's router."""
    return rx.link(text, href=href, download="", reload_document=True, data_testid=testid)
