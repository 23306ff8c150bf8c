"""`/`: New task. Choose a tool and its agents, drop a file (and a baseline), set parameters."""

from __future__ import annotations

import reflex as rx

from spyglass.filetypes import ACCEPT, DATA_EXTENSIONS
from spyglass.pages.layout import layout
from spyglass.pages.widgets import loading, select
from spyglass.states.new_task import AgentChoice, NewTaskState, ParamField, ToolCard

SAMPLES = (
    ("customers.csv", "for every tool"),
    ("customers_baseline.csv", "a baseline for drift-detector"),
    ("orders.xlsx", "an Excel file"),
)


def _tool_card(tool: ToolCard) -> rx.Component:
    return rx.radio_cards.item(
        rx.vstack(
            rx.text(rx.text.strong(tool.name)),
            rx.text(tool.description, size="1", color_scheme="gray"),
            rx.text("All agents: ", tool.total_cost, " credits", size="1"),
            spacing="1",
            align="start",
        ),
        value=tool.tool_id,
        data_testid="tool-" + tool.tool_id,
    )


def _agent_row(agent: AgentChoice) -> rx.Component:
    return rx.hstack(
        rx.checkbox(
            checked=agent.selected,
            on_change=lambda checked: NewTaskState.toggle_agent(agent.agent_id, checked),  # type: ignore[operator]  # @rx.event: see pages/__init__.py
            data_testid="agent-" + agent.agent_id,
            aria_label=agent.agent_id,
        ),
        rx.vstack(
            rx.text(rx.code(agent.agent_id), " ", agent.description, size="2"),
            rx.cond(
                agent.needs_baseline,
                rx.text("needs a baseline file", size="1", color_scheme="amber"),
            ),
            spacing="0",
        ),
        rx.spacer(),
        rx.badge(agent.cost, " credits", variant="soft"),
        align="center",
        width="100%",
    )


def _file_zone(key: str, title: str, note: str) -> rx.Component:
    name = NewTaskState.file_names[key]
    return rx.box(
        rx.vstack(
            rx.hstack(rx.icon("upload", size=18), rx.text(rx.text.strong(title)), align="center"),
            rx.cond(
                name != "",
                rx.text("Chosen: ", rx.code(name), size="2", data_testid=f"chosen-{key}"),
                rx.text(note, size="2", color_scheme="gray"),
            ),
            rx.el.input(
                type="file",
                id=f"file-{key}",
                accept=ACCEPT,
                on_change=lambda value: NewTaskState.file_chosen(key, value),  # type: ignore[operator]  # @rx.event: see pages/__init__.py
                data_testid=f"file-{key}",
                aria_label=title,
            ),
            spacing="2",
        ),
        data_dropzone=key,
        padding="16px",
        border="2px dashed var(--gray-7)",
        border_radius="8px",
        width="100%",
        style={"&[data-over]": {"border_color": "var(--accent-9)"}},
    )


def _param_input(field: ParamField) -> rx.Component:
    value = NewTaskState.params[field.key]
    testid = "param-" + field.key
    return rx.match(
        field.kind,
        (
            "bool",
            rx.switch(
                checked=value == "true",
                on_change=lambda checked: NewTaskState.set_param(field.key, checked),  # type: ignore[operator]  # @rx.event: see pages/__init__.py
                data_testid=testid,
                aria_label=field.label,
            ),
        ),
        (
            "choice",
            select(
                rx.Var.create(field.options).to(list[str]),
                value=value,
                on_change=lambda choice: NewTaskState.set_param(field.key, choice),  # type: ignore[operator]  # @rx.event: see pages/__init__.py
                testid=testid,
                label=field.label,
            ),
        ),
        rx.input(
            value=value,
            on_change=lambda text: NewTaskState.set_param(field.key, text),  # type: ignore[operator]  # @rx.event: see pages/__init__.py
            placeholder=field.hint,
            type=rx.match(field.kind, ("integer", "number"), ("number", "number"), "text"),
            step=rx.match(field.kind, ("number", "any"), "1"),
            data_testid=testid,
            aria_label=field.label,
            width="100%",
            max_width="260px",
        ),
    )


