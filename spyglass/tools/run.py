"""Running a data tool on a task's uploaded files: agents in order, a report at the end.

The tool job is engine-internal (not in the public job registry): it is only ever
started by `POST /api/tasks/{id}/process` on the caller's own files, after the
credits for all its agents were charged. If it stops before any agent finished,
those credits are refunded.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from functools import cache
from typing import Any

import pandas as pd
from pydantic import BaseModel

from spyglass.auth.service import get_auth
from spyglass.storage import get_storage
from spyglass.tasks.context import TaskContext
from spyglass.tasks.decorator import MonitoredJob, build_spec
from spyglass.tasks.registry import JobOptions, JobSpec
from spyglass.tools.agents import clean, master, profiler, quality
from spyglass.tools.agents.memo import duplicate_mask
from spyglass.tools.catalogue import TOOLS, TOOLS_STATE
from spyglass.tools.frames import DataFileError, load_table

log = logging.getLogger(__name__)

AgentFn = Callable[[dict[str, pd.DataFrame], Any], dict[str, Any]]

#: The agents implemented so far; the catalogue marks the others unavailable.
AGENTS: dict[str, AgentFn] = {
    "unified-profiler": lambda frames, p: profiler.run(frames["primary"], p.unified_profiler),
    "score-risk": lambda frames, p: quality.score_risk(frames["primary"], p.score_risk),
    "drift-detector": lambda frames, p: quality.drift(
        frames["primary"], frames["baseline"], p.drift_detector
    ),
    "readiness-rater": lambda frames, p: quality.readiness(frames["primary"]),
    "governance-checker": lambda frames, p: quality.governance(frames["primary"]),
    "test-coverage": lambda frames, p: quality.coverage_of_tests(frames["primary"]),
    "null-handler": clean.null_handler,
    "outlier-remover": clean.outlier_remover,
    "type-fixer": clean.type_fixer,
    "duplicate-resolver": clean.duplicate_resolver,
    "field-standardization": clean.field_standardization,
    "quarantine-agent": clean.quarantine,
    "cleanse-previewer": clean.preview,
    "cleanse-writeback": clean.writeback,
    "key-identifier": master.key_identifier,
    "contract-enforcer": master.contract_enforcer,
    "semantic-mapper": master.semantic_mapper,
    "lineage-tracer": master.lineage_tracer,
    "golden-record-builder": master.golden_record_builder,
    "survivorship-resolver": master.survivorship_resolver,
    "master-writeback": master.master_writeback,
    "stewardship-flagger": master.stewardship_flagger,
}


class ToolInput(BaseModel):
    storage_key: str
    filename: str


class ToolRun(BaseModel):
    tool_id: str
    agents: list[str]
    owner_id: int
    cost: int
    inputs: dict[str, ToolInput]
    parameters: dict[str, Any] = {}


def agent_available(agent_id: str) -> bool:
    return agent_id in AGENTS


async def run_tool(task: TaskContext, run: ToolRun) -> dict[str, Any]:
    tool = TOOLS[run.tool_id]
    params = tool.parameters.model_validate(run.parameters)
    finished = 0
    try:
        await task.update(progress=1, message="Reading the files")
        frames: dict[str, pd.DataFrame] = {}
        for key, source in run.inputs.items():
            if key == "parameters":
                continue
            data = await asyncio.to_thread(get_storage().read, source.storage_key)
            frames[key] = await task.run_sync(load_table, data, source.filename)
        for agent in run.agents:
            lacking = [f for f in tool.agent(agent).requires if f not in frames]  # type: ignore[union-attr]
            if lacking:
                raise DataFileError(
                    f"{agent} needs a {' and a '.join(lacking)} file: upload one, "
                    "or run the task without this agent"
                )
        results: dict[str, Any] = {}
        checklist = {agent: "pending" for agent in run.agents}
        for index, agent in enumerate(run.agents):
            checklist[agent] = "running"
            await task.log(f"{agent} started", level="agent_started", data={"agent": agent})
            await task.update(message=f"Running {agent}", data={"agents": dict(checklist)})
            result = await task.run_sync(AGENTS[agent], frames, params)
            for filename, data, content_type, key, kind in result.pop(clean.OUTPUTS, []):
                await task.save_output(filename, data, content_type, key=key, kind=kind)
            results[agent] = result
            finished += 1
            checklist[agent] = "completed"
            await task.log(
                f"{agent} completed",
                level="agent_completed",
                data={"agent": agent, "summary": _summary(results[agent])},
            )
            await task.update(
                progress=5 + 90 * (index + 1) / len(run.agents),
                message=f"{agent} completed",
                data={"agents": dict(checklist)},
            )
        report = build_report(task.task_id, run, frames["primary"], results)
        await task.save_output(
            "report.json",
            json.dumps(report).encode(),
            "application/json",
            key="report",
            kind="report",
        )
        return {"report": "report.json", "executiveSummary": report["executiveSummary"]}
    except BaseException:
        if finished == 0 and run.cost:
            await asyncio.shield(get_auth().add_credits(run.owner_id, run.cost))
            log.info("refunded %s credits for task %s (no agent finished)", run.cost, task.task_id)
        raise


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if isinstance(v, int | float | str)}


def build_report(
    task_id: str, run: ToolRun, primary: pd.DataFrame, results: dict[str, Any]
) -> dict[str, Any]:
    """S000's report: summaries first, then every agent's full result."""
    rows, columns = int(primary.shape[0]), int(primary.shape[1])
    profile = results.get("unified-profiler", {})
    issues: list[dict[str, Any]] = []
    for col in profile.get("columns", []):
        if col["nulls"]:
            issues.append(
                {
                    "type": "missing_values",
                    "column": col["name"],
                    "count": col["nulls"],
                    "severity": "high" if col["null_pct"] > 20 else "low",
                }
            )
    if profile.get("duplicate_rows"):
        issues.append(
            {"type": "duplicate_rows", "count": profile["duplicate_rows"], "severity": "medium"}
        )
    for column in results.get("governance-checker", {}).get("pii_columns", []):
        issues.append({"type": "pii", "column": column, "severity": "high"})
    for column in results.get("score-risk", {}).get("high_risk_columns", []):
        issues.append({"type": "high_risk_column", "column": column, "severity": "medium"})
    for column in results.get("drift-detector", {}).get("drifted_columns", []):
        issues.append({"type": "drift", "column": column, "severity": "medium"})
    cells = rows * columns
    nulls = int(profile.get("total_nulls", 0))
    return {
        "analysis_id": task_id,
        "tool": run.tool_id,
        "executiveSummary": {
            "rows": rows,
            "columns": columns,
            "agents": run.agents,
            "issues": len(issues),
            "missing_cells": nulls,
            "missing_pct": round(100.0 * nulls / cells, 4) if cells else 0.0,
            "headline": f"{rows} rows × {columns} columns; {nulls} empty cells, "
            f"{profile.get('duplicate_rows', 0)} duplicate rows",
            "risk_level": results.get("score-risk", {}).get("risk_level"),
            "readiness": results.get("readiness-rater", {}).get("grade"),
            "pii_columns": results.get("governance-checker", {}).get("pii_columns"),
            "drifted_columns": results.get("drift-detector", {}).get("drifted_columns"),
            **_cleaning_summary(results),
        },
        "analysisSummary": {
            "columns": [
                {
                    k: c.get(k)
                    for k in ("name", "type", "null_pct", "distinct", "min", "max", "mean")
                }
                for c in profile.get("columns", [])
            ]
        },
        "rowLevelIssues": _duplicate_rows(primary),
        "issueSummary": {
            "total": len(issues),
            "by_severity": {
                s: sum(1 for i in issues if i["severity"] == s) for s in ("high", "medium", "low")
            },
            "issues": issues,
        },
        "routingDecisions": [],
        "agentResults": results,
    }


def _cleaning_summary(results: dict[str, Any]) -> dict[str, Any]:
    """What clean-my-data changed, when it ran."""
    if not any(
        key in results
        for key in (
            "null-handler",
            "cleanse-writeback",
            "outlier-remover",
            "duplicate-resolver",
            "quarantine-agent",
        )
    ):
        return {}
    nulls = results.get("null-handler", {})
    return {
        "nulls_filled": sum(nulls.get("filled", {}).values()),
        "rows_dropped_for_nulls": nulls.get("rows_dropped", 0),
        "outliers_removed": results.get("outlier-remover", {}).get("rows_removed", 0),
        "duplicates_removed": results.get("duplicate-resolver", {}).get("duplicates_removed", 0),
        "values_standardized": results.get("field-standardization", {}).get("total", 0),
        "rows_quarantined": results.get("quarantine-agent", {}).get("rows_quarantined", 0),
        "rows_written": results.get("cleanse-writeback", {}).get("rows_written"),
    }


def _duplicate_rows(frame: pd.DataFrame, limit: int = 100) -> list[dict[str, Any]]:
    dup = duplicate_mask(frame)
    return [{"row": int(i) + 1, "issue": "duplicate_row"} for i in frame.index[dup][:limit]]


async def _tool_job(task: TaskContext, run: ToolRun) -> dict[str, Any]:
    return await run_tool(task, run)


@cache
def tool_spec(tool_id: str) -> JobSpec:
    """The engine-internal job of a tool (not exposed on any start endpoint)."""
    job = MonitoredJob(_tool_job, JobOptions(direct=False))
    return build_spec(TOOLS_STATE, (), tool_id, job, is_static=True)
