"""`/login` and `/register`: email and password forms.

The fields go to the HTTP API from the browser (assets/spyglass.js), not to the page's
state: the forms' submit events carry no field values.
"""

from __future__ import annotations

from typing import Any

import reflex as rx
from reflex.vars import ObjectVar

from spyglass.auth.passwords import PasswordRule
from spyglass.states.auth import AuthState


def _card(title: str, *children: rx.Component) -> rx.Component:
    return rx.el.main(
        rx.center(
            rx.card(
                rx.vstack(
                    rx.heading("SpyGlass", size="6", as_="h1"),
                    rx.heading(title, size="3", as_="h2", weight="regular", color_scheme="gray"),
                    *children,
                    spacing="4",
                    width="100%",
                ),
                width="380px",
                max_width="100%",
            ),
            min_height="80vh",
            padding="16px",
        )
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


def _notice() -> rx.Component:
    return rx.cond(
        AuthState.notice != "",
        rx.callout(AuthState.notice, icon="info", color_scheme="green", data_testid="form-notice"),
    )


def _field(label: str, name: str, kind: str, autocomplete: str, **props: Any) -> rx.Component:
    field_id = f"field-{name}"
    return rx.vstack(
        rx.el.label(rx.text(label, size="2", weight="medium", as_="span"), html_for=field_id),
        rx.input(
            id=field_id,
            name=name,
            type=kind,
            required=True,
            auto_complete=autocomplete,
            width="100%",
            **props,
        ),
        spacing="1",
        width="100%",
    )


def _rule(rule: ObjectVar[PasswordRule]) -> rx.Component:
    return rx.hstack(
        rx.cond(
            rule.met,
            rx.icon("circle_check", size=14, color="var(--green-9)"),
            rx.icon("circle", size=14, color="var(--gray-8)"),
        ),
        rx.text(rule.text, size="1", color_scheme=rx.cond(rule.met, "green", "gray")),
        align="center",
        spacing="1",
        data_testid="password-rule",
        data_rule=rule.key,
        data_met=rx.cond(rule.met, "true", "false"),
    )


def _password_rules() -> rx.Component:
    return rx.vstack(
        rx.foreach(AuthState.password_checks, _rule),
        spacing="1",
        data_testid="password-rules",
    )


def login_page() -> rx.Component:
    return _card(
        "Sign in",
        _notice(),
        _error(),
        rx.form(
            rx.vstack(
                _field("Email", "email", "email", "username"),
                _field("Password", "password", "password", "current-password"),
                rx.button(
                    "Sign in",
                    type="submit",
                    width="100%",
                    loading=AuthState.busy,
                    disabled=~rx.State.is_hydrated,  # a click before then would be lost
                ),
                spacing="3",
            ),
            id="login-form",
            on_submit=lambda _fields: AuthState.login(),  # type: ignore[operator]  # @rx.event: see pages/__init__.py
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
                _field(
                    "Password",
                    "password",
                    "password",
                    "new-password",
                    on_change=AuthState.check_password.debounce(250),  # type: ignore[attr-defined]  # @rx.event: see pages/__init__.py
                ),
                _password_rules(),
                _field("Repeat the password", "confirm", "password", "new-password"),
                rx.button(
                    "Create account",
                    type="submit",
                    width="100%",
                    loading=AuthState.busy,
                    disabled=~rx.State.is_hydrated,
                ),
                spacing="3",
            ),
            id="register-form",
            on_submit=lambda _fields: AuthState.register(),  # type: ignore[operator]  # @rx.event: see pages/__init__.py
            reset_on_submit=False,
        ),
        rx.text("Have an account? ", rx.link("Sign in", href="/login"), size="2"),
    )
