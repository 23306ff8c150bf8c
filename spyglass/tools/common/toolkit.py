"""What a data tool is made of, and the loop that runs its agents.

A tool is one package under `spyglass/tools/<tool>/` that declares a `Tool`: its
parameters (a Pydantic model, `parameters.py`), its agents (`agents.py`, each one
`Agent` whose `run` has the one signature `run(ctx: AgentContext) -> AgentResult`), its
report sections (`report.py`, a `ReportSections`) and its result cards (`cards.py`: what
the results page shows, as typed records of `spyglass.tools.common.cards`). The
catalogue (`spyglass/tools/catalogue.py`) lists the tool packages; nothing else names a
tool or an agent.

`run_agents` runs the chosen agents in the tool's order on one `AgentContext`: the frames
read from the uploaded files, the validated parameters, the results of the agents before,
what they leave for the agents after (`state`) and the files they write (`outputs`). The
task's child process runs it (`spyglass.tools.run`), and so do the unit tests.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import pandas as pd
from pydantic import BaseModel, ConfigDict

from spyglass.tools.common.csvfile import csv_bytes
from spyglass.tools.common.frames import DataFileError

if TYPE_CHECKING:
    from spyglass.tools.common.cards import ResultCards

#: What an agent hands back: a JSON-ready mapping (numpy scalars, dates and NaN are made
#: plain when the report is written), kept in the report under `agentResults[<agent>]`.
AgentResult = dict[str, Any]
Frames = dict[str, pd.DataFrame]


class Params(BaseModel):
    """Base of every parameters model: unknown keys are refused, agent ids are aliases."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


P = TypeVar("P", bound=BaseModel)


@dataclass(frozen=True)
class Output:
    """A file an agent wrote: saved as an output of the task, listed in its downloads."""

    filename: str
    data: bytes
    content_type: str
    key: str
    kind: str = "data"


@dataclass
class AgentContext(Generic[P]):
    """Everything an agent reads and writes, shared by the agents of one run, in order."""

    #: `primary` (and `baseline` …) as read from the uploads; agents may add their own
    #: (clean-my-data's `working`, `quarantine`, `merged`).
    frames: Frames
    params: P
    #: The results of the agents that ran before, by agent id.
    results: dict[str, AgentResult] = field(default_factory=dict)
    #: What agents leave for the agents after them (keys, golden records …).
    state: dict[str, Any] = field(default_factory=dict)
    outputs: list[Output] = field(default_factory=list)
    #: The agents of this run, in order.
    agents: list[str] = field(default_factory=list)
    task_id: str = ""

    @property
    def primary(self) -> pd.DataFrame:
        return self.frames["primary"]

    def write_csv(self, filename: str, frame: pd.DataFrame, key: str) -> None:
        """`frame.to_csv(index=False)`, byte for byte (`csvfile`), as an output of the task."""
        data = csv_bytes(frame, lambda share: report_progress(share, f"writing {filename}"))
        self.outputs.append(Output(filename, data, "text/csv", key))


AgentFn = Callable[[AgentContext[Any]], AgentResult]

#: A long step reports how far it is (a share 0–1, or None when it cannot tell) and what it
#: is doing, at most this often (seconds): often enough that a task's progress moves every
#: second or so, rarely enough to cost nothing (`report_progress`).
PROGRESS_EVERY = 0.5
Progress = Callable[[float | None, str], None]
_reporter: Progress | None = None


def report_progress(share: float | None, what: str) -> None:
    """From inside a long step (a pass over columns, rows or blocks): how far it is. Goes to
    the reporter of `progress_to` (the task's child sends it to the task), throttled to one
    report per PROGRESS_EVERY; nowhere when there is none (unit tests)."""
    if _reporter is not None:
        _reporter(share, what)


@contextlib.contextmanager
def progress_to(report: Progress | None) -> Iterator[None]:
    """Send `report_progress` calls to `report` (at most one per PROGRESS_EVERY) while inside."""
    global _reporter
    last = -math.inf

    def throttled(share: float | None, what: str) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= PROGRESS_EVERY:
            last = now
            assert report is not None
            report(share, what)

    before, _reporter = _reporter, (throttled if report is not None else None)
    try:
        yield
    finally:
        _reporter = before


@dataclass(frozen=True)
class Agent:
    id: str
    description: str
    #: Credits, charged when the task is processed and refunded if the agent never finishes.
    cost: int
    run: AgentFn
    #: Input files this agent needs besides `primary` (e.g. `baseline`).
    requires: tuple[str, ...] = ()


def _nothing(ctx: AgentContext[Any]) -> Any:
    return []


def _no_summary(ctx: AgentContext[Any]) -> dict[str, Any]:
    return {}


