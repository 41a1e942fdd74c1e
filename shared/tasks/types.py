"""Task types: what a task is, how it is identified, and how it is retried.

A task type is a name bound to a body ``fn(ctx: TaskContext, **params)``. A type is
*known* to the system (``TaskType``: the original system's names) but *registered*
only when a real body exists; the runner refuses to enqueue an unregistered type.
Registration happens at import time of the module holding the body, so a worker
imports its task modules (``import_task_modules``) before it takes jobs.

Parameters are checked when a task is queued, before anything is recorded: they must be a
small JSON object the body's signature accepts, and the type's ``validate(params)`` (given
to ``register_task``) raises ``InvalidParams`` for values the body would refuse, so a bad
request is refused to its caller (CLI, scheduler, SQS, API) instead of failing in a worker.

Identity: the instance of a task is its type plus its *identifying* parameters
(all parameters unless the type names a subset); two requests with the same
identity are the same instance, so it runs once (see ``TaskRepository``).
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.config import ConfigError

MAX_PARAMS_BYTES = 16_384
DEFAULT_QUEUE = "default"
DEFAULT_JOB_TIMEOUT = 3600


class TaskType(StrEnum):
    """The original system's task names. Only types with a real body are registered."""

    WEBTOON_ALL_CRAWL = "WEBTOON_ALL_CRAWL"
    WEBTOON_NEW_CRAWL = "WEBTOON_NEW_CRAWL"
    WEBTOON_EPISODE_UPDATE = "WEBTOON_EPISODE_UPDATE"
    WEBTOON_STATUS_UPDATE = "WEBTOON_STATUS_UPDATE"
    STATISTICS_AGGREGATION = "STATISTICS_AGGREGATION"
    RANKING_UPDATE = "RANKING_UPDATE"
    RECOMMENDATION_MODEL_TRAINING = "RECOMMENDATION_MODEL_TRAINING"
    RECOMMENDATION_UPDATE = "RECOMMENDATION_UPDATE"
    RECOMMENDATION_CACHE_UPDATE = "RECOMMENDATION_CACHE_UPDATE"
    MEMBER_PREFERENCE_UPDATE = "MEMBER_PREFERENCE_UPDATE"
    MEMBER_ACTIVITY_ANALYSIS = "MEMBER_ACTIVITY_ANALYSIS"
    DATA_CLEANUP = "DATA_CLEANUP"
    DATA_BACKUP = "DATA_BACKUP"
    DATA_ARCHIVE = "DATA_ARCHIVE"
    SYSTEM_HEALTH_CHECK = "SYSTEM_HEALTH_CHECK"
    CACHE_REFRESH = "CACHE_REFRESH"


class ExecutionStatus(StrEnum):
    """QUEUED → STARTED → COMPLETED | FAILED | STOPPING → STOPPED; QUEUED → STOPPED on a
    stop before start; STARTED/STOPPING → ABANDONED when the heartbeat goes silent."""

    QUEUED = "QUEUED"
    STARTED = "STARTED"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    ABANDONED = "ABANDONED"

    @property
    def is_active(self) -> bool:
        return self in ACTIVE_STATUSES

    @property
    def is_running(self) -> bool:
        return self in RUNNING_STATUSES


ACTIVE_STATUSES = frozenset(
    {ExecutionStatus.QUEUED, ExecutionStatus.STARTED, ExecutionStatus.STOPPING}
)
RUNNING_STATUSES = frozenset({ExecutionStatus.STARTED, ExecutionStatus.STOPPING})
# An instance whose last execution ended in one of these restarts from its checkpoint.
RESUMABLE_STATUSES = frozenset(
    {ExecutionStatus.FAILED, ExecutionStatus.STOPPED, ExecutionStatus.ABANDONED}
)


class Trigger(StrEnum):
    SCHEDULE = "schedule"
    API = "api"
    MESSAGE = "message"
    RETRY = "retry"


class TaskError(Exception):
    """Base of the task system's errors."""


class UnknownTaskType(TaskError):
    """The task type has no registered body in this process."""


class InvalidParams(TaskError):
    """Parameters are not a small JSON object the task's body accepts."""


class TaskStopped(Exception):  # noqa: N818 - a signal raised by bodies, not an error
    """Raised by a body (or ``TaskContext.check_stop``) to end cooperatively as STOPPED."""


@dataclass(frozen=True)
class RetryPolicy:
    """``max_retries`` retries after the first attempt; ``backoff[i]`` seconds before retry
    i+1 (the last value repeats; empty means retry at once)."""

    max_retries: int = 0
    backoff: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if any(b < 0 for b in self.backoff):
            raise ValueError("backoff seconds must be >= 0")

    def allows_retry_after(self, attempt: int) -> bool:
        """Whether attempt number ``attempt`` (1-based) may be followed by another."""
        return attempt <= self.max_retries

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (>= 2) starts."""
        if attempt <= 1 or not self.backoff:
            return 0.0
        return float(self.backoff[min(attempt - 2, len(self.backoff) - 1)])


NO_RETRY = RetryPolicy()


@dataclass(frozen=True)
class TaskDefinition:
    task_type: str
    fn: Callable[..., Any]
    retry: RetryPolicy = NO_RETRY
    # None: every parameter identifies the instance.
    identifying: tuple[str, ...] | None = None
    queue: str = DEFAULT_QUEUE
    timeout: int | None = DEFAULT_JOB_TIMEOUT
    # Raises InvalidParams for values the body would refuse (see the module doc).
    validate: Callable[[Mapping[str, Any]], None] | None = None

    def identifying_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        if self.identifying is None:
            return dict(params)
        return {name: params.get(name) for name in self.identifying}

    def check_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The params as a plain dict, or ``InvalidParams`` saying why the body can't take them."""
        checked = check_json_params(params)
        try:
            inspect.signature(self.fn).bind(None, **checked)
        except TypeError as exc:
            raise InvalidParams(f"{self.task_type}: {exc}") from None
        if self.validate is not None:
            try:
                self.validate(checked)
            except InvalidParams as exc:
                raise InvalidParams(f"{self.task_type}: {exc}") from None
        return checked


