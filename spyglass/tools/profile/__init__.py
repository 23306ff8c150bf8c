"""profile-my-data: types, statistics, alerts, risk, drift, readiness, governance, test
coverage of a table. One package: `parameters`, `agents` (computing in `profiler`,
`alerts`, `quality`), `report`, `cards`."""

from spyglass.tools.common.toolkit import Tool
from spyglass.tools.profile import cards, report
from spyglass.tools.profile.agents import AGENTS
from spyglass.tools.profile.parameters import ProfileParameters

TOOL = Tool(
    id="profile-my-data",
    name="Profile my data",
    description="Profile a table: types, statistics, risk, drift, readiness, governance.",
    agents=AGENTS,
    parameters=ProfileParameters,
    report=report.SECTIONS,
    cards=cards.cards,
    files=("primary", "baseline"),
    streams=True,
)
