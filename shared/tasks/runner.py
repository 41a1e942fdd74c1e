"""Running task executions as RQ jobs, and recovering the ones whose worker died.

An execution is one RQ job, ``shared.tasks.runner.run_execution(execution_id)``: only the
id crosses Redis; params, checkpoint and status live in MariaDB (``TaskRepository``), so
any worker can run it and any process can recover it. The runner owns everything around
a task body: marking it STARTED, a heartbeat thread, progress, checkpoints, the stop
flag, the outcome (COMPLETED / STOPPED / FAILED) and the retry of a failure, recorded as
a new execution (``trigger=retry``) rather than with RQ's own Retry, so an operator sees
every attempt.

Recovery (``reconcile``), run by every worker at start-up and periodically:
- STARTED/STOPPING with a heartbeat older than the timeout → ABANDONED (+ a retry per the
  type's policy, resuming from the checkpoint) or STOPPED;
- QUEUED whose RQ job is gone from Redis (or ended without running it) → enqueued again.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from rq import Queue, get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from shared.stores.redis import redis_client
from shared.tasks.alerts import announce_execution_end
from shared.tasks.repository import ExecutionNotFound, TaskRepository
from shared.tasks.types import (
    RUNNING_STATUSES,
    Execution,
    ExecutionStatus,
    InvalidParams,
    TaskError,
    TaskStopped,
    Trigger,
    UnknownTaskType,
    canonical_json,
    get_task,
    import_task_modules,
    parse_module_list,
)

log = logging.getLogger(__name__)

RUN_EXECUTION = "shared.tasks.runner.run_execution"
# RQ's copies of results are only a convenience: the record of a run is in MariaDB.
RESULT_TTL_SECONDS = 24 * 3600
FAILURE_TTL_SECONDS = 7 * 24 * 3600
# RQ job states in which the job will never run (again): its execution needs a new job.
_DEAD_JOB_STATES = frozenset(
    {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}
)


class ExecutionLost(TaskError):  # noqa: N818 - reads as the event it reports
    """The store no longer lets this process write the execution: a reconciler declared it
    ABANDONED (this process was silent too long) or it ended elsewhere."""


@dataclass(frozen=True)
class RunnerSettings:
    """Timing knobs of the runner; the defaults suit production."""

    heartbeat_interval: float = 5.0
    heartbeat_timeout: float = 60.0
    # How long should_stop() trusts the last status it read.
    stop_check_interval: float = 1.0
    # A QUEUED execution younger than this is not checked for a lost job (it may be
    # between its INSERT and its enqueue). None: the heartbeat timeout.
    queued_grace: float | None = None
    reconcile_interval: float = 30.0
    task_modules: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RunnerSettings:
        """The task settings of ``shared.config``."""
        return cls(
            heartbeat_interval=config["task_heartbeat_interval"],
            heartbeat_timeout=config["task_heartbeat_timeout"],
            stop_check_interval=config["task_stop_check_interval"],
            queued_grace=cls().queued_grace,
            reconcile_interval=config["task_reconcile_interval"],
            task_modules=parse_module_list(config["task_modules"]),
        )

    @property
    def lost_job_grace(self) -> float:
        return self.heartbeat_timeout if self.queued_grace is None else self.queued_grace


@dataclass(frozen=True)
class _ProcessConfig:
    mariadb_url: str
    settings: RunnerSettings


# Set by a worker process (run_worker) and inherited by its forked work horses; a plain
# `rq worker` leaves it unset and run_execution reads shared.config instead.
_process_config: _ProcessConfig | None = None


def configure_process(mariadb_url: str, settings: RunnerSettings) -> None:
    global _process_config
    _process_config = _ProcessConfig(mariadb_url, settings)


def _resolve_process_config() -> _ProcessConfig:
    if _process_config is not None:
        return _process_config
    from shared.config import load_config

    config = load_config()
    return _ProcessConfig(config.mariadb_url, RunnerSettings.from_config(config))


# -- enqueueing ---------------------------------------------------------------------------


def enqueue_task(
    mariadb_url: str,
    redis_url: str,
    task_type: str,
    params: Mapping[str, Any] | None,
    trigger: Trigger | str,
    force: bool = False,
    delay: float | None = None,
) -> int:
    """Record a QUEUED execution and enqueue its RQ job; returns the execution id.

    Raises ``AlreadyRunning`` / ``AlreadyCompleted`` (see ``TaskRepository``),
    ``UnknownTaskType`` or ``InvalidParams``. If Redis refuses the job, the execution stays
    QUEUED and the next reconcile enqueues it, so the id returned is always a real run.
    """
    repository = TaskRepository(mariadb_url)
    try:
        execution = repository.create_execution(task_type, params, trigger, force)
    finally:
        repository.close()
    connection = redis_client(redis_url)
    try:
        enqueue_execution(connection, execution, delay)
    except redis.exceptions.RedisError as exc:
        log.warning("execution %s recorded but not enqueued (%s); reconcile will enqueue it",
                    execution.id, exc)
    finally:
        connection.close()
    return execution.id


def enqueue_execution(
    connection: redis.Redis, execution: Execution, delay: float | None = None
) -> Job:
    """Put an execution's job (id ``execution.rq_job_id``) on its queue, after ``delay``
    seconds if given (needs a worker started with the scheduler; task workers take over
    the scheduler of a dead worker so a retry starts on time: ``shared.tasks.worker``)."""
    queue = Queue(execution.queue, connection=connection)
    options: dict[str, Any] = {
        "args": (execution.id,),
        "job_id": execution.rq_job_id,
        # rq's default is 180 s; -1 is rq's "no limit".
        "job_timeout": execution.job_timeout if execution.job_timeout else -1,
        "result_ttl": RESULT_TTL_SECONDS,
        "failure_ttl": FAILURE_TTL_SECONDS,
        "description": f"{execution.task_type} execution {execution.id}",
    }
    if delay and delay > 0:
        # RQ's scheduler keeps whole seconds and rounds down: round up so the job never
        # starts before the backoff has passed.
        when = datetime.now(UTC) + timedelta(seconds=delay)
        if when.microsecond:
            when = when.replace(microsecond=0) + timedelta(seconds=1)
        return queue.enqueue_at(when, RUN_EXECUTION, **options)
    return queue.enqueue(RUN_EXECUTION, **options)


# -- running ----------------------------------------------------------------------------


class TaskContext:
    """What a task body sees: its params, its checkpoint, and the runner's services.

    ``checkpoint`` is the last saved state (inherited from the previous execution when
    this one resumes); a body skips what it says is done and calls ``save_checkpoint``
    after each unit of work. ``should_stop()`` turns True when an operator asked to stop
    (or this process lost the execution); the body then returns or raises ``TaskStopped``.
    """

    def __init__(
        self,
        repository: TaskRepository,
        execution: Execution,
        checkpoint: dict[str, Any],
        stop_check_interval: float,
    ):
        self.execution_id = execution.id
        self.task_type = execution.task_type
        self.params = dict(execution.params)
        self.attempt = execution.attempt
        self.trigger = execution.trigger
        self.checkpoint: dict[str, Any] = checkpoint
        self.counters: dict[str, Any] = dict(execution.counters)
        self.log = logging.LoggerAdapter(
            logging.getLogger(f"toonpick.task.{execution.task_type}"),
            {"execution_id": execution.id},
        )
        self._repository = repository
        self._stop_check_interval = stop_check_interval
        self._lock = threading.Lock()
        self._status = ExecutionStatus.STARTED
        self._status_read_at = time.monotonic()
        self.stop_seen = False

    @property
    def lost(self) -> bool:
        return self._status not in RUNNING_STATUSES

    def observe_status(self, status: ExecutionStatus | None) -> None:
        with self._lock:
            self._status = status or ExecutionStatus.ABANDONED
            self._status_read_at = time.monotonic()

    def should_stop(self) -> bool:
        if time.monotonic() - self._status_read_at >= self._stop_check_interval:
            self.observe_status(self._repository.heartbeat(self.execution_id))
        stop = self._status is not ExecutionStatus.STARTED
        if stop:
            self.stop_seen = True
        return stop

    def check_stop(self) -> None:
        """Raise ``TaskStopped`` when the body should stop."""
        if self.should_stop():
            raise TaskStopped(f"execution {self.execution_id}: stop requested")

    def save_checkpoint(self, data: Mapping[str, Any]) -> None:
        snapshot = dict(data)
        try:
            canonical_json(snapshot)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"checkpoint must be JSON: {exc}") from None
        if not self._repository.save_checkpoint(self.execution_id, snapshot):
            self.observe_status(self._repository.heartbeat(self.execution_id))
            raise ExecutionLost(
                f"execution {self.execution_id} is {self._status}; checkpoint refused"
            )
        self.checkpoint = snapshot

    def progress(self, percent: float, message: str | None = None, **counters: Any) -> None:
        """Report progress 0-100; counters are merged into the execution's counters."""
        self.counters.update(counters)
        if not self._repository.set_progress(self.execution_id, percent, message, self.counters):
            self.observe_status(self._repository.heartbeat(self.execution_id))


