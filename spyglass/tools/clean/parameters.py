"""clean-my-data's parameters (S000 `CleanParameters`; keys are agent ids, as in
`parameters.json`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from spyglass.tools.common.toolkit import Params


class NullHandlerParams(Params):
    #: `keep` (the default) leaves gaps as they are: filling is opt-in, and `drop` sets the
    #: rows aside in quarantine.csv rather than deleting them.
    strategy: Literal["keep", "drop", "fill_mean", "fill_median", "fill_mode", "fill_value"] = (
        "keep"
    )
    fill_value: Any = None
    columns: list[str] | None = None


class OutlierRemoverParams(Params):
    #: `auto` judges each column on the scale its shape calls for (log scale for positive,
    #: right-skewed values; else as is) with Tukey's fences; `iqr` and `zscore` as asked.
    #: Outliers are always set aside in quarantine.csv with a reason, never deleted.
    method: Literal["auto", "iqr", "zscore"] = "auto"
    #: Fence width: k·IQR for `auto` and `iqr`, standard deviations for `zscore`; 3 when unset
    #: (Tukey's "far out", which flags nothing on clean normal or lognormal data).
    threshold: float | None = Field(default=None, gt=0)
    columns: list[str] | None = None


class TypeFixerParams(Params):
    column_types: dict[str, Literal["string", "number", "date", "boolean"]] | None = None


class DuplicateResolverParams(Params):
    key_columns: list[str] | None = None
    keep: Literal["first", "last"] = "first"


class CleanParameters(Params):
    null_handler: NullHandlerParams = Field(default_factory=NullHandlerParams, alias="null-handler")
    outlier_remover: OutlierRemoverParams = Field(
        default_factory=OutlierRemoverParams, alias="outlier-remover"
    )
    type_fixer: TypeFixerParams = Field(default_factory=TypeFixerParams, alias="type-fixer")
    duplicate_resolver: DuplicateResolverParams = Field(
        default_factory=DuplicateResolverParams, alias="duplicate-resolver"
    )
