"""`MonitorState`: the Reflex state that jobs are declared on.

When a subclass is created, each `@monitored_background_task` method is
registered with the engine under `(state_name, task_name)` and replaced by a
page event of the same name, so `on_click=MyState.my_job` starts the job for
the browser that clicked (optionally with a dict of arguments). The job itself
always runs in the engine, never inside the browser's state lock.
"""

from __future__ import annotations

from typing import Any, ClassVar

import reflex as rx

from spyglass.errors import DomainError
from spyglass.states.auth import READ_ONLY_ROLE, current_user
from spyglass.tasks.access import can_change_tasks
from spyglass.tasks.decorator import build_spec, find_jobs
from spyglass.tasks.engine import get_engine
from spyglass.tasks.registry import JobInputError, JobSpec, registry, snake_case


def _start_handler(spec: JobSpec) -> Any:
    async def start_job(self: rx.State, args: dict[str, Any] | None = None) -> Any:
        async with self:
            user = await current_user(self)
        if user is None:
            return rx.toast.error("Sign in to start tasks.")
        if not can_change_tasks(user):
            return rx.toast.error(READ_ONLY_ROLE)
        try:
            task = await get_engine().start_job(
                spec,
                args,
                origin="browser",
                owner_id=user.id,
                instance=None if spec.is_static else self,
            )
        except JobInputError as exc:
            return rx.toast.error(f"{spec.task_name}: {exc}")
        except DomainError as exc:  # e.g. a costed job the user's credits do not cover
            return rx.toast.error(f"{spec.task_name}: {exc.message}")
        return rx.toast.info(f"Started {spec.task_name} ({task.id[:8]})")

    start_job.__name__ = spec.task_name
    start_job.__qualname__ = f"{spec.state_name}.{spec.task_name}"
    start_job.__doc__ = spec.doc
    return rx.event(start_job, background=True)


class MonitorState(rx.State):
    """Base of every state that declares monitored jobs.

    A subclass may set `state_alias: ClassVar[str] = "short_name"`, another name the API
    answers to (the ClassVar annotation keeps Reflex from making it a state var).
    """

    state_alias: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        state_name = snake_case(cls.__name__)
        alias = cls.__dict__.get("state_alias")
        if alias is not None and not isinstance(alias, str):
            raise TypeError(
                f"{cls.__name__}.state_alias must be declared `state_alias: ClassVar[str] = ...`"
            )
        aliases = (alias,) if alias and alias != state_name else ()
        for name, job, is_static in list(find_jobs(cls.__dict__)):
            spec = build_spec(state_name, aliases, name, job, is_static, state_cls=cls)
            registry.register(spec)
            setattr(cls, name, _start_handler(spec))
        super().__init_subclass__(**kwargs)


__all__ = ["MonitorState"]
