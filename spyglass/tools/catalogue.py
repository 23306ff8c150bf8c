"""The data tools (S000): their agents, what each costs, and the parameters each accepts.

Costs are in credits and charged up front for all selected agents when a task is
processed. Parameter models follow S000's `ProfileParameters`, `CleanParameters`
and `MasterParameters` (keys are agent ids, as in `parameters.json`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class UnifiedProfilerParams(_Params):
    sample_size: int | None = Field(default=None, ge=1)
    include_correlations: bool = True


class ScoreRiskParams(_Params):
    risk_threshold: float = Field(default=0.5, ge=0, le=1)
    weights: dict[str, float] | None = None


class DriftDetectorParams(_Params):
    baseline_column_mapping: dict[str, str] | None = None


class ProfileParameters(_Params):
    unified_profiler: UnifiedProfilerParams = Field(
        default_factory=UnifiedProfilerParams, alias="unified-profiler"
    )
    score_risk: ScoreRiskParams = Field(default_factory=ScoreRiskParams, alias="score-risk")
    drift_detector: DriftDetectorParams = Field(
        default_factory=DriftDetectorParams, alias="drift-detector"
    )


class NullHandlerParams(_Params):
    #: `keep` (the default) leaves gaps as they are: filling is opt-in, and `drop` sets the
    #: rows aside in quarantine.csv rather than deleting them.
    strategy: Literal["keep", "drop", "fill_mean", "fill_median", "fill_mode", "fill_value"] = (
        "keep"
    )
    fill_value: Any = None
    columns: list[str] | None = None


class OutlierRemoverParams(_Params):
    #: `auto` judges each column on the scale its shape calls for (log scale for positive,
    #: right-skewed values; else as is) with Tukey's fences; `iqr` and `zscore` as asked.
    #: Outliers are always set aside in quarantine.csv with a reason, never deleted.
    method: Literal["auto", "iqr", "zscore"] = "auto"
    #: Fence width: k·IQR for `auto` and `iqr`, standard deviations for `zscore`; 3 when unset
    #: (Tukey's "far out", which flags nothing on clean normal or lognormal data).
    threshold: float | None = Field(default=None, gt=0)
    columns: list[str] | None = None


class TypeFixerParams(_Params):
    column_types: dict[str, Literal["string", "number", "date", "boolean"]] | None = None


class DuplicateResolverParams(_Params):
    key_columns: list[str] | None = None
    keep: Literal["first", "last"] = "first"


class CleanParameters(_Params):
    null_handler: NullHandlerParams = Field(default_factory=NullHandlerParams, alias="null-handler")
    outlier_remover: OutlierRemoverParams = Field(
        default_factory=OutlierRemoverParams, alias="outlier-remover"
    )
    type_fixer: TypeFixerParams = Field(default_factory=TypeFixerParams, alias="type-fixer")
    duplicate_resolver: DuplicateResolverParams = Field(
        default_factory=DuplicateResolverParams, alias="duplicate-resolver"
    )


class KeyIdentifierParams(_Params):
    candidate_columns: list[str] | None = None
    uniqueness_threshold: float = Field(default=0.99, ge=0, le=1)


class SemanticMapperParams(_Params):
    source_columns: list[str] | None = None
    target_schema: dict[str, str] | None = None


class GoldenRecordParams(_Params):
    survivorship_rules: dict[str, Literal["most_recent", "most_frequent", "longest"]] | None = None


class MasterParameters(_Params):
    key_identifier: KeyIdentifierParams = Field(
        default_factory=KeyIdentifierParams, alias="key-identifier"
    )
    semantic_mapper: SemanticMapperParams = Field(
        default_factory=SemanticMapperParams, alias="semantic-mapper"
    )
    golden_record_builder: GoldenRecordParams = Field(
        default_factory=GoldenRecordParams, alias="golden-record-builder"
    )


@dataclass(frozen=True)
class Agent:
    id: str
    description: str
    cost: int
    #: Input files this agent needs besides `primary` (e.g. `baseline`).
    requires: tuple[str, ...] = ()


@dataclass(frozen=True)
class Tool:
    id: str
    name: str
    description: str
    agents: tuple[Agent, ...]
    parameters: type[_Params]
    #: File keys a task of this tool accepts; `primary` is always required.
    files: tuple[str, ...] = ("primary",)

    def agent(self, agent_id: str) -> Agent | None:
        return next((a for a in self.agents if a.id == agent_id), None)

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
                    "available": _available(a.id),
                    "requires_files": ["primary", *a.requires],
                    "parameters": _resolve(params, params.get("properties", {}).get(a.id)),
                }
                for a in self.agents
            ],
            "parameters_schema": params,
            "total_cost": sum(a.cost for a in self.agents),
        }


#: The state name tool tasks are recorded under (their job is the tool id).
TOOLS_STATE = "data_tools"

TOOLS: dict[str, Tool] = {
    tool.id: tool
    for tool in (
        Tool(
            id="profile-my-data",
            name="Profile my data",
            description="Profile a table: types, statistics, risk, drift, readiness, governance.",
            agents=(
                Agent("unified-profiler", "Data profiling and statistics", 10),
                Agent("score-risk", "Risk scoring", 10),
                Agent(
                    "drift-detector", "Drift detection against a baseline file", 20, ("baseline",)
                ),
                Agent("readiness-rater", "Data readiness assessment", 5),
                Agent("governance-checker", "Governance compliance (PII)", 15),
                Agent("test-coverage", "Test coverage analysis", 5),
            ),
            parameters=ProfileParameters,
            files=("primary", "baseline"),
        ),
        Tool(
            id="clean-my-data",
            name="Clean my data",
            description="Fix nulls, outliers, types, duplicates and formats; write a clean file.",
            agents=(
                Agent("null-handler", "Handle null/missing values", 10),
                Agent("outlier-remover", "Set outliers aside", 10),
                Agent("type-fixer", "Fix data types", 10),
                Agent("duplicate-resolver", "Resolve duplicates", 10),
                Agent("field-standardization", "Standardize fields", 10),
                Agent("quarantine-agent", "Quarantine bad records", 10),
                Agent("cleanse-previewer", "Preview changes", 5),
                Agent("cleanse-writeback", "Write cleaned data", 5),
            ),
            parameters=CleanParameters,
        ),
        Tool(
            id="master-my-data",
            name="Master my data",
            description="Find keys, enforce contracts, map semantics and build golden records.",
            agents=(
                Agent("key-identifier", "Identify keys", 10),
                Agent("contract-enforcer", "Enforce contracts", 10),
                Agent("semantic-mapper", "Map semantics", 10),
                Agent("lineage-tracer", "Trace lineage", 5),
                Agent("golden-record-builder", "Build golden records", 15),
                Agent("survivorship-resolver", "Resolve survivorship", 10),
                Agent("master-writeback", "Write master data", 5),
                Agent("stewardship-flagger", "Flag for stewardship", 5),
            ),
            parameters=MasterParameters,
        ),
    )
}


def _resolve(schema: dict[str, Any], node: dict[str, Any] | None) -> dict[str, Any] | None:
    """Inline a `$ref` into the tool's `$defs`, so each agent's parameters stand alone."""
    if node is None or "$ref" not in node:
        return node
    return schema.get("$defs", {}).get(node["$ref"].rsplit("/", 1)[-1])


def _available(agent_id: str) -> bool:
    from spyglass.tools.run import agent_available

    return agent_available(agent_id)
