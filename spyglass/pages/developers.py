"""`/developers`: the example jobs and where the API is, out of an end user's way."""

from __future__ import annotations

import reflex as rx

from spyglass.pages.layout import layout
from spyglass.pages.widgets import command
from spyglass.states.examples import ExampleTaskState, ExampleTaskState2

#: (test id, label, what it does, the event that starts it)
EXAMPLES = (
    (
        "start-example_task-task1",
        "example_task · task1",
        "Three steps of 33 %, half a second apart.",
        ExampleTaskState.task1,
    ),
    (
        "start-example_task2-task1",
        "example_task2 · task1",
        "The same three steps, declared on another state.",
        ExampleTaskState2.task1,
    ),
    (
        "start-example_task2-task2_with_args",
        "example_task2 · task2_with_args",
        "Ten steps over five seconds, with arguments (name Browser, age 7).",
        ExampleTaskState2.task2_with_args({"name": "Browser", "age": 7}),  # type: ignore[operator]  # @rx.event: see pages/__init__.py
    ),
)


def _example(testid: str, label: str, what: str, start: object) -> rx.Component:
    return rx.card(
        rx.flex(
            rx.vstack(
                rx.text(rx.code(label)),
                rx.text(what, size="2", color_scheme="gray"),
                spacing="1",
            ),
            rx.button(
                "Run",
                on_click=[start, rx.redirect("/tasks")],  # type: ignore[list-item]
                aria_label=f"Run {label}",
                data_testid=testid,
            ),
            justify="between",
            align="center",
            spacing="3",
            wrap="wrap",
        ),
        width="100%",
    )


def developers_page() -> rx.Component:
    return layout(
        rx.text(
            "Jobs are Python functions declared on Reflex states; SpyGlass runs them, records "
            "them and streams every change. Try the example jobs: each starts for you and "
            "opens your tasks, where it runs live.",
        ),
        rx.heading("Example jobs", size="4", as_="h2"),
        *[_example(*example) for example in EXAMPLES],
        rx.heading("The API", size="4", as_="h2"),
        rx.text(
            "Every job can be started and followed over HTTP and WebSocket; the interactive "
            "reference is at ",
            rx.link("/docs", href="/docs", is_external=True),
            ". Scripts use a client token: issue one in the Client tokens panel of ",
            rx.link("your tasks", href="/tasks"),
            ".",
        ),
        command(
            "curl -s -X POST "
            "http://localhost:3000/api/example_task2/tasks/$TOKEN/start/task2_with_args \\\n"
            '  -H \'Content-Type: application/json\' -d \'{"name": "Matt", "age": 25}\'\n'
            "wscat -c ws://localhost:3000/ws/example_task2/tasks/$TOKEN",
        ),
        title="Developers",
    )