_REGISTRY: dict[str, TaskDefinition] = {}


def register_task(
    task_type: str,
    fn: Callable[..., Any],
    *,
    retry: RetryPolicy = NO_RETRY,
    identifying: Iterable[str] | None = None,
    queue: str = DEFAULT_QUEUE,
    timeout: int | None = DEFAULT_JOB_TIMEOUT,
    validate: Callable[[Mapping[str, Any]], None] | None = None,
) -> TaskDefinition:
    """Bind ``task_type`` to ``fn(ctx, **params)``; ``validate(params)`` checks a request's
    values when it is queued (raising ``InvalidParams``). Re-registering the same function
    is a no-op (modules can be imported twice); another function under the same name is an
    error."""
    if validate is not None and not callable(validate):
        raise TypeError(f"task {task_type}: validate {validate!r} is not callable")
    if not task_type or len(task_type) > 64:
        raise ValueError(f"task type {task_type!r}: 1 to 64 characters")
    if not callable(fn):
        raise TypeError(f"task {task_type}: body {fn!r} is not callable")
    definition = TaskDefinition(
        task_type=str(task_type),
        fn=fn,
        retry=retry,
        identifying=None if identifying is None else tuple(identifying),
        queue=queue,
        timeout=timeout,
        validate=validate,
    )
    existing = _REGISTRY.get(definition.task_type)
    if existing is not None and _qualified(existing.fn) != _qualified(fn):
        raise ValueError(
            f"task type {task_type} is already registered to {_qualified(existing.fn)}"
        )
    _REGISTRY[definition.task_type] = definition
    return definition


def task(task_type: str, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator form of ``register_task``."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        register_task(task_type, fn, **options)
        return fn

    return decorate


def get_task(task_type: str) -> TaskDefinition:
    try:
        return _REGISTRY[str(task_type)]
    except KeyError:
        raise UnknownTaskType(
            f"task type {task_type!r} is not registered in this process "
            "(is its module listed in the worker's task modules?)"
        ) from None


def registered_types() -> list[str]:
    return sorted(_REGISTRY)


def registered_queues() -> list[str]:
    """The queues of the registered task types, the default queue first."""
    queues = {definition.queue for definition in _REGISTRY.values()} | {DEFAULT_QUEUE}
    return [DEFAULT_QUEUE, *sorted(queues - {DEFAULT_QUEUE})]


def unregister_task(task_type: str) -> None:
    """For tests that register throw-away types."""
    _REGISTRY.pop(str(task_type), None)


def import_task_modules(modules: Iterable[str]) -> list[str]:
    """Import the modules whose import registers task bodies; returns the names imported.
    A module that does not exist is a ``ConfigError``."""
    imported = []
    for name in modules:
        name = name.strip()
        if name:
            try:
                importlib.import_module(name)
            except ModuleNotFoundError as exc:
                # The module named is not there: a setting's typo. A module that exists
                # but fails on an import of its own is a bug and keeps its traceback.
                if exc.name is None or not (name == exc.name
                                            or name.startswith(exc.name + ".")):
                    raise
                raise ConfigError(f"task module {name!r} cannot be imported: {exc} "
                                  "(TOONPICK_TASK_MODULES)") from None
            imported.append(name)
    return imported


def parse_module_list(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"a.b, c.d"`` or an iterable → a tuple of module names."""
    if not value:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    return tuple(s.strip() for s in items if s and s.strip())


def _qualified(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def params_hash(identifying_params: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(identifying_params).encode("utf-8")).hexdigest()


def check_json_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Params must be a JSON object with string keys, at most ``MAX_PARAMS_BYTES``."""
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise InvalidParams(f"params must be a JSON object, got {type(params).__name__}")
    bad_keys = [k for k in params if not isinstance(k, str) or not k.isidentifier()]
    if bad_keys:
        raise InvalidParams(f"param names must be identifiers: {bad_keys!r}")
    try:
        encoded = canonical_json(params)
    except (TypeError, ValueError) as exc:
        raise InvalidParams(f"params are not JSON-serialisable: {exc}") from None
    if len(encoded.encode("utf-8")) > MAX_PARAMS_BYTES:
        raise InvalidParams(
            f"params are {len(encoded)} bytes of JSON; jobs take small parameters "
            f"(at most {MAX_PARAMS_BYTES}), pass ids instead of data"
        )
    # Round-trip so the body sees exactly what a worker in another process would.
    return json.loads(encoded)


@dataclass(frozen=True)
class Execution:
    """One run of a task instance, as recorded in ``task_execution``."""

    id: int
    instance_id: int
    task_type: str
    status: ExecutionStatus
    trigger: Trigger
    attempt: int
    progress: int
    progress_message: str | None
    counters: dict[str, Any]
    result: Any
    error: str | None
    node: str | None
    rq_job_id: str | None
    queue: str
    job_timeout: int | None
    retry: RetryPolicy
    params: dict[str, Any]
    identifying_params: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    heartbeat_at: datetime | None
    ended_at: datetime | None
    resumed_from_execution_id: int | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view (for the admin API and logs)."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, RetryPolicy):
                value = {"max_retries": value.max_retries, "backoff": list(value.backoff)}
            elif isinstance(value, StrEnum):
                value = str(value)
            out[name] = value
        return out