class _Heartbeat(threading.Thread):
    def __init__(self, repository: TaskRepository, context: TaskContext, interval: float):
        super().__init__(name=f"heartbeat-{context.execution_id}", daemon=True)
        self._repository = repository
        self._context = context
        self._interval = interval
        self._done = threading.Event()

    def run(self) -> None:
        try:
            while not self._done.wait(self._interval):
                try:
                    self._context.observe_status(
                        self._repository.heartbeat(self._context.execution_id)
                    )
                except Exception as exc:  # a store hiccup must not kill the beat
                    log.warning("heartbeat of execution %s failed: %s",
                                self._context.execution_id, exc)
        finally:
            self._repository.close()

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=max(5.0, self._interval * 2))


def node_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_execution(execution_id: int) -> str:
    """The RQ job: run one execution to its end. Returns the final status."""
    process = _resolve_process_config()
    repository = TaskRepository(process.mariadb_url)
    try:
        return _run(repository, process.settings, execution_id, get_current_job())
    finally:
        repository.close()


def _run(
    repository: TaskRepository, settings: RunnerSettings, execution_id: int, job: Job | None
) -> str:
    try:
        started = repository.mark_started(execution_id, node_name(), job.id if job else None)
        execution = repository.get(execution_id)
    except ExecutionNotFound:
        # A job outliving its database (restored backup, dropped test schema).
        log.error("execution %s does not exist; job %s dropped", execution_id,
                  job.id if job else None)
        return "missing"
    if not started:
        log.info("execution %s is %s (job %s): not starting it", execution_id,
                 execution.status, job.id if job else None)
        return f"skipped:{execution.status}"

    try:
        definition = get_task(execution.task_type)
    except UnknownTaskType:
        try:
            import_task_modules(settings.task_modules)
            definition = get_task(execution.task_type)
        except Exception as exc:  # unknown type or a task module that fails to import
            if repository.finish(execution_id, ExecutionStatus.FAILED, error=str(exc)):
                announce_execution_end(execution_id, execution.task_type,
                                       ExecutionStatus.FAILED, str(exc))
            log.error("execution %s: %s", execution_id, exc)
            return ExecutionStatus.FAILED.value

    context = TaskContext(repository, execution, repository.load_checkpoint(execution_id),
                          settings.stop_check_interval)
    heartbeat = _Heartbeat(repository, context, settings.heartbeat_interval)
    heartbeat.start()
    log.info("execution %s (%s, attempt %s) started", execution_id, execution.task_type,
             execution.attempt)
    try:
        try:
            result = definition.fn(context, **execution.params)
        except TaskStopped:
            return _end(repository, context, ExecutionStatus.STOPPED)
        except ExecutionLost as exc:
            log.warning("execution %s lost: %s", execution_id, exc)
            return ExecutionStatus.ABANDONED.value
        except InvalidParams as exc:
            # The body refused its input (or found nothing to work on): another attempt
            # with the same params would fail the same way.
            return _fail(repository, context, f"InvalidParams: {exc}", job,
                         retryable=False)
        except Exception:
            return _fail(repository, context, traceback.format_exc(), job)
        status = ExecutionStatus.STOPPED if context.stop_seen else ExecutionStatus.COMPLETED
        return _end(repository, context, status, _json_result(execution_id, result))
    finally:
        heartbeat.stop()


