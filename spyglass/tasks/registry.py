"""Every declared job, found by `(state_name, task_name)`, with its input schema and options."""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from spyglass.tasks.view import TaskView

#: A queue's name: what `spyglass worker --queue` and the start paths accept.
QUEUE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True)
class JobOptions:
    timeout: float | None = None
    max_concurrency: int | None = None
    #: Reachable by the token-free direct API; None means "static methods only".
    direct: bool | None = None
    retries: int = 0
    retry_backoff: float = 1.0
    cost: int = 0
    #: Where its runs wait and in which order: a queue name (a worker may take only some
    #: queues) and a priority (higher first; starts may override both).
    queue: str = "default"
    priority: int = 0
    #: Start it on this schedule (five-field cron, UTC), as well as on demand.
    cron: str | None = None

    def __post_init__(self) -> None:
        if not QUEUE_NAME.fullmatch(self.queue):
            raise ValueError("queue must be 1–64 letters, digits, '-', '_' or '.'")
        if not -(2**31) <= self.priority < 2**31:
            raise ValueError("priority must fit in 32 bits")
        if self.cron is not None:
            from croniter import croniter

            if len(self.cron.split()) not in (5, 6) or not croniter.is_valid(self.cron):
                raise ValueError(
                    f"cron must be a cron expression (five fields, or six with seconds last), "
                    f"not {self.cron!r}"
                )
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError("timeout must be a positive number of seconds")
        if self.max_concurrency is not None and self.max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if self.retries < 0:
            raise ValueError("retries must be 0 or more")
        if self.cost < 0:
            raise ValueError("cost must be 0 or more")


class JobInputError(ValueError):
    """The arguments given to a job do not fit its input model."""

    def __init__(self, errors: list[dict[str, Any]], message: str) -> None:
        super().__init__(message)
        self.errors = errors


@dataclass
class JobSpec:
    state_name: str
    task_name: str
    fn: Callable[..., Any]
    is_static: bool
    options: JobOptions
    input_model: type[BaseModel] | None
    default_args: BaseModel | None
    takes_kwargs: bool
    doc: str
    aliases: tuple[str, ...] = ()
    state_cls: Any = field(default=None, repr=False)

    @property
    def direct(self) -> bool:
        return self.is_static if self.options.direct is None else self.options.direct

    @property
    def needs_account(self) -> bool:
        """A costed job is charged to whoever starts it: never started token-free."""
        return self.options.cost > 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.state_name, self.task_name)

    @property
    def title(self) -> str:
        """What people call the job: the first line of its doc string (without the final
        full stop), else its name in words (`task2_with_args` → "Task2 with args")."""
        return job_title(self.doc, self.task_name)

    def parse_args(self, raw: Any) -> BaseModel | dict[str, Any] | None:
        """Validate raw JSON input; an empty body takes the declared default."""
        empty = raw is None or raw == {}
        if self.input_model is None:
            if empty:
                return {} if self.takes_kwargs else None
            if not isinstance(raw, dict):
                raise JobInputError(
                    [{"type": "dict_type", "loc": ["body"], "msg": "Input should be an object"}],
                    "arguments must be a JSON object",
                )
            if not self.takes_kwargs:
                raise JobInputError(
                    [
                        {
                            "type": "extra_forbidden",
                            "loc": ["body"],
                            "msg": "This job takes no input",
                        }
                    ],
                    f"{self.task_name} takes no arguments",
                )
            return dict(raw)
        if empty and self.default_args is not None:
            return self.default_args.model_copy(deep=True)
        try:
            return self.input_model.model_validate({} if raw is None else raw)
        except ValidationError as exc:
            errors: list[dict[str, Any]] = [
                {k: v for k, v in err.items() if k != "input"}
                for err in exc.errors(include_url=False, include_context=False)
            ]
            for err in errors:
                err["loc"] = ["body", *err.get("loc", ())]
            raise JobInputError(errors, str(exc)) from None

    def describe(self) -> dict[str, Any]:
        return {
            "state_name": self.state_name,
            "aliases": list(self.aliases),
            "task_name": self.task_name,
            "doc": self.doc,
            "static": self.is_static,
            "direct": self.direct,
            "input_schema": self.input_model.model_json_schema() if self.input_model else None,
            "default_args": self.default_args.model_dump(mode="json")
            if self.default_args
            else None,
            "options": {
                "timeout": self.options.timeout,
                "max_concurrency": self.options.max_concurrency,
                "retries": self.options.retries,
                "cost": self.options.cost,
                "queue": self.options.queue,
                "priority": self.options.priority,
                "cron": self.options.cron,
            },
        }


