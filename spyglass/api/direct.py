"""The token-free SpyGlass endpoints (S004): start a direct job, read a task's result.

Every direct job gets its own documented route (its input model in /docs);
a catch-all route after them answers 404 for unknown jobs and 403 for jobs
that are not direct. Only tasks without an owner are visible here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, Protocol

import pydantic_core
from fastapi import APIRouter, Header, Request
from fastapi.dependencies.models import Dependant
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.telemetry import get_telemetry_data
from pydantic import BaseModel, ValidationError
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from spyglass import audit, idempotency
from spyglass.api.auth import DirectStart, direct_start_allowed
from spyglass.api.errors import error_answer, responses, validation_body
from spyglass.api.scheduling import NO_SCHEDULE, StartSchedule
from spyglass.api.session import client_address
from spyglass.errors import DomainError
from spyglass.tasks.access import Owned, visible_without_account
from spyglass.tasks.credits import needs_account
from spyglass.tasks.engine import get_engine
from spyglass.tasks.messages import direct_view
from spyglass.tasks.registry import JobInputError, JobSpec, UnknownJob, registry
from spyglass.tasks.scheduling import Schedule


class TaskResponse(BaseModel):
    task_id: str
    state_name: str
    task_name: str
    status: str
    progress: float
    message: str | None = None
    result: Any = None
    error_code: str | None = None
    error_message: str | None = None
    #: When a run scheduled for later may start (`start_at` / `start_in`).
    scheduled_at: str | None = None
    timestamp: str | None = None


#: The `Idempotency-Key` header of a start (validated and documented by FastAPI).
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=idempotency.HEADER,
        min_length=1,
        max_length=255,
        pattern=idempotency.KEY_PATTERN,
        description=idempotency.HEADER_DOC["description"],
    ),
]

#: TaskResponse's fields, in its order.
TASK_FIELDS = tuple(TaskResponse.model_fields)


def task_answer(view: dict[str, Any]) -> Response:
    """A task's `TaskResponse` (`direct_row`'s fields: a `DirectTask.answer`, a
    `direct_view`), encoded as FastAPI would encode the route's response model, without
    validating it again: `direct_row` gives each field the model's type already (but for a
    progress that may be an int). The routes still declare `response_model=TaskResponse`
    for the document."""
    body = {name: view.get(name) for name in TASK_FIELDS}
    body["progress"] = float(view["progress"])
    return Response(pydantic_core.to_json(body, inf_nan_mode="null"), media_type="application/json")


class JobOptionsInfo(BaseModel):
    timeout: float | None
    max_concurrency: int | None
    retries: int
    cost: int
    queue: str = "default"
    priority: int = 0
    cron: str | None = None


class JobInfo(BaseModel):
    state_name: str
    aliases: list[str]
    task_name: str
    doc: str
    static: bool
    direct: bool
    input_schema: dict[str, Any] | None
    default_args: dict[str, Any] | None
    options: JobOptionsInfo


#: The body of a start route that serves every job: a JSON object fitting the job's input.
START_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _integral(value: Any) -> Any:
    """JSON's view of numbers: 25.0 is an integer (as JSON Schema says), `true` is not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