def _end(
    repository: TaskRepository,
    context: TaskContext,
    status: ExecutionStatus,
    result: Any = None,
) -> str:
    if not repository.finish(context.execution_id, status, result=result):
        log.warning("execution %s was no longer running; its end (%s) is not recorded",
                    context.execution_id, status)
        return ExecutionStatus.ABANDONED.value
    log.info("execution %s %s", context.execution_id, status)
    announce_execution_end(context.execution_id, context.task_type, status)
    return status.value


def _fail(repository: TaskRepository, context: TaskContext, error: str, job: Job | None,
          retryable: bool = True) -> str:
    ended, retry = repository.fail(context.execution_id, error, retryable)
    if not ended:
        log.warning("execution %s failed after it was taken from this process:\n%s",
                    context.execution_id, error)
        return ExecutionStatus.ABANDONED.value
    log.error("execution %s failed:\n%s", context.execution_id, error)
    if retry is not None:
        _enqueue_retry(job.connection if job else None, retry)
    # After the retry is on its way: a slow webhook must not delay it.
    announce_execution_end(context.execution_id, context.task_type, ExecutionStatus.FAILED,
                           error, retry.id if retry is not None else None)
    return ExecutionStatus.FAILED.value


def _enqueue_retry(connection: redis.Redis | None, retry: Execution) -> None:
    delay = retry.retry.delay_before(retry.attempt)
    own_connection = connection is None
    try:
        if own_connection:
            from shared.config import load_config

            connection = redis_client(load_config().redis_url)
        enqueue_execution(connection, retry, delay)
        log.info("execution %s: retry %s (attempt %s) in %gs", retry.resumed_from_execution_id,
                 retry.id, retry.attempt, delay)
    except (redis.exceptions.RedisError, ValueError) as exc:
        log.warning("retry execution %s recorded but not enqueued (%s); reconcile will",
                    retry.id, exc)
    finally:
        if own_connection and connection is not None:
            connection.close()


