"""State of `/` (New task): tool, agents, files, parameters; then create → upload → process.

The files never pass through Reflex: the server hands the browser presigned upload
URLs and the browser PUTs each file straight to storage (`assets/spyglass.js`,
with a progress bar), then tells the server, which checks the files and credits
and starts the tool. Then the page goes to `/tasks`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import reflex as rx

from spyglass.auth.service import get_auth
from spyglass.errors import DomainError
from spyglass.filetypes import DATA_TYPES, DATA_WORDS, extension
from spyglass.states.auth import READ_ONLY_ROLE, current_user
from spyglass.states.tasks_page import TasksPageState
from spyglass.storage import get_storage
from spyglass.tasks.access import can_change_tasks
from spyglass.tasks.engine import get_engine
from spyglass.tools import flow
from spyglass.tools.catalogue import TOOLS
from spyglass.tools.form import FormField, form_fields, parameters_from_form

FILE_KEYS = ("primary", "baseline")
#: "Task started" as a toast shown when the browser is next idle (at most 2 s later).
STARTED_TOAST = (
    "(window.requestIdleCallback || ((f) => setTimeout(f, 200)))("
    "() => refs['__toast']?.success('Task started: follow it here.'), {timeout: 2000})"
)


@dataclass
class ToolCard:
    tool_id: str = ""
    name: str = ""
    description: str = ""
    total_cost: int = 0


@dataclass
class AgentChoice:
    agent_id: str = ""
    description: str = ""
    cost: int = 0
    selected: bool = True
    needs_baseline: bool = False


@dataclass
class ParamField:
    key: str = ""
    agent: str = ""
    label: str = ""
    kind: str = "text"
    options: list[str] | None = None
    hint: str = ""


def _param_field(spec: FormField) -> ParamField:
    return ParamField(spec.key, spec.agent, spec.label, spec.kind, list(spec.options), spec.hint)


class NewTaskState(rx.State):
    tools: list[ToolCard] = []
    tool_id: str = ""
    agents: list[AgentChoice] = []
    fields: list[ParamField] = []
    params: dict[str, str] = {}
    credits: int = 0
    file_names: dict[str, str] = {"primary": "", "baseline": ""}
    max_upload_mb: int = 0
    #: idle → uploading (the browser sends the files) → starting (checks, credits) → idle
    phase: str = "idle"
    error: str = ""
    loaded: bool = False
    _task_id: str = ""

    # -- derived ---------------------------------------------------------------
    @rx.var
    def total_cost(self) -> int:
        return sum(a.cost for a in self.agents if a.selected)

    @rx.var
    def selected_count(self) -> int:
        return sum(1 for a in self.agents if a.selected)

    @rx.var
    def needs_baseline(self) -> bool:
        return any(a.selected and a.needs_baseline for a in self.agents)

    @rx.var
    def takes_baseline(self) -> bool:
        return any(a.needs_baseline for a in self.agents)

    @rx.var
    def short_of_credits(self) -> bool:
        return self.total_cost > self.credits

    @rx.var
    def visible_fields(self) -> list[ParamField]:
        chosen = {a.agent_id for a in self.agents if a.selected}
        return [f for f in self.fields if f.agent in chosen]

    @rx.var
    def busy(self) -> bool:
        return self.phase != "idle"

    @rx.var
    def phase_label(self) -> str:
        return {
            "uploading": "Uploading your files…",
            "starting": "Checking the files and starting the task…",
        }.get(self.phase, "")

    # -- loading and choosing --------------------------------------------------
    @rx.event
    async def load(self) -> None:
        user = await current_user(self)
        if user is None:
            return  # AuthState.require_user sends the visitor to /login
        self.tools = [
            ToolCard(t.id, t.name, t.description, sum(a.cost for a in t.agents))
            for t in TOOLS.values()
        ]
        params = self.router.url.query_parameters
        wanted = str(params.get("tool") or "")
        self._choose(wanted if wanted in TOOLS else next(iter(TOOLS)))  # a fresh form each visit
        # `?agents=a,b` (the task page's "choose another file"): the same agents as that run.
        chosen = {a for a in str(params.get("agents") or "").split(",") if a}
        if chosen & {a.agent_id for a in self.agents}:
            self.agents = [
                AgentChoice(
                    a.agent_id, a.description, a.cost, a.agent_id in chosen, a.needs_baseline
                )
                for a in self.agents
            ]
        self.file_names = {"primary": "", "baseline": ""}
        info = await get_auth().get_user(user.id)
        self.credits = info.credits if info else 0
        self.max_upload_mb = get_storage().max_upload_bytes // (1024 * 1024)
        self.phase, self.error, self.loaded = "idle", "", True

    def _choose(self, tool_id: str) -> None:
        tool = TOOLS[tool_id]
        self.tool_id = tool_id
        # Agents that compare with a baseline start unticked (the baseline is optional);
        # choosing a baseline file ticks them.
        self.agents = [
            AgentChoice(
                a.id, a.description, a.cost, "baseline" not in a.requires, "baseline" in a.requires
            )
            for a in tool.agents
        ]
        specs = form_fields(tool)
        self.fields = [_param_field(f) for f in specs]
        self.params = {f.key: f.default for f in specs}
        self.error = ""

    @rx.event
    def choose_tool(self, tool_id: str) -> None:
        if tool_id in TOOLS and not self.busy:
            self._choose(tool_id)

    @rx.event
    def toggle_agent(self, agent_id: str, selected: bool) -> None:
        self.agents = [
            AgentChoice(a.agent_id, a.description, a.cost, selected, a.needs_baseline)
            if a.agent_id == agent_id
            else a
            for a in self.agents
        ]

    @rx.event
    def set_param(self, key: str, value: str | bool) -> None:
        if key in self.params:
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            self.params = {**self.params, key: text}

    @rx.event
    def file_chosen(self, key: str, value: str) -> None:
        """The file input changed (`value` is the browser's fake path of the chosen file)."""
        if key in FILE_KEYS:
            name = PurePosixPath(str(value or "").replace("\\", "/")).name
            self.file_names = {**self.file_names, key: name}
            self.error = ""
            if key == "baseline" and name:
                self.agents = [
                    AgentChoice(a.agent_id, a.description, a.cost, True, True)
                    if a.needs_baseline
                    else a
                    for a in self.agents
                ]

    # -- create → upload → process ---------------------------------------------
    @staticmethod
    def start() -> Any:
        """Start (the button's click): the browser tells what files are chosen (names,
        sizes) straight to `submit`, without a round trip to the server first."""
        keys = json.dumps(list(FILE_KEYS))
        return rx.call_script(f"spyglass.describeFiles({keys})", callback=NewTaskState.submit)

    def _wanted_files(self, described: dict[str, Any]) -> dict[str, flow.WantedFile]:
        files: dict[str, flow.WantedFile] = {}
        limit = get_storage().max_upload_bytes
        keys = ["primary", "baseline"] if self.needs_baseline else ["primary"]
        for key in keys:
            info = described.get(key) if isinstance(described, dict) else None
            if not isinstance(info, dict) or not info.get("filename"):
                if key == "primary":
                    raise DomainError("MISSING_PRIMARY_FILE", "Choose a CSV or Excel file first.")
                raise DomainError(
                    "MISSING_BASELINE",
                    "drift-detector compares your file with a baseline: add a baseline file, "
                    "or untick drift-detector.",
                )
            name = str(info["filename"])
            kind = DATA_TYPES.get(extension(name))  # parameters.json is made from the form
            if kind is None:
                raise DomainError("UNSUPPORTED_FILE_TYPE", f"'{name}' is not a {DATA_WORDS} file.")
            size = int(info.get("size") or 0)
            if size == 0:
                raise DomainError("EMPTY_FILE", f"'{name}' is empty.")
            if size > limit:
                raise DomainError(
                    "FILE_TOO_LARGE",
                    f"'{name}' is {size / 1e6:.1f} MB; files are limited to "
                    f"{limit // (1024 * 1024)} MB.",
                )
            files[key] = flow.WantedFile(name, kind.content_types[0])
        return files

    @rx.event
    async def submit(self, described: dict[str, Any]) -> AsyncIterator[Any]:
        if self.busy:
            return
        user = await current_user(self)
        if user is None:
            yield rx.redirect("/login?next=/")
            return
        if not can_change_tasks(user):
            self.error = READ_ONLY_ROLE
            return
        tool = TOOLS.get(self.tool_id)
        agents = [a.agent_id for a in self.agents if a.selected]
        try:
            if tool is None:
                raise DomainError("INVALID_TOOL", "Choose a tool.")
            if not agents:
                raise DomainError("INVALID_AGENTS", "Choose at least one agent.")
            files = self._wanted_files(described)
            parameters = parameters_from_form(tool, agents, self.params)
            info = await get_auth().get_user(user.id)
            credits = info.credits if info else 0
            if credits != self.credits:  # (an unchanged value would still be sent)
                self.credits = credits
            if self.total_cost > credits:
                raise DomainError(
                    "BILLING_INSUFFICIENT_CREDITS",
                    f"This run costs {self.total_cost} credits and you have {credits}: "
                    "untick some agents, or ask an admin for credits.",
                )
            task = await flow.create_tool_task(tool.id, agents, user.id)
            tickets = await flow.request_uploads(
                task, files, base_url="", parameters=parameters or None
            )
        except DomainError as exc:
            self.error = exc.message
            return
        self._task_id = task.id
        uploads = {k: v for k, v in tickets["uploads"].items() if k in files}
        # The upload first, alone: Reflex sends a handler's state changes before the events it
        # yields, and a change redraws this page (25-50 ms of the browser's main thread under
        # load), which the upload would wait behind. The page shows "uploading" just after.
        # While the browser uploads, the list that the tab will land on starts following the
        # new run (`follow_new`): its row and first progress are there when /tasks is drawn.
        yield [
            rx.call_script(
                f"spyglass.upload({json.dumps(uploads)})", callback=NewTaskState.uploaded
            ),
            TasksPageState.follow_new,
        ]
        self.phase, self.error = "uploading", ""

    @rx.event
    async def uploaded(self, outcome: dict[str, Any]) -> Any:
        """The browser finished uploading (or could not): process the task, or say why not."""
        if self.phase != "uploading" or not self._task_id:
            return
        user = await current_user(self)
        task_id, self._task_id = self._task_id, ""
        try:
            task = await get_engine().get_visible(task_id, user)
            if not isinstance(outcome, dict) or not outcome.get("ok"):
                reason = str((outcome or {}).get("error") or "the browser could not send it")
                await flow.fail_upload(task, reason)
                raise DomainError("UPLOAD_FAILED", f"The upload failed: {reason}")
            self.phase = "starting"
            yield
            await flow.start_processing(task)
        except DomainError as exc:
            self.phase, self.error = "idle", exc.message
            return
        # The list has followed the new run since its upload began (`submit`): the page shows
        # it and its progress as soon as it is drawn (its on_load finds that watch running).
        # The page first; the toast once the browser is idle, after /tasks is drawn (a toast
        # loads sonner and measures itself: ~50 ms of a busy main thread, which drawing the
        # new run's row and progress would otherwise wait for).
        # The redirect before this page's own changes (its form emptied): sent with them, it
        # would wait in the browser behind a redraw of a page that is about to go.
        yield [rx.redirect("/tasks"), rx.call_script(STARTED_TOAST)]
        self.phase = "idle"
        self.file_names = {"primary": "", "baseline": ""}
