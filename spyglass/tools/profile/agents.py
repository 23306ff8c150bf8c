"""profile-my-data's six agents, each `run(ctx) -> result` on the uploaded table (and the
baseline, for drift-detector). The work is in `profiler` (unified-profiler and its
`alerts`) and `quality` (risk, drift, readiness, governance, test coverage); all read the
per-column statistics of `spyglass.tools.common.stats`, computed once per file."""

from __future__ import annotations

from spyglass.tools.common.toolkit import Agent, AgentContext, AgentResult
from spyglass.tools.profile import profiler, quality
from spyglass.tools.profile.parameters import ProfileParameters

Context = AgentContext[ProfileParameters]


def unified_profiler(ctx: Context) -> AgentResult:
    return profiler.run(ctx.primary, ctx.params.unified_profiler)


def score_risk(ctx: Context) -> AgentResult:
    return quality.score_risk(ctx.primary, ctx.params.score_risk)


def drift_detector(ctx: Context) -> AgentResult:
    return quality.drift(ctx.primary, ctx.frames["baseline"], ctx.params.drift_detector)


def readiness_rater(ctx: Context) -> AgentResult:
    return quality.readiness(ctx.primary)


def governance_checker(ctx: Context) -> AgentResult:
    return quality.governance(ctx.primary)


def coverage_of_tests(ctx: Context) -> AgentResult:
    return quality.coverage_of_tests(ctx.primary)


AGENTS = (
    Agent("unified-profiler", "Data profiling and statistics", 10, unified_profiler),
    Agent("score-risk", "Risk scoring", 10, score_risk),
    Agent(
        "drift-detector",
        "Drift detection against a baseline file",
        20,
        drift_detector,
        requires=("baseline",),
    ),
    Agent("readiness-rater", "Data readiness assessment", 5, readiness_rater),
    Agent("governance-checker", "Governance compliance (PII)", 15, governance_checker),
    Agent("test-coverage", "Test coverage analysis", 5, coverage_of_tests),
)