def _no_routing(ctx: AgentContext[Any], issues: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return []


@dataclass(frozen=True)
class ReportSections:
    """What a tool adds to the report every tool has (`spyglass.tools.common.report`)."""

    #: Keys added to `executiveSummary`.
    summary: Callable[[AgentContext[Any]], dict[str, Any]] = _no_summary
    #: `issueSummary.issues`: each `{type, severity, count, column?, message}`, the message
    #: in plain words with the number behind it.
    issues: Callable[[AgentContext[Any]], list[dict[str, Any]]] = _nothing
    #: `analysisSummary.columns`, when the tool knows more of them than the common summary.
    columns: Callable[[AgentContext[Any]], list[dict[str, Any]] | None] | None = None
    #: `rowLevelIssues` besides the duplicate rows every report lists.
    row_issues: Callable[[AgentContext[Any]], list[dict[str, Any]]] = _nothing
    #: `routingDecisions`: where the data should go next.
    routing: Callable[[AgentContext[Any], list[dict[str, Any]]], list[dict[str, Any]]] = _no_routing
    #: Further top-level keys of the report.
    extra: Callable[[AgentContext[Any]], dict[str, Any]] = _no_summary


@dataclass(frozen=True)
class Tool:
    id: str
    name: str
    description: str
    agents: tuple[Agent, ...]
    parameters: type[Params]
    report: ReportSections
    #: The results page of a report (its JSON, as stored) as typed cards.
    cards: Callable[[Mapping[str, Any]], ResultCards]
    #: File keys a task of this tool accepts; `primary` is always required.
    files: tuple[str, ...] = ("primary",)
    #: Its agents read a CSV too large to load in blocks (`spyglass.tools.profile.streaming`);
    #: other tools refuse such a file before reading it.
    streams: bool = False

    def agent(self, agent_id: str) -> Agent | None:
        return next((a for a in self.agents if a.id == agent_id), None)

    def breakdown(self, agents: Iterable[str]) -> dict[str, int]:
        """What each of these agents costs (the charge of a run, and its 402's breakdown)."""
        out = {}
        for agent_id in agents:
            agent = self.agent(agent_id)
            out[agent_id] = agent.cost if agent is not None else 0
        return out

    def describe(self) -> dict[str, Any]:
        params = self.parameters.model_json_schema(by_alias=True)
        return {
            "tool_id": self.id,
            "name": self.name,
            "description": self.description,
            "files": {
                "required": ["primary"],
                "optional": [f for f in self.files if f != "primary"],
            },
            "agents": [
                {
                    "agent_id": a.id,
                    "description": a.description,
                    "cost": a.cost,
                    "available": True,
                    "requires_files": ["primary", *a.requires],
                    "parameters": _resolve(params, params.get("properties", {}).get(a.id)),
                }
                for a in self.agents
            ],
            "parameters_schema": params,
            "total_cost": sum(a.cost for a in self.agents),
        }


def _resolve(schema: dict[str, Any], node: dict[str, Any] | None) -> dict[str, Any] | None:
    """Inline a `$ref` into the tool's `$defs`, so each agent's parameters stand alone."""
    if node is None or "$ref" not in node:
        return node
    return schema.get("$defs", {}).get(node["$ref"].rsplit("/", 1)[-1])


def check_inputs(tool: Tool, agents: Iterable[str], frames: Frames) -> None:
    """Every chosen agent has the files it needs (else the run fails before any agent)."""
    for agent_id in agents:
        agent = tool.agent(agent_id)
        lacking = [f for f in (agent.requires if agent else ()) if f not in frames]
        if lacking:
            raise DataFileError(
                f"{agent_id} needs a {' and a '.join(lacking)} file: upload one, "
                "or run the task without this agent"
            )


def run_agents(
    tool: Tool,
    agents: Iterable[str],
    frames: Frames,
    parameters: Mapping[str, Any] | Params | None = None,
    *,
    task_id: str = "",
    on_start: Callable[[str], None] | None = None,
    on_done: Callable[[str, AgentResult, list[Output]], None] | None = None,
    on_progress: Callable[[str, float | None, str], None] | None = None,
) -> AgentContext[Any]:
    """Run `agents` of `tool`, in the order given, on one context; returns the context.

    `on_start(agent)` is called before each agent, `on_done(agent, result, outputs)` after
    it with the files it wrote (handed over: the context keeps them only without `on_done`),
    `on_progress(agent, share, what)` while it runs (`report_progress`).
    """
    chosen = list(agents)
    params = (
        parameters
        if isinstance(parameters, BaseModel)
        else tool.parameters.model_validate(dict(parameters or {}))
    )
    unknown = [a for a in chosen if tool.agent(a) is None]
    if unknown:
        raise ValueError(f"{tool.id} has no agent {', '.join(unknown)}")
    check_inputs(tool, chosen, frames)
    ctx: AgentContext[Any] = AgentContext(frames, params, agents=chosen, task_id=task_id)
    for agent_id in chosen:
        agent = tool.agent(agent_id)
        assert agent is not None
        if on_start is not None:
            on_start(agent_id)
        before = len(ctx.outputs)
        report = functools.partial(on_progress, agent_id) if on_progress is not None else None
        with progress_to(report):
            result = agent.run(ctx)
        ctx.results[agent_id] = result
        if on_done is not None:
            written = ctx.outputs[before:]
            del ctx.outputs[before:]
            on_done(agent_id, result, written)
    return ctx
