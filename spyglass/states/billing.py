"""The bill of the task a page shows (`/tasks/<id>`, `/task/<id>/results`): what its owner
was charged, what each finished agent kept and what was refunded, live until it ends.

Read off the task and its timeline by `spyglass.tasks.credits.bill`, the one billing
module; this state only follows the task and shows the figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import reflex as rx

from spyglass.errors import DomainError
from spyglass.states.auth import current_user
from spyglass.states.live import LiveFeed, supersede_watch
from spyglass.tasks import credits
from spyglass.tasks.bus import Topic
from spyglass.tasks.engine import get_engine
from spyglass.tasks.view import TaskView
from spyglass.tools.catalogue import TOOLS

#: Timeline lines that change a bill: a finished unit of work, and a task's end.
_BILLING_EVENTS = frozenset({credits.WORK_DONE, "status", "error", "success"})


@dataclass
class BillLine:
    item: str = ""
    credits: int = 0
    #: kept, refunded, running (charged, not finished yet) or not charged.
    outcome: str = ""


def _credits(n: int) -> str:
    return f"{n:,} credit{'s' if n != 1 else ''}"


def bill_words(task: TaskView, bill: credits.Bill) -> str:
    """The bill in one sentence."""
    if bill.charged == 0:
        if task.cost and task.error_code == credits.REFUSED:
            return "Nothing was charged: the credits did not cover this run."
        if task.cost and task.owner_id is not None and not task.is_terminal:
            return f"This run will cost {_credits(task.cost)} when it starts."
        return "Nothing was charged for this task."
    if not bill.settled:
        return (
            f"Charged {_credits(bill.charged)} when it started; {_credits(bill.kept)} kept for "
            "the work finished so far. What does not finish is refunded if the task fails or "
            "is cancelled."
        )
    if bill.refunded:
        unfinished = f" ({', '.join(bill.unfinished)})" if bill.unfinished else ""
        return (
            f"Charged {_credits(bill.charged)}; {_credits(bill.refunded)} refunded for the work "
            f"that did not finish{unfinished}; {_credits(bill.kept)} kept."
        )
    return f"Charged {_credits(bill.charged)}; all kept."


def bill_lines(task: TaskView, bill: credits.Bill) -> list[BillLine]:
    """One line per agent of a tool (what it cost and what became of it), else per unit."""
    tool = TOOLS.get(task.tool_id or "")
    costs = tool.breakdown(task.agents) if tool is not None else {}
    if not costs:
        return [BillLine(name, n, "kept") for name, n in bill.finished]
    finished = dict(bill.finished)
    lines = []
    for agent, cost in costs.items():
        if bill.charged == 0:
            outcome = "not charged"
        elif agent in finished:
            outcome = "kept"
        elif bill.settled:
            outcome = "refunded" if bill.refunded else "kept"
        else:
            outcome = "running"
        lines.append(BillLine(agent, finished.get(agent, cost), outcome))
    return lines


class BillState(rx.State):
    shown: bool = False
    charged: int = 0
    kept: int = 0
    refunded: int = 0
    settled: bool = False
    words: str = ""
    lines: list[BillLine] = []
    _watch_gen: int = 0

    def _task_id(self) -> str:
        parts = [p for p in (self.router.url.path or "").split("/") if p]
        return parts[1] if len(parts) >= 2 else ""

    async def _show(self, task_id: str, generation: int) -> bool:
        """Read the bill and show it; False once the task has ended (nothing more changes)."""
        engine = get_engine()
        task = await engine.get(task_id)
        if task is None:
            async with self:
                self.shown = False
            return False
        events = await engine.events(task_id)
        bill = credits.bill(task, ((e.event_type, e.data) for e in events))
        async with self:
            if self._watch_gen != generation:
                return False
            self.shown = True
            self.charged, self.kept, self.refunded = bill.charged, bill.kept, bill.refunded
            self.settled = bill.settled
            self.words = bill_words(task, bill)
            self.lines = bill_lines(task, bill)
        return not task.is_terminal

    @rx.event(background=True)
    async def follow(self) -> None:
        async with self:
            generation, token = supersede_watch(self)
            task_id = self._task_id()
            user = await current_user(self)
            self.shown = False
        engine = get_engine()
        try:
            await engine.get_visible(task_id, user)
        except DomainError:
            return
        with engine.subscribe(Topic(task_id=task_id)) as sub:
            if not await self._show(task_id, generation):
                return
            feed = LiveFeed(sub, token)
            while (batch := await feed.next()) is not None:
                changed = any(
                    m.payload["type"] == "deleted"
                    or (m.payload.get("event") or {}).get("event_type") in _BILLING_EVENTS
                    for m in batch
                )
                if changed and not await self._show(task_id, generation):
                    return