def analyse_signature(fn: Callable[..., Any], is_static: bool) -> dict[str, Any]:
    """Find the input model: the annotation of the parameter after `task`."""
    params = list(inspect.signature(fn, eval_str=True).parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    skip = 1 if is_static else 2  # (task, ...) or (self, task, ...)
    if len(positional) < skip:
        who = "(task, ...)" if is_static else "(self, task, ...)"
        raise TypeError(f"a monitored job must take {who}: {fn.__qualname__}")
    rest = positional[skip:]
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params)
    if len(rest) > 1:
        raise TypeError(
            f"{fn.__qualname__}: a job takes at most one argument after `task`, a Pydantic model"
        )
    input_model = default = None
    if rest:
        arg = rest[0]
        ann = arg.annotation
        if not (inspect.isclass(ann) and issubclass(ann, BaseModel)):
            raise TypeError(
                f"{fn.__qualname__}: annotate `{arg.name}` with a pydantic BaseModel subclass"
            )
        input_model = ann
        if arg.default is not inspect.Parameter.empty:
            default = arg.default
    return {"input_model": input_model, "default_args": default, "takes_kwargs": takes_kwargs}


_SNAKE_1 = re.compile(r"(.)([A-Z][a-z]+)")
_SNAKE_2 = re.compile(r"([a-z0-9])([A-Z])")


def snake_case(name: str) -> str:
    """Reflex's own rule (`ExampleTaskState2` → `example_task_state2`)."""
    return _SNAKE_2.sub(r"\1_\2", _SNAKE_1.sub(r"\1_\2", name)).lower().replace("-", "_")


def humanise(name: str) -> str:
    """An identifier in words: `task2_with_args` → "Task2 with args", `key-identifier` →
    "Key identifier"."""
    words = re.sub(r"[_\-\s]+", " ", name).strip()
    return words[:1].upper() + words[1:] if words else name


def job_title(doc: str | None, task_name: str) -> str:
    """The first line of a doc string without its final full stop, else the name in words."""
    first = (doc or "").strip().splitlines()[0].strip() if (doc or "").strip() else ""
    return first.removesuffix(".") if first else humanise(task_name)


class UnknownJob(LookupError):
    pass


#: Re-runs a finished task of a state whose tasks need more than "same job, same inputs"
#: (a tool task copies its files and charges again); returns the new task's row.
RetryHandler = Callable[[TaskView], Awaitable[TaskView]]


class Registry:
    def __init__(self) -> None:
        self._jobs: dict[tuple[str, str], JobSpec] = {}
        #: The states that declare jobs (a name's lookup is one of each request's first steps).
        self._states: set[str] = set()
        self._aliases: dict[str, str] = {}
        self.retry_handlers: dict[str, RetryHandler] = {}
        #: Engine-internal jobs (the data tools) that are not in the public list but that
        #: a worker must find by name to run a queued task: state name → spec by job name.
        self._internal: dict[str, Callable[[str], JobSpec]] = {}

    def internal(self, state_name: str, resolve: Callable[[str], JobSpec]) -> None:
        """Let the engine find the jobs of `state_name` through `resolve(task_name)`."""
        self._internal[state_name] = resolve

    def resolve(self, state_name: str, task_name: str) -> JobSpec:
        """A job by name, engine-internal ones included (raises UnknownJob)."""
        resolve = self._internal.get(state_name)
        if resolve is not None:
            try:
                return resolve(task_name)
            except KeyError:
                raise UnknownJob(f"no job {task_name!r} on state {state_name!r}") from None
        return self.get(state_name, task_name)

    def on_retry(self, state_name: str, handler: RetryHandler) -> None:
        """Let `handler` retry the tasks of `state_name` (see `Engine.retry`)."""
        self.retry_handlers[state_name] = handler

    def register(self, spec: JobSpec) -> None:
        existing = self._jobs.get(spec.key)
        if existing is not None and existing.fn is not spec.fn:
            raise ValueError(f"job {spec.state_name}.{spec.task_name} is declared twice")
        self._jobs[spec.key] = spec
        self._states.add(spec.state_name)
        for alias in spec.aliases:
            owner = self._aliases.setdefault(alias, spec.state_name)
            if owner != spec.state_name:
                raise ValueError(f"state alias {alias!r} is used by {owner} and {spec.state_name}")

    def canonical_state(self, name: str) -> str | None:
        if name in self._states:
            return name
        return self._aliases.get(name)

    def get(self, state_name: str, task_name: str) -> JobSpec:
        canonical = self.canonical_state(state_name)
        spec = self._jobs.get((canonical, task_name)) if canonical else None
        if spec is None:
            raise UnknownJob(f"no job {task_name!r} on state {state_name!r}")
        return spec

    def all(self) -> list[JobSpec]:
        return sorted(self._jobs.values(), key=lambda s: s.key)

    def states(self) -> list[str]:
        return sorted(self._states)


#: Jobs register here at import time, when their state classes are created.
registry = Registry()