def _param_row(field: ParamField) -> rx.Component:
    return rx.hstack(
        rx.vstack(
            rx.text(field.label, size="2"),
            rx.text(field.agent, size="1", color_scheme="gray"),
            spacing="0",
            width="220px",
        ),
        _param_input(field),
        align="center",
        wrap="wrap",
    )


def _progress() -> rx.Component:
    return rx.cond(
        NewTaskState.busy,
        rx.vstack(
            rx.hstack(rx.spinner(), rx.text(NewTaskState.phase_label), align="center"),
            rx.box(
                rx.box(
                    id="upload-bar",
                    role="progressbar",
                    aria_valuemin=0,
                    aria_valuemax=100,
                    aria_valuenow=0,
                    width="0%",
                    height="100%",
                    background="var(--accent-9)",
                    transition="width 0.2s",
                    data_testid="upload-progress",
                ),
                width="100%",
                height="10px",
                background="var(--gray-4)",
                border_radius="5px",
                overflow="hidden",
            ),
            rx.el.span(id="upload-percent", data_testid="upload-percent"),
            width="100%",
        ),
    )


def _form() -> rx.Component:
    return rx.vstack(
        rx.heading("1. Tool", size="4", as_="h2"),
        rx.radio_cards.root(
            rx.foreach(NewTaskState.tools, _tool_card),
            value=NewTaskState.tool_id,
            on_value_change=NewTaskState.choose_tool,
            columns=rx.breakpoints(initial="1", sm="3"),
            width="100%",
        ),
        rx.heading("2. Agents", size="4", as_="h2"),
        rx.card(
            rx.vstack(rx.foreach(NewTaskState.agents, _agent_row), width="100%"),
            width="100%",
        ),
        rx.hstack(
            rx.text(
                "This run costs ",
                rx.text.strong(NewTaskState.total_cost, data_testid="total-cost"),
                " credits; you have ",
                rx.text.strong(NewTaskState.credits, data_testid="credits"),
                ".",
            ),
            rx.cond(
                NewTaskState.short_of_credits,
                rx.badge("not enough credits", color_scheme="red"),
            ),
            align="center",
        ),
        rx.heading("3. Files", size="4", as_="h2"),
        _file_zone(
            "primary",
            "Your data (CSV or Excel)",
            f"Drop a {' or '.join(', '.join(DATA_EXTENSIONS).rsplit(', ', 1))} file here, "
            "or choose one.",
        ),
        rx.cond(
            NewTaskState.takes_baseline,
            _file_zone(
                "baseline",
                "Baseline (optional)",
                "An earlier sample of the same table, for drift-detector.",
            ),
        ),
        rx.text(
            "Files up to ",
            NewTaskState.max_upload_mb,
            " MB. No data at hand? Try a sample: ",
            *[
                rx.fragment(
                    rx.link(name, href=f"/samples/{name}", download=name, is_external=True),
                    f" ({what}){'; ' if i < len(SAMPLES) - 1 else '.'}",
                )
                for i, (name, what) in enumerate(SAMPLES)
            ],
            size="2",
            color_scheme="gray",
        ),
        rx.heading("4. Parameters", size="4", as_="h2"),
        rx.cond(
            NewTaskState.visible_fields.length() == 0,
            rx.text("The chosen agents take no parameters.", color_scheme="gray"),
            rx.vstack(rx.foreach(NewTaskState.visible_fields, _param_row), spacing="2"),
        ),
        rx.cond(
            NewTaskState.error != "",
            rx.callout(
                NewTaskState.error,
                icon="triangle_alert",
                color_scheme="red",
                data_testid="form-error",
            ),
        ),
        _progress(),
        rx.button(
            "Start the task",
            size="3",
            on_click=NewTaskState.start(),
            loading=NewTaskState.busy,
            disabled=NewTaskState.busy
            | (NewTaskState.selected_count == 0)
            | NewTaskState.short_of_credits,
            data_testid="start-task",
        ),
        width="100%",
        spacing="3",
    )


def new_task_page() -> rx.Component:
    return layout(
        rx.cond(NewTaskState.loaded, _form(), loading("Loading the tools…")),
        title="New task",
    )
