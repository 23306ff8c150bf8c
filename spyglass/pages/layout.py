"""The frame shared by every page: a top bar and a centred column."""

from __future__ import annotations

import reflex as rx

from spyglass.states.auth import AuthState


def layout(*children: rx.Component, title: str) -> rx.Component:
    return rx.box(
        rx.hstack(
            rx.link(rx.heading("SpyGlass", size="5"), href="/tasks", underline="none"),
            rx.spacer(),
            rx.link("New task", href="/"),
            rx.link("Tasks", href="/tasks"),
            rx.link("Webhooks", href="/webhooks"),
            rx.cond(AuthState.is_admin, rx.link("Admin", href="/admins/tasks/")),
            rx.link("API docs", href="/docs", is_external=True),
            rx.cond(
                AuthState.user_email != "",
                rx.hstack(
                    rx.text(
                        AuthState.user_email,
                        size="2",
                        color_scheme="gray",
                        data_testid="signed-in-as",
                    ),
                    rx.button("Sign out", size="1", variant="soft", on_click=AuthState.logout),
                    align="center",
                ),
            ),
            align="center",
            wrap="wrap",
            padding="12px 24px",
            border_bottom="1px solid var(--gray-5)",
        ),
        rx.container(
            rx.vstack(rx.heading(title, size="7"), *children, spacing="4", width="100%"),
            size="4",
            padding_y="24px",
        ),
    )
