"""The bill of a task (charged, kept, refunded), self-contained: it follows the task of the
page it is on (`/tasks/<id>`, `/task/<id>/results`)."""

from __future__ import annotations

import reflex as rx

from spyglass.states.billing import BillLine, BillState

OUTCOME_COLORS = {"kept": "green", "refunded": "blue", "running": "amber"}


def _line(line: BillLine) -> rx.Component:
    return rx.table.row(
        rx.table.cell(line.item),
        rx.table.cell(line.credits),
        rx.table.cell(
            rx.badge(
                line.outcome,
                color_scheme=rx.match(line.outcome, *OUTCOME_COLORS.items(), "gray"),
                variant="soft",
            )
        ),
        data_testid="bill-line",
        data_item=line.item,
        data_outcome=line.outcome,
    )


def bill_panel() -> rx.Component:
    """The bill, shown once read; it starts following the page's task when it mounts."""
    return rx.box(
        rx.cond(
            BillState.shown,
            rx.card(
                rx.vstack(
                    rx.heading("Credits", size="3"),
                    rx.text(BillState.words, size="2", data_testid="bill-words"),
                    rx.cond(
                        rx.Var.create(BillState.lines).length() > 0,
                        rx.table.root(
                            rx.table.header(
                                rx.table.row(
                                    rx.table.column_header_cell("Agent"),
                                    rx.table.column_header_cell("Credits"),
                                    rx.table.column_header_cell("Outcome"),
                                )
                            ),
                            rx.table.body(rx.foreach(BillState.lines, _line)),
                            size="1",
                        ),
                    ),
                    spacing="2",
                ),
                width="100%",
                data_testid="bill",
                data_charged=BillState.charged,
                data_kept=BillState.kept,
                data_refunded=BillState.refunded,
                data_settled=rx.cond(BillState.settled, "yes", "no"),
            ),
        ),
        width="100%",
    )
