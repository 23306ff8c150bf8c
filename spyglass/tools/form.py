"""A tool's parameters as a form: the fields to show, and the form's text back to parameters.

The fields come from the tool's Pydantic parameter models (S000 `ProfileParameters`,
`CleanParameters`, `MasterParameters`), so a new parameter appears in the New task
page without touching the page. What the user typed is turned into the JSON a
`parameters.json` would hold, then validated by the same models.
"""

from __future__ import annotations

import json
import types
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from spyglass.errors import DomainError
from spyglass.tools.catalogue import Tool
from spyglass.tools.flow import check_parameters


@dataclass(frozen=True)
class FormField:
    """One input: `key` is `agent.name`; `kind` picks the widget."""

    key: str
    agent: str
    name: str
    label: str
    kind: Literal["integer", "number", "bool", "choice", "list", "mapping", "text"]
    default: str = ""
    options: list[str] = field(default_factory=list)
    hint: str = ""


_HINTS = {
    "list": "comma-separated column names; empty means all",
    "mapping": "name: value pairs, comma-separated",
    "text": "a number or a word",
}


def _strip_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _kind(annotation: Any) -> tuple[str, list[str]]:
    annotation = _strip_optional(annotation)
    origin = get_origin(annotation)
    if annotation is bool:
        return "bool", []
    if annotation is int:
        return "integer", []
    if annotation is float:
        return "number", []
    if origin is Literal:
        return "choice", [str(a) for a in get_args(annotation)]
    if origin is list:
        return "list", []
    if origin is dict:
        return "mapping", []
    return "text", []


def _default_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def form_fields(tool: Tool) -> list[FormField]:
    """Every parameter of every agent of `tool` that takes any, in the tool's agent order."""
    by_agent: dict[str, type[BaseModel]] = {}
    for info in tool.parameters.model_fields.values():
        model = _strip_optional(info.annotation)
        if info.alias and isinstance(model, type) and issubclass(model, BaseModel):
            by_agent[info.alias] = model
    fields: list[FormField] = []
    for agent in tool.agents:
        model = by_agent.get(agent.id)
        if model is None:
            continue
        for name, info in model.model_fields.items():
            kind, options = _kind(info.annotation)
            fields.append(
                FormField(
                    key=f"{agent.id}.{name}",
                    agent=agent.id,
                    name=name,
                    label=name.replace("_", " ").capitalize(),
                    kind=kind,  # type: ignore[arg-type]
                    default=_default_text(info.default),
                    options=options,
                    hint=_HINTS.get(kind, ""),
                )
            )
    return fields


def _scalar(text: str) -> Any:
    """`12` → 12, `1.5` → 1.5, `true` → True, anything else stays text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _value(spec: FormField, text: str) -> Any:
    where = f"{spec.agent} · {spec.label.lower()}"
    if spec.kind == "bool":
        return text.lower() in ("true", "1", "yes", "on")
    if spec.kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise DomainError("INVALID_PARAMETERS", f"{where}: give a whole number", 422) from None
    if spec.kind == "number":
        try:
            return float(text)
        except ValueError:
            raise DomainError("INVALID_PARAMETERS", f"{where}: give a number", 422) from None
    if spec.kind == "list":
        return [part.strip() for part in text.split(",") if part.strip()]
    if spec.kind == "mapping":
        pairs: dict[str, Any] = {}
        for part in text.replace("\n", ",").split(","):
            if not part.strip():
                continue
            name, colon, value = part.partition(":")
            if not colon or not name.strip() or not value.strip():
                raise DomainError(
                    "INVALID_PARAMETERS",
                    f"{where}: write name: value pairs ('{part.strip()}')",
                    422,
                )
            pairs[name.strip()] = _scalar(value.strip())
        return pairs
    if spec.kind == "choice":
        return text
    return _scalar(text)


def parameters_from_form(tool: Tool, agents: list[str], values: dict[str, str]) -> dict[str, Any]:
    """The parameters.json of what the form holds for the chosen agents (empty fields omitted)."""
    params: dict[str, dict[str, Any]] = {}
    for spec in form_fields(tool):
        text = (values.get(spec.key) or "").strip()
        if spec.agent not in agents or text == "" or text == spec.default:
            continue
        params.setdefault(spec.agent, {})[spec.name] = _value(spec, text)
    return check_parameters(tool, params)
