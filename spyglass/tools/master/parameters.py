"""master-my-data's parameters (S000 `MasterParameters`; keys are agent ids, as in
`parameters.json`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from spyglass.tools.common.toolkit import Params


class KeyIdentifierParams(Params):
    candidate_columns: list[str] | None = None
    uniqueness_threshold: float = Field(default=0.99, ge=0, le=1)


class SemanticMapperParams(Params):
    source_columns: list[str] | None = None
    target_schema: dict[str, str] | None = None


class GoldenRecordParams(Params):
    survivorship_rules: dict[str, Literal["most_recent", "most_frequent", "longest"]] | None = None


class MasterParameters(Params):
    key_identifier: KeyIdentifierParams = Field(
        default_factory=KeyIdentifierParams, alias="key-identifier"
    )
    semantic_mapper: SemanticMapperParams = Field(
        default_factory=SemanticMapperParams, alias="semantic-mapper"
    )
    golden_record_builder: GoldenRecordParams = Field(
        default_factory=GoldenRecordParams, alias="golden-record-builder"
    )
