"""The frame shared by every page: a skip link, a top bar (banner, navigation) and the page's
`<main>` landmark with a centred column.

On a phone the bar wraps: the brand and the links on one line, who is signed in on the next
(the address cut short with an ellipsis), so no page is wider than the screen.
"""

from __future__ import annotations

import reflex as rx
from reflex_components_core.react_router.dom import ReactRouterLink  # type: ignore[import-untyped]

from spyglass.states.auth import AuthState

MAIN_ID = "main"


def _tasks_link() -> rx.Component:
    """The link to /tasks, whose code the browser fetches as soon as the link is drawn
    (React Router's `prefetch="render"`): starting a task on New task lands there, and its
    first progress shows without waiting for the page's scripts."""
    return rx.link(
        ReactRouterLink.create("Tasks", to="/tasks", custom_attrs={"prefetch": "render"}),
        as_child=True,
    )


def _nav() -> rx.Component:
    return rx.el.nav(
        rx.flex(
            rx.link("New task", href="/"),
            _tasks_link(),
            rx.link("Webhooks", href="/webhooks"),
            rx.cond(AuthState.is_staff, rx.link("Admin", href="/admins/tasks/")),
            rx.link("Developers", href="/developers"),
            spacing="3",
            wrap="wrap",
            align="center",
        ),
        aria_label="Main",
    )


def _account() -> rx.Component:
    return rx.cond(
        AuthState.user_email != "",
        rx.flex(
            rx.text(
                AuthState.user_email,
                size="2",
                color_scheme="gray",
                class_name="sg-email",
                data_testid="signed-in-as",
            ),
            rx.button("Sign out", size="1", variant="soft", on_click=AuthState.logout),
            align="center",
            spacing="2",
            min_width="0",
            max_width="100%",
        ),
    )


def top_bar() -> rx.Component:
    return rx.el.header(
        rx.flex(
            rx.flex(
                rx.link(
                    rx.text("SpyGlass", size="5", weight="bold"),
                    href="/tasks",
                    underline="none",
                    aria_label="SpyGlass: your tasks",
                ),
                _nav(),
                spacing="4",
                wrap="wrap",
                align="center",
            ),
            _account(),
            justify="between",
            align="center",
            wrap="wrap",
            spacing="2",
            padding=rx.breakpoints(initial="10px 16px", sm="12px 24px"),
        ),
        border_bottom="1px solid var(--gray-5)",
    )


def skip_link() -> rx.Component:
    """The first stop of the Tab key: past the bar to the page's content. (A button: Reflex
    turns `<a href="#…">` into a router link, which would load the page again.)"""
    return rx.el.button("Skip to the content", class_name="sg-skip", on_click=rx.set_focus(MAIN_ID))


def layout(*children: rx.Component, title: str) -> rx.Component:
    return rx.box(
        skip_link(),
        top_bar(),
        rx.el.main(
            rx.container(
                rx.vstack(
                    rx.heading(title, size="7", as_="h1"), *children, spacing="4", width="100%"
                ),
                size="4",
                padding_y="24px",
                padding_x=rx.breakpoints(initial="12px", sm="16px"),
            ),
            id=MAIN_ID,
            tab_index=-1,
        ),
    )