def check_json_types(spec: JobSpec, body: Any) -> None:
    """Job arguments sent as JSON must have the types the document gives them: validated
    strictly, so `"25"` or `false` is no integer (the engine itself is lenient, for pages)."""
    if spec.input_model is None or body is None or body == {}:
        return  # the engine takes the defaults or says what is missing
    try:
        spec.input_model.model_validate_json(json.dumps(_integral(body)), strict=True)
    except ValidationError as exc:
        errors: list[dict[str, Any]] = [
            {**err, "loc": ["body", *err["loc"]]}
            for err in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
        raise JobInputError(errors, str(exc)) from None


def says_no_body(scope: Scope) -> bool:
    """Whether the request says it has no body (`Content-Length: 0`). Then it is not read:
    reading it would cost a round trip to the server's own thread (Granian hands a body
    over from there) to learn that it is empty, about a sixth of a no-op start's CPU."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value.strip() == b"0"
    return False


async def read_json_body(request: Request, spec: JobSpec) -> Any:
    """The job's arguments sent (a JSON object), or None for an empty body (its defaults)."""
    raw = b"" if says_no_body(request.scope) else await request.body()
    if not raw.strip():
        return None
    try:
        body = json.loads(raw, parse_constant=_not_json)
    except ValueError as exc:  # not UTF-8, not JSON, or NaN/Infinity
        raise JobInputError(
            [{"type": "json_invalid", "loc": ["body"], "msg": f"JSON decode error: {exc}"}],
            "the body is not valid JSON",
        ) from None
    if body is None:  # `null` is not "no body": the arguments are an object
        raise JobInputError(
            [
                {
                    "type": "model_type",
                    "loc": ["body"],
                    "msg": "Input should be an object (send no body for the defaults)",
                }
            ],
            "the body is null",
        )
    check_json_types(spec, body)
    return body


def validation_response(exc: JobInputError) -> JSONResponse:
    return JSONResponse(validation_body(exc.errors), status_code=422)


def find_job(state_name: str, task_name: str) -> JobSpec:
    try:
        return registry.get(state_name, task_name)
    except UnknownJob:
        raise DomainError(
            "JOB_NOT_FOUND", f"No job '{task_name}' on state '{state_name}'", 404
        ) from None


async def start_direct(spec: JobSpec, request: Request, schedule: Schedule) -> Any:
    if not spec.direct:
        raise DomainError(
            "JOB_NOT_DIRECT",
            f"Job '{spec.task_name}' of state '{spec.state_name}' is not exposed to the "
            "direct API; start it from its page or with a client token",
            403,
        )
    if spec.needs_account:
        raise needs_account(spec.state_name, spec.task_name, spec.options.cost)
    try:
        body = await read_json_body(request, spec)
        task = await get_engine().start_direct(spec, body, schedule=schedule)
    except JobInputError as exc:
        return validation_response(exc)
    return task.answer


async def start_direct_once(
    spec: JobSpec, request: Request, schedule: Schedule, key: str | None
) -> Response:
    """A token-free start, once per (client address, Idempotency-Key) when a key is sent."""

    async def start() -> Response:
        answer = await start_direct(spec, request, schedule)
        return answer if isinstance(answer, Response) else task_answer(answer)

    scope = f"addr:{client_address(request) or 'unknown'}"
    return await idempotency.once(request, scope, key, start)


NEEDS_ACCOUNT_DOC = (
    "\n\n**Costs {cost} credits, so it is not startable here**: this route answers 403 "
    "`JOB_NEEDS_ACCOUNT`. Start it for an account with a client token "
    "(`POST /api/{state}/tasks/{{client_token}}/start/{job}` or `POST /api/tasks`), "
    "which charges that account."
)
NEEDS_ACCOUNT_RESPONSE = error_answer(
    403,
    "JOB_NEEDS_ACCOUNT: a costed job is charged to an account; start it with a client token "
    "(or ORIGIN_NOT_ALLOWED: sent from another site)",
)


def _account_doc(spec: JobSpec, state: str) -> str:
    if not spec.needs_account:
        return ""
    return NEEDS_ACCOUNT_DOC.format(cost=spec.options.cost, state=state, job=spec.task_name)


#: Set in a request's scope by the `Lane` that serves it: the lane picked it for being one
#: these routes handle themselves (it looked at the query string, telemetry and headers).
ON_LANE = "spyglass.on_lane"

#: The job each documented start route starts (by its endpoint).
_STARTS: dict[Any, JobSpec] = {}


def _documented_start(spec: JobSpec) -> Any:
    async def start(
        request: Request, _rate: DirectStart, schedule: StartSchedule, key: IdempotencyKey = None
    ) -> Any:
        return await start_direct_once(spec, request, schedule, key)

    _STARTS[start] = spec
    return start


class DirectStartRoute(APIRoute):
    """A token-free start route that does only what a start must.

    A start nearly always comes without a query string: then there is no schedule to read
    (it is `NO_SCHEDULE`, as the schedule dependency would give) and the path's parameters
    are plain strings, so the route skips FastAPI's request handling (its dependency
    solving, exit stacks and response validation): it counts the start against its rate
    itself (the dependency's own function, which costs nothing when the rate is off),
    starts the job and encodes the answer with `task_answer`. With a query string, or with
    FastAPI's telemetry on, FastAPI handles the request as usual (422 naming a parameter
    that does not fit). Errors raised either way reach the same exception handlers (the
    app's exception middleware has them too), so the answers are the same.

    A job's own route has a path without parameters: a request for another path is told
    apart by comparing strings, not by the route's regular expression (every request for a
    route after these goes past them all).
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        #: The job a job's own route starts (None: the route for any job, named in the path).
        self.spec = _STARTS.get(endpoint)
        super().__init__(path, endpoint, **kwargs)
        self.static_path = None if "{" in self.path else self.path
        if self.max_body_size is None:  # else FastAPI enforces the limit on each request
            framework = self.app

            async def app(scope: Scope, receive: Receive, send: Send) -> None:
                if scope.get(ON_LANE) or self.quick(scope):
                    response = await self.start(Request(scope, receive, send))
                    await response(scope, receive, send)
                else:
                    await framework(scope, receive, send)

            self.app = app

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        static = self.static_path
        if static is not None and scope["path"] != static and not scope.get("root_path"):
            return Match.NONE, {}  # its pattern is this path, exactly (FrontDoor: no "\n")
        return super().matches(scope)

    @staticmethod
    def quick(scope: Scope) -> bool:
        return (
            not scope.get("query_string")
            and get_telemetry_data() is None
            and not idempotency.has_key(scope["headers"])
        )

    async def start(self, request: Request) -> Response:
        await direct_start_allowed(request)
        job = self.spec
        if job is None:
            params = request.path_params
            job = find_job(params["state_name"], params["task_name"])
        answer = await start_direct(job, request, NO_SCHEDULE)
        return answer if isinstance(answer, Response) else task_answer(answer)

    def get_route_handler(self) -> Any:
        """FastAPI's handler (for a request with a query string), or the quick start."""
        full = super().get_route_handler()

        async def handler(request: Request) -> Response:
            if self.quick(request.scope):
                return await self.start(request)
            return await full(request)

        return handler


def _only_path_strings(dependant: Dependant) -> bool:
    """Whether an endpoint takes nothing but strings of the path."""
    others = (
        dependant.query_params,
        dependant.header_params,
        dependant.cookie_params,
        dependant.body_params,
        dependant.dependencies,
        dependant.request_param_name,
        dependant.websocket_param_name,
        dependant.http_connection_param_name,
        dependant.response_param_name,
        dependant.background_tasks_param_name,
        dependant.security_scopes_param_name,
    )
    return not any(others) and all(f.field_info.annotation is str for f in dependant.path_params)


class TaskRoute(APIRoute):
    """A task's result or cancel route: its endpoint takes only strings of the path and builds
    its own answer (`task_answer`), so the route calls it with them directly, without
    FastAPI's request handling (dependency solving, exit stacks), which would do nothing
    else for it. With FastAPI's telemetry on, FastAPI handles the request as usual; errors
    reach the same exception handlers (the app's exception middleware has them too)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        if self.max_body_size is not None or not _only_path_strings(self.dependant):
            return
        names = [(f.name, f.alias) for f in self.dependant.path_params]
        framework = self.app

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if not scope.get(ON_LANE) and get_telemetry_data() is not None:
                await framework(scope, receive, send)
                return
            params = scope["path_params"]
            response = await endpoint(**{name: params[alias] for name, alias in names})
            await response(scope, receive, send)

        self.app = app


def args_required(spec: JobSpec) -> bool:
    """Must the job's arguments be given (no defaults to fall back on)?"""
    if spec.input_model is None or spec.default_args is not None:
        return False
    return bool(spec.input_model.model_json_schema().get("required"))


def args_schema(spec: JobSpec) -> dict[str, Any]:
    """The JSON schema of a job's arguments, as `JobSpec.parse_args` takes them."""
    if spec.input_model is None:
        return {"type": "object", "additionalProperties": spec.takes_kwargs}
    schema: dict[str, Any] = {"$ref": f"#/components/schemas/{spec.input_model.__name__}"}
    if spec.default_args is not None:  # `{}`, like no arguments at all, takes the defaults
        schema = {"anyOf": [schema, {"type": "object", "maxProperties": 0}]}
    return schema


def _request_body_doc(spec: JobSpec) -> dict[str, Any]:
    content: dict[str, Any] = {"schema": args_schema(spec)}
    if spec.input_model is None:
        content["example"] = {}
    elif spec.default_args is not None:
        content["example"] = spec.default_args.model_dump(mode="json")
    body = {"required": args_required(spec), "content": {"application/json": content}}
    return {"requestBody": body}


def add_routes(router: APIRouter) -> None:
    """The token-free routes, on the app's own router (call once every job is declared).

    Not an included router: FastAPI matches an included router's routes twice for each
    request it serves (once to choose the router, once within it), and these are the routes
    every task start and result read goes through.
    """
    _add_job_routes(router)  # before the catch-all routes
    router.add_api_route(
        "/api/{state_name}/task/start/{task_name}",
        start_any,
        methods=["POST"],
        response_model=TaskResponse,
        route_class_override=DirectStartRoute,
        tags=["direct"],
        summary="Start any direct job by name",
        description="The body fits the job's input model (see `GET /api/jobs`); "
        "an empty body takes the job's default arguments.",
        responses={
            **responses(404, 422, 429),
            409: error_answer(409, idempotency.CONFLICT_DOC),
            403: error_answer(
                403,
                "The job is not direct (JOB_NOT_DIRECT), or it costs credits "
                "(JOB_NEEDS_ACCOUNT), or it was sent from another site (ORIGIN_NOT_ALLOWED)",
            ),
        },
        openapi_extra=START_BODY_DOC,
    )
    router.add_api_route(
        "/api/{state_name}/task/result/{task_id}",
        task_result,
        methods=["GET"],
        response_model=TaskResponse,
        route_class_override=TaskRoute,
        tags=["direct"],
        summary="Current status, progress and result of a task",
        responses=responses(404),
    )
    router.add_api_route(
        "/api/{state_name}/task/cancel/{task_id}",
        cancel_and_record,
        methods=["POST"],
        response_model=TaskResponse,
        route_class_override=TaskRoute,
        tags=["direct"],
        summary="Cancel a running direct task; answers once the job has stopped",
        responses=responses(400, 404),
    )
    router.add_api_route(
        "/api/jobs",
        list_jobs,
        methods=["GET"],
        tags=["direct"],
        summary="Every declared job and its input schema",
        response_model=list[JobInfo],
    )


def _add_job_routes(router: APIRouter) -> None:
    """One documented start route per direct job."""
    for spec in registry.all():
        if not spec.direct:
            continue
        for name in (spec.state_name, *spec.aliases):
            summary = f"Start {name}.{spec.task_name}"
            router.add_api_route(
                f"/api/{name}/task/start/{spec.task_name}",
                _documented_start(spec),
                methods=["POST"],
                response_model=TaskResponse,
                route_class_override=DirectStartRoute,
                summary=summary,
                description=(spec.doc or summary)
                + "\n\nAn empty body takes the job's default arguments."
                + _account_doc(spec, name),
                tags=[f"job: {spec.state_name}"],
                operation_id=f"start__{name}__{spec.task_name}",
                openapi_extra=_request_body_doc(spec),
                responses={
                    **responses(403, 422, 429),
                    409: error_answer(409, idempotency.CONFLICT_DOC),
                    **({403: NEEDS_ACCOUNT_RESPONSE} if spec.needs_account else {}),
                },
            )


async def start_any(
    state_name: str,
    task_name: str,
    request: Request,
    _rate: DirectStart,
    schedule: StartSchedule,
    key: IdempotencyKey = None,
) -> Any:
    return await start_direct_once(find_job(state_name, task_name), request, schedule, key)


async def task_result(state_name: str, task_id: str) -> Response:
    task = await get_engine().get_direct(task_id)
    if task is None or not visible_without_token(task, state_name):
        raise DomainError("TASK_NOT_FOUND", f"Task '{task_id}' not found", 404)
    return task_answer(task.answer)


async def cancel_task(state_name: str, task_id: str) -> Response:
    engine = get_engine()
    task = await engine.get(task_id)
    if task is None or not visible_without_token(task, state_name):
        raise DomainError("TASK_NOT_FOUND", f"Task '{task_id}' not found", 404)
    if not await engine.cancel_and_wait(task_id):
        raise DomainError(
            "TASK_NOT_CANCELLABLE", f"Cannot cancel task with status: {task.status}", 400
        )
    ended = await engine.get(task_id)
    if ended is None:  # deleted meanwhile
        raise DomainError("TASK_NOT_FOUND", f"Task '{task_id}' not found", 404)
    return task_answer(direct_view(ended))


async def cancel_and_record(state_name: str, task_id: str, request: Request) -> Response:
    """The cancel route: `cancel_task`, then the audit log's row (nobody signed in: the row's
    actor is `anonymous`, with the client's address). Through FastAPI's own handling, for
    the request."""
    answer = await cancel_task(state_name, task_id)
    await audit.record(request, None, "task.cancel", "task", task_id)
    return answer


async def list_jobs() -> Any:
    return [spec.describe() for spec in registry.all()]


class OfState(Owned, Protocol):
    """A task, or what is read of it, as far as whose and which state's it is."""

    @property
    def state_name(self) -> str: ...


def visible_without_token(task: OfState, state_name: str) -> bool:
    """Token-free paths see only ownerless tasks of the state they name."""
    same_state = registry.canonical_state(state_name) == task.state_name
    return same_state and visible_without_account(task)


def add_job_schemas(document: dict[str, Any]) -> None:
    """Put every job's input model in /openapi.json's components, for the $refs above."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    for spec in registry.all():
        if spec.input_model is None:
            continue
        model_schema = spec.input_model.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        for name, sub in model_schema.pop("$defs", {}).items():
            components.setdefault(name, sub)
        components[spec.input_model.__name__] = model_schema
