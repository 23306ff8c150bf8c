"""profile-my-data's parameters (S000 `ProfileParameters`; keys are agent ids, as in
`parameters.json`)."""

from __future__ import annotations

from pydantic import Field

from spyglass.tools.common.toolkit import Params


class UnifiedProfilerParams(Params):
    sample_size: int | None = Field(default=None, ge=1)
    include_correlations: bool = True


class ScoreRiskParams(Params):
    risk_threshold: float = Field(default=0.5, ge=0, le=1)
    weights: dict[str, float] | None = None


class DriftDetectorParams(Params):
    baseline_column_mapping: dict[str, str] | None = None


class ProfileParameters(Params):
    unified_profiler: UnifiedProfilerParams = Field(
        default_factory=UnifiedProfilerParams, alias="unified-profiler"
    )
    score_risk: ScoreRiskParams = Field(default_factory=ScoreRiskParams, alias="score-risk")
    drift_detector: DriftDetectorParams = Field(
        default_factory=DriftDetectorParams, alias="drift-detector"
    )
