"""master-my-data: keys, contracts, meanings, lineage and golden records by survivorship
rules, with the conflicts decided. One package: `parameters`, `agents`, `report`, `cards`."""

from spyglass.tools.common.toolkit import Tool
from spyglass.tools.master import cards, report
from spyglass.tools.master.agents import AGENTS
from spyglass.tools.master.parameters import MasterParameters

TOOL = Tool(
    id="master-my-data",
    name="Master my data",
    description="Find keys, enforce contracts, map semantics and build golden records.",
    agents=AGENTS,
    parameters=MasterParameters,
    report=report.SECTIONS,
    cards=cards.cards,
)
