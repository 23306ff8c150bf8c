"""The data tools (S000): the registry, built from the tool packages.

Each tool is one package (`spyglass/tools/<tool>/`) declaring a `Tool`: its parameters,
its agents and what each costs, its report sections and its result cards. This list is
the one place that names them; routes, pages, the file flow and the run read `TOOLS`.
Costs are in credits, charged up front for all selected agents when a task is processed.
"""

from __future__ import annotations

from spyglass.tools import clean, master, profile
from spyglass.tools.common.toolkit import Agent, Tool

__all__ = ["TOOLS", "TOOLS_STATE", "Agent", "Tool"]

#: The state name tool tasks are recorded under (their job is the tool id).
TOOLS_STATE = "data_tools"

TOOLS: dict[str, Tool] = {tool.id: tool for tool in (profile.TOOL, clean.TOOL, master.TOOL)}