def _json_result(execution_id: int, result: Any) -> Any:
    if result is None:
        return None
    try:
        canonical_json(result)
        return result
    except (TypeError, ValueError):
        log.warning("execution %s returned a non-JSON result; storing its repr", execution_id)
        return {"repr": repr(result)[:2000]}


# -- recovery ---------------------------------------------------------------------------


@dataclass
class ReconcileReport:
    abandoned: list[int] = field(default_factory=list)
    stopped: list[int] = field(default_factory=list)
    retried: list[int] = field(default_factory=list)
    requeued: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.abandoned or self.stopped or self.retried or self.requeued)


def reconcile_at_startup(config: Mapping[str, Any]) -> ReconcileReport:
    """What every task process (worker, scheduler, message consumer) does first: settle
    executions left STARTED by workers that died while no process was watching."""
    report = reconcile(config["mariadb_url"], config["redis_url"],
                       config["task_heartbeat_timeout"])
    if report:
        log.warning("start-up reconciliation: %s", report)
    return report


def reconcile(
    mariadb_url: str,
    redis_url: str | redis.Redis,
    heartbeat_timeout: float,
    *,
    queued_grace: float | None = None,
) -> ReconcileReport:
    """Recover executions whose worker died or whose job was lost (see module doc).
    Safe to run from any number of processes at once."""
    repository = TaskRepository(mariadb_url)
    report = ReconcileReport()
    connection = redis_url if isinstance(redis_url, redis.Redis) else redis_client(redis_url)
    try:
        for abandonment in repository.abandon_stale(heartbeat_timeout):
            execution = abandonment.execution
            if execution.status is ExecutionStatus.STOPPED:
                report.stopped.append(execution.id)
                log.warning("execution %s stopped: %s", execution.id, execution.error)
                continue
            report.abandoned.append(execution.id)
            log.warning("execution %s abandoned: %s", execution.id, execution.error)
            if abandonment.retry is not None:
                report.retried.append(abandonment.retry.id)
                _enqueue_retry(connection, abandonment.retry)
            announce_execution_end(execution.id, execution.task_type, execution.status,
                                   execution.error,
                                   abandonment.retry.id if abandonment.retry else None)
        grace = heartbeat_timeout if queued_grace is None else queued_grace
        for execution in repository.find_queued(older_than=grace):
            if not _job_is_lost(connection, execution.rq_job_id):
                continue
            new_job_id = repository.replace_rq_job(execution.id, execution.rq_job_id)
            if new_job_id is None:
                continue
            requeued = repository.get(execution.id)
            enqueue_execution(connection, requeued)
            report.requeued.append(execution.id)
            log.warning("execution %s: job %s was lost; enqueued again as %s",
                        execution.id, execution.rq_job_id, new_job_id)
    finally:
        repository.close()
        if connection is not redis_url:
            connection.close()
    return report


def _job_is_lost(connection: redis.Redis, job_id: str | None) -> bool:
    if not job_id:
        return True
    try:
        job = Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        return True
    status = job.get_status(refresh=False)
    return status is None or status in _DEAD_JOB_STATES
