"""clean-my-data: gaps, outliers, types, duplicates and formats, written as a clean file;
nothing deleted, every row accounted for. One package: `parameters`, `agents`, `report`,
`cards`."""

from spyglass.tools.clean import cards, report
from spyglass.tools.clean.agents import AGENTS
from spyglass.tools.clean.parameters import CleanParameters
from spyglass.tools.common.toolkit import Tool

TOOL = Tool(
    id="clean-my-data",
    name="Clean my data",
    description="Fix nulls, outliers, types, duplicates and formats; write a clean file.",
    agents=AGENTS,
    parameters=CleanParameters,
    report=report.SECTIONS,
    cards=cards.cards,
)
