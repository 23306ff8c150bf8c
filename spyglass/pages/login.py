"""`/login` and `/register`: email and password forms."""

from __future__ import annotations

import reflex as rx

from spyglass.states.auth import AuthState


def _card(title: str, *children: rx.Component) -> rx.Component:
    return rx.center(
        rx.card(
            rx.vstack(
                rx.heading("SpyGlass", size="6"),
                rx.text(title, size="3", color_scheme="gray"),
                *children,
                spacing="4",
                width="100%",
            ),
            width="380px",
        ),
        min_height="80vh",
    )


def _error() -> rx.Component:
    return rx.cond(
        AuthState.form_error != "",
        rx.callout(
            AuthState.form_error,
            icon="triangle_alert",
            color_scheme="red",
            data_testid="form-error",
        ),
    )


def _field(label: str, name: str, kind: str, autocomplete: str) -> rx.Component:
    return rx.vstack(
        rx.text(label, size="2", weight="medium"),
        rx.input(name=name, type=kind, required=True, auto_complete=autocomplete, width="100%"),
        spacing="1",
        width="100%",
    )


def login_page() -> rx.Component:
    return _card(
        "Sign in",
        _error(),
        rx.form(
            rx.vstack(
                _field("Email", "email", "email", "username"),
                _field("Password", "password", "password", "current-password"),
                rx.button("Sign in", type="submit", width="100%", loading=AuthState.busy),
                spacing="3",
            ),
            on_submit=AuthState.login,
            reset_on_submit=False,
        ),
        rx.text("No account yet? ", rx.link("Register", href="/register"), size="2"),
    )


def register_page() -> rx.Component:
    return _card(
        "Create an account",
        _error(),
        rx.form(
            rx.vstack(
                _field("Email", "email", "email", "username"),
                _field("Password (8 characters or more)", "password", "password", "new-password"),
                _field("Repeat the password", "confirm", "password", "new-password"),
                rx.button("Create account", type="submit", width="100%", loading=AuthState.busy),
                spacing="3",
            ),
            on_submit=AuthState.register,
            reset_on_submit=False,
        ),
        rx.text("Have an account? ", rx.link("Sign in", href="/login"), size="2"),
    )
