"""The task repository: instances, executions and checkpoints in MariaDB.

An *instance* is a task type plus its identifying parameters (unique). Each request to
run it creates an *execution*; its states and what moves between them:

    QUEUED ──mark_started──► STARTED ──finish──► COMPLETED | FAILED (+ QUEUED retry)
       │                        │ request_stop
       │ request_stop           ▼
       └──────► STOPPED ◄── STOPPING        STARTED/STOPPING with a silent heartbeat
                                             ──abandon_stale──► ABANDONED (+ QUEUED retry)
                                                                / STOPPED (if STOPPING)

One run per identity: a new execution is refused while another of the same instance is
QUEUED/STARTED/STOPPING (``AlreadyRunning``) or when the last one COMPLETED
(``AlreadyCompleted``, unless forced). After FAILED/STOPPED/ABANDONED the new execution
starts from the previous one's checkpoint. Every decision is taken in one transaction
holding the instance row (``SELECT ... FOR UPDATE``), so concurrent callers and
reconcilers never both act. Writes from a running execution (heartbeat, progress,
checkpoint, finish) only apply while it is STARTED/STOPPING: a process that was declared
dead and wakes up again finds its writes refused instead of corrupting the retry.
All times come from the server's UTC clock, so nodes' clocks need not agree.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import pymysql

from shared.stores.mariadb import connect
from shared.tasks.types import (
    ACTIVE_STATUSES,
    RESUMABLE_STATUSES,
    RUNNING_STATUSES,
    Execution,
    ExecutionStatus,
    RetryPolicy,
    TaskDefinition,
    TaskError,
    Trigger,
    canonical_json,
    get_task,
    params_hash,
)

_T = TypeVar("_T")
# Deadlock found / lock wait timeout: the transaction was rolled back and can be rerun.
_RETRYABLE_ERRORS = (1213, 1205)
# Server gone away / lost connection / can't connect: reconnect and rerun.
_LOST_CONNECTION_ERRORS = (2006, 2013, 2003)
_TRANSACTION_TRIES = 4
_MAX_ERROR_CHARS = 60_000
_MAX_MESSAGE_CHARS = 512


class ExecutionNotFound(TaskError):
    def __init__(self, execution_id: int):
        super().__init__(f"no task execution with id {execution_id}")
        self.execution_id = execution_id


class AlreadyRunning(TaskError):
    """The instance has an execution that is QUEUED, STARTED or STOPPING."""

    def __init__(self, task_type: str, execution_id: int, status: str):
        super().__init__(
            f"{task_type} with these parameters is already {status} as execution {execution_id}"
        )
        self.execution_id = execution_id
        self.status = status


class AlreadyCompleted(TaskError):
    """The instance's last execution COMPLETED; pass force=True to run it again."""

    def __init__(self, task_type: str, execution_id: int):
        super().__init__(
            f"{task_type} with these parameters already completed as execution "
            f"{execution_id}; force it to run again"
        )
        self.execution_id = execution_id


@dataclass(frozen=True)
class Abandonment:
    """What a reconciler did with one execution whose heartbeat went silent."""

    execution: Execution
    retry: Execution | None


_SELECT_EXECUTION = """
SELECT e.*, i.identifying_params
FROM task_execution e JOIN task_instance i ON i.id = e.instance_id
"""
_RUNNING_SQL = "('STARTED', 'STOPPING')"


class TaskRepository:
    """Reads and writes task state; safe to share between threads and across fork."""

    def __init__(self, mariadb_url: str):
        self.mariadb_url = mariadb_url
        self._local = threading.local()

    # -- plumbing -------------------------------------------------------------------

    def _connection(self) -> pymysql.connections.Connection:
        # One connection per thread and process: the heartbeat thread never shares a
        # socket with the body, and a forked work horse never reuses its parent's.
        cached = getattr(self._local, "conn", None)
        if cached is not None and cached[0] == os.getpid():
            return cached[1]
        conn = connect(self.mariadb_url, autocommit=False, dict_cursor=True)
        with conn.cursor() as cur:
            # Fewer gap locks than REPEATABLE READ: decisions rest on row locks only.
            cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        self._local.conn = (os.getpid(), conn)
        return conn

    def _discard_connection(self) -> None:
        cached = getattr(self._local, "conn", None)
        self._local.conn = None
        if cached is not None and cached[0] == os.getpid():
            try:
                cached[1].close()
            except pymysql.err.Error:
                pass

    def close(self) -> None:
        """Close this thread's connection (the next call opens a new one)."""
        self._discard_connection()

    def _transaction(self, work: Callable[[Any], _T]) -> _T:
        """Run ``work(cursor)`` in one transaction; rerun it after a deadlock or a lost
        connection (nothing of a rolled-back attempt remains)."""
        for attempt in range(1, _TRANSACTION_TRIES + 1):
            try:
                conn = self._connection()
                try:
                    with conn.cursor() as cur:
                        value = work(cur)
                    conn.commit()
                    return value
                except BaseException:
                    try:
                        conn.rollback()
                    except pymysql.err.Error:
                        self._discard_connection()
                    raise
            except (pymysql.err.OperationalError, pymysql.err.InterfaceError) as exc:
                code = exc.args[0] if exc.args else None
                if isinstance(exc, pymysql.err.InterfaceError) or code in _LOST_CONNECTION_ERRORS:
                    self._discard_connection()
                elif code not in _RETRYABLE_ERRORS:
                    raise
                if attempt == _TRANSACTION_TRIES:
                    raise
                time.sleep(0.05 * attempt)
        raise AssertionError("unreachable")

    def _query(self, sql: str, args: Any = None) -> list[dict[str, Any]]:
        def work(cur: Any) -> list[dict[str, Any]]:
            cur.execute(sql, args)
            return list(cur.fetchall())

        return self._transaction(work)

    # -- creating executions ----------------------------------------------------------

    def create_execution(
        self,
        task_type: str,
        params: Mapping[str, Any] | None,
        trigger: Trigger | str,
        force: bool = False,
        *,
        definition: TaskDefinition | None = None,
    ) -> Execution:
        """A new QUEUED execution of the instance these params identify.

        Raises ``AlreadyRunning``, ``AlreadyCompleted`` (unless ``force``: a forced run
        starts from scratch), ``UnknownTaskType`` or ``InvalidParams``.
        """
        definition = definition or get_task(task_type)
        checked = definition.check_params(params or {})
        trigger = Trigger(trigger)
        identity = definition.identifying_params(checked)
        identity_hash = params_hash(identity)

        def work(cur: Any) -> int:
            cur.execute(
                "INSERT INTO task_instance (task_type, identifying_params, params_hash) "
                "VALUES (%s, %s, %s) ON DUPLICATE KEY UPDATE id = id",
                (definition.task_type, canonical_json(identity), identity_hash),
            )
            cur.execute(
                "SELECT id FROM task_instance WHERE task_type = %s AND params_hash = %s "
                "FOR UPDATE",
                (definition.task_type, identity_hash),
            )
            instance_id = cur.fetchone()["id"]
            cur.execute(
                "SELECT id, status FROM task_execution WHERE instance_id = %s "
                "ORDER BY id DESC LIMIT 1",
                (instance_id,),
            )
            latest = cur.fetchone()
            resumed_from = None
            checkpoint: dict[str, Any] = {}
            if latest is not None:
                status = ExecutionStatus(latest["status"])
                if status in ACTIVE_STATUSES:
                    raise AlreadyRunning(definition.task_type, latest["id"], status)
                if status is ExecutionStatus.COMPLETED and not force:
                    raise AlreadyCompleted(definition.task_type, latest["id"])
                if status in RESUMABLE_STATUSES and not force:
                    resumed_from = latest["id"]
                    checkpoint = _read_checkpoint(cur, latest["id"])
            return _insert_execution(
                cur,
                instance_id=instance_id,
                task_type=definition.task_type,
                trigger=trigger,
                attempt=1,
                queue=definition.queue,
                job_timeout=definition.timeout,
                retry=definition.retry,
                params=checked,
                resumed_from=resumed_from,
                checkpoint=checkpoint,
            )

        return self.get(self._transaction(work))

    # -- reading ----------------------------------------------------------------------

    def get(self, execution_id: int) -> Execution:
        rows = self._query(_SELECT_EXECUTION + " WHERE e.id = %s", (execution_id,))
        if not rows:
            raise ExecutionNotFound(execution_id)
        return _execution_from_row(rows[0])

    def list_executions(
        self,
        *,
        task_type: str | None = None,
        status: ExecutionStatus | str | Iterable[ExecutionStatus | str] | None = None,
        instance_id: int | None = None,
        trigger: Trigger | str | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[Execution]:
        """Newest first; ``before_id`` pages back."""
        where, args = [], []
        if task_type is not None:
            where.append("e.task_type = %s")
            args.append(str(task_type))
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            statuses = [ExecutionStatus(s).value for s in statuses]
            if not statuses:
                return []
            where.append(f"e.status IN ({', '.join(['%s'] * len(statuses))})")
            args.extend(statuses)
        if instance_id is not None:
            where.append("e.instance_id = %s")
            args.append(instance_id)
        if trigger is not None:
            where.append("e.`trigger` = %s")
            args.append(Trigger(trigger).value)
        if before_id is not None:
            where.append("e.id < %s")
            args.append(before_id)
        limit = max(1, min(int(limit), 1000))
        sql = _SELECT_EXECUTION
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY e.id DESC LIMIT %s"
        return [_execution_from_row(row) for row in self._query(sql, (*args, limit))]

    def load_checkpoint(self, execution_id: int) -> dict[str, Any]:
        return self._transaction(lambda cur: _read_checkpoint(cur, execution_id))

    # -- a running execution's writes ----------------------------------------------------

    def mark_started(self, execution_id: int, node: str, rq_job_id: str | None) -> bool:
        """QUEUED → STARTED. False when the execution is no longer QUEUED, or when
        ``rq_job_id`` is not the job the execution was last enqueued as (a stale duplicate)."""
        sql = (
            "UPDATE task_execution SET status = 'STARTED', node = %s, "
            "started_at = UTC_TIMESTAMP(6), heartbeat_at = UTC_TIMESTAMP(6) "
            "WHERE id = %s AND status = 'QUEUED'"
        )
        args: list[Any] = [node[:255], execution_id]
        if rq_job_id is not None:
            sql += " AND (rq_job_id IS NULL OR rq_job_id = %s)"
            args.append(rq_job_id)
        return self._transaction(lambda cur: cur.execute(sql, args) == 1)

    def heartbeat(self, execution_id: int) -> ExecutionStatus | None:
        """Refresh the heartbeat of a running execution; returns its status now (STOPPING
        asks the body to stop; anything not running means this process lost it)."""

        def work(cur: Any) -> dict[str, Any] | None:
            cur.execute(
                "UPDATE task_execution SET heartbeat_at = UTC_TIMESTAMP(6) "
                f"WHERE id = %s AND status IN {_RUNNING_SQL}",
                (execution_id,),
            )
            cur.execute("SELECT status FROM task_execution WHERE id = %s", (execution_id,))
            return cur.fetchone()

        row = self._transaction(work)
        return None if row is None else ExecutionStatus(row["status"])

    def set_progress(
        self,
        execution_id: int,
        percent: float,
        message: str | None = None,
        counters: Mapping[str, Any] | None = None,
    ) -> bool:
        """Progress 0-100 (clamped) with a message and counters; also a heartbeat."""
        if isinstance(percent, bool) or not isinstance(percent, int | float):
            raise ValueError(f"progress must be a number, got {percent!r}")
        value = int(max(0, min(100, percent)))
        counters_json = None if counters is None else canonical_json(dict(counters))

        def work(cur: Any) -> bool:
            cur.execute(
                "UPDATE task_execution SET progress = %s, progress_message = %s, "
                "counters = COALESCE(%s, counters), heartbeat_at = UTC_TIMESTAMP(6) "
                f"WHERE id = %s AND status IN {_RUNNING_SQL}",
                (value, _clip(message, _MAX_MESSAGE_CHARS), counters_json, execution_id),
            )
            cur.execute(
                f"SELECT 1 FROM task_execution WHERE id = %s AND status IN {_RUNNING_SQL}",
                (execution_id,),
            )
            return cur.fetchone() is not None

        return self._transaction(work)

    def save_checkpoint(self, execution_id: int, data: Mapping[str, Any]) -> bool:
        """Replace the execution's checkpoint; False when it is no longer running."""
        encoded = canonical_json(dict(data))

        def work(cur: Any) -> bool:
            cur.execute(
                "SELECT status FROM task_execution WHERE id = %s FOR UPDATE", (execution_id,)
            )
            row = cur.fetchone()
            if row is None or ExecutionStatus(row["status"]) not in RUNNING_STATUSES:
                return False
            cur.execute(
                "INSERT INTO task_execution_context (execution_id, checkpoint) VALUES (%s, %s) "
                "ON DUPLICATE KEY UPDATE checkpoint = VALUES(checkpoint), "
                "updated_at = UTC_TIMESTAMP(6)",
                (execution_id, encoded),
            )
            return True

        return self._transaction(work)

    def finish(
        self,
        execution_id: int,
        status: ExecutionStatus | str,
        error: str | None = None,
        result: Any = None,
    ) -> bool:
        """End a running execution as COMPLETED, STOPPED or FAILED (no retry: see ``fail``).
        False when it was not running (another process already decided its fate)."""
        status = ExecutionStatus(status)
        if status not in (
            ExecutionStatus.COMPLETED, ExecutionStatus.STOPPED, ExecutionStatus.FAILED
        ):
            raise ValueError(f"finish() ends as COMPLETED, STOPPED or FAILED, not {status}")

        def work(cur: Any) -> bool:
            row = _lock_execution(cur, execution_id)
            if ExecutionStatus(row["status"]) not in RUNNING_STATUSES:
                return False
            _end(cur, execution_id, status, error, result)
            return True

        return self._transaction(work)

    def fail(self, execution_id: int, error: str,
             retry: bool = True) -> tuple[bool, Execution | None]:
        """STARTED/STOPPING → FAILED; if it was STARTED, ``retry`` holds and its retry
        policy allows another attempt, a QUEUED retry execution is created in the same
        transaction. Returns (whether this call ended it, the retry execution or None)."""

        def work(cur: Any) -> tuple[bool, int | None]:
            row = _lock_execution(cur, execution_id)
            status = ExecutionStatus(row["status"])
            if status not in RUNNING_STATUSES:
                return False, None
            _end(cur, execution_id, ExecutionStatus.FAILED, error, None)
            if status is ExecutionStatus.STOPPING or not retry:
                return True, None
            return True, _insert_retry(cur, row)

        ended, retry_id = self._transaction(work)
        return ended, None if retry_id is None else self.get(retry_id)

    def request_stop(self, execution_id: int) -> ExecutionStatus:
        """QUEUED → STOPPED at once; STARTED → STOPPING (the body stops at its next check).
        Other states are left alone. Returns the status after the call."""

        def work(cur: Any) -> ExecutionStatus:
            row = _lock_execution(cur, execution_id)
            status = ExecutionStatus(row["status"])
            if status is ExecutionStatus.QUEUED:
                _end(cur, execution_id, ExecutionStatus.STOPPED, None, None)
                return ExecutionStatus.STOPPED
            if status is ExecutionStatus.STARTED:
                cur.execute(
                    "UPDATE task_execution SET status = 'STOPPING' WHERE id = %s",
                    (execution_id,),
                )
                return ExecutionStatus.STOPPING
            return status

        return self._transaction(work)

    # -- recovery -----------------------------------------------------------------------

    def find_stale(self, heartbeat_timeout: float) -> list[Execution]:
        """STARTED/STOPPING executions whose heartbeat is older than the timeout."""
        rows = self._query(
            _SELECT_EXECUTION + f" WHERE e.status IN {_RUNNING_SQL} AND "
            "COALESCE(e.heartbeat_at, e.started_at, e.created_at) < "
            "UTC_TIMESTAMP(6) - INTERVAL %s MICROSECOND ORDER BY e.id",
            (_micros(heartbeat_timeout),),
        )
        return [_execution_from_row(row) for row in rows]

    def abandon_stale(self, heartbeat_timeout: float) -> list[Abandonment]:
        """STARTED → ABANDONED (+ a QUEUED retry per its policy) and STOPPING → STOPPED for
        every execution silent longer than the timeout. Each is re-checked under its lock,
        so of two reconcilers exactly one acts on a given execution."""
        done: list[Abandonment] = []
        for stale in self.find_stale(heartbeat_timeout):

            def work(cur: Any, execution_id: int = stale.id) -> tuple[bool, int | None]:
                row = _lock_execution(cur, execution_id)
                status = ExecutionStatus(row["status"])
                cur.execute(
                    "SELECT COALESCE(heartbeat_at, started_at, created_at) "
                    "< UTC_TIMESTAMP(6) - INTERVAL %s MICROSECOND AS stale, "
                    "COALESCE(heartbeat_at, started_at, created_at) AS last_seen "
                    "FROM task_execution WHERE id = %s",
                    (_micros(heartbeat_timeout), execution_id),
                )
                check = cur.fetchone()
                if status not in RUNNING_STATUSES or not check["stale"]:
                    return False, None
                reason = (
                    f"heartbeat silent for more than {heartbeat_timeout:g}s "
                    f"(last at {check['last_seen']} UTC on node {row['node']})"
                )
                if status is ExecutionStatus.STOPPING:
                    _end(cur, execution_id, ExecutionStatus.STOPPED, reason, None)
                    return True, None
                _end(cur, execution_id, ExecutionStatus.ABANDONED, reason, None)
                return True, _insert_retry(cur, row)

            acted, retry_id = self._transaction(work)
            if acted:
                done.append(
                    Abandonment(
                        execution=self.get(stale.id),
                        retry=None if retry_id is None else self.get(retry_id),
                    )
                )
        return done

    def find_queued(self, older_than: float) -> list[Execution]:
        """QUEUED executions created more than ``older_than`` seconds ago (candidates for a
        lost RQ job; the caller checks Redis)."""
        rows = self._query(
            _SELECT_EXECUTION + " WHERE e.status = 'QUEUED' AND "
            "e.created_at < UTC_TIMESTAMP(6) - INTERVAL %s MICROSECOND ORDER BY e.id",
            (_micros(older_than),),
        )
        return [_execution_from_row(row) for row in rows]

    def replace_rq_job(self, execution_id: int, old_job_id: str | None) -> str | None:
        """Give a still-QUEUED execution a new RQ job id (its old job was lost); None when
        it is no longer QUEUED or another process replaced the job first."""
        new_job_id = new_rq_job_id(execution_id)
        changed = self._transaction(lambda cur: cur.execute(
            "UPDATE task_execution SET rq_job_id = %s "
            "WHERE id = %s AND status = 'QUEUED' AND rq_job_id <=> %s",
            (new_job_id, execution_id, old_job_id),
        ))
        return new_job_id if changed == 1 else None


# -- row helpers (inside a transaction) ------------------------------------------------


def new_rq_job_id(execution_id: int) -> str:
    # Unique across databases sharing one Redis (tests, restored backups).
    return f"task-{execution_id}-{uuid.uuid4().hex[:12]}"


def _insert_execution(
    cur: Any,
    *,
    instance_id: int,
    task_type: str,
    trigger: Trigger,
    attempt: int,
    queue: str,
    job_timeout: int | None,
    retry: RetryPolicy,
    params: Mapping[str, Any],
    resumed_from: int | None,
    checkpoint: Mapping[str, Any],
) -> int:
    cur.execute(
        "INSERT INTO task_execution (instance_id, task_type, status, `trigger`, attempt, "
        "queue, job_timeout, max_retries, retry_backoff, params, resumed_from_execution_id) "
        "VALUES (%s, %s, 'QUEUED', %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            instance_id,
            task_type,
            trigger.value,
            attempt,
            queue,
            job_timeout,
            retry.max_retries,
            json.dumps(list(retry.backoff)),
            canonical_json(dict(params)),
            resumed_from,
        ),
    )
    execution_id = cur.lastrowid
    cur.execute(
        "UPDATE task_execution SET rq_job_id = %s WHERE id = %s",
        (new_rq_job_id(execution_id), execution_id),
    )
    cur.execute(
        "INSERT INTO task_execution_context (execution_id, checkpoint) VALUES (%s, %s)",
        (execution_id, canonical_json(dict(checkpoint))),
    )
    return execution_id


def _insert_retry(cur: Any, failed: Mapping[str, Any]) -> int | None:
    policy = _retry_policy(failed)
    if not policy.allows_retry_after(failed["attempt"]):
        return None
    return _insert_execution(
        cur,
        instance_id=failed["instance_id"],
        task_type=failed["task_type"],
        trigger=Trigger.RETRY,
        attempt=failed["attempt"] + 1,
        queue=failed["queue"],
        job_timeout=failed["job_timeout"],
        retry=policy,
        params=json.loads(failed["params"]),
        resumed_from=failed["id"],
        checkpoint=_read_checkpoint(cur, failed["id"]),
    )


def _lock_execution(cur: Any, execution_id: int) -> dict[str, Any]:
    # Instance row first, as create_execution does, so lock order is the same everywhere.
    cur.execute("SELECT instance_id FROM task_execution WHERE id = %s", (execution_id,))
    row = cur.fetchone()
    if row is None:
        raise ExecutionNotFound(execution_id)
    cur.execute("SELECT id FROM task_instance WHERE id = %s FOR UPDATE", (row["instance_id"],))
    cur.execute("SELECT * FROM task_execution WHERE id = %s FOR UPDATE", (execution_id,))
    return cur.fetchone()


def _end(
    cur: Any, execution_id: int, status: ExecutionStatus, error: str | None, result: Any
) -> None:
    progress_sql = ", progress = 100" if status is ExecutionStatus.COMPLETED else ""
    cur.execute(
        f"UPDATE task_execution SET status = %s, error = %s, result = %s, "
        f"ended_at = UTC_TIMESTAMP(6){progress_sql} WHERE id = %s",
        (
            status.value,
            _clip(error, _MAX_ERROR_CHARS),
            None if result is None else canonical_json(result),
            execution_id,
        ),
    )


def _read_checkpoint(cur: Any, execution_id: int) -> dict[str, Any]:
    cur.execute(
        "SELECT checkpoint FROM task_execution_context WHERE execution_id = %s", (execution_id,)
    )
    row = cur.fetchone()
    return {} if row is None else json.loads(row["checkpoint"])


def _retry_policy(row: Mapping[str, Any]) -> RetryPolicy:
    return RetryPolicy(
        max_retries=row["max_retries"], backoff=tuple(json.loads(row["retry_backoff"]))
    )


def _execution_from_row(row: Mapping[str, Any]) -> Execution:
    return Execution(
        id=row["id"],
        instance_id=row["instance_id"],
        task_type=row["task_type"],
        status=ExecutionStatus(row["status"]),
        trigger=Trigger(row["trigger"]),
        attempt=row["attempt"],
        progress=row["progress"],
        progress_message=row["progress_message"],
        counters=json.loads(row["counters"]) if row["counters"] else {},
        result=json.loads(row["result"]) if row["result"] is not None else None,
        error=row["error"],
        node=row["node"],
        rq_job_id=row["rq_job_id"],
        queue=row["queue"],
        job_timeout=row["job_timeout"],
        retry=_retry_policy(row),
        params=json.loads(row["params"]),
        identifying_params=json.loads(row["identifying_params"]),
        created_at=_utc(row["created_at"]),
        started_at=_utc(row["started_at"]),
        heartbeat_at=_utc(row["heartbeat_at"]),
        ended_at=_utc(row["ended_at"]),
        resumed_from_execution_id=row["resumed_from_execution_id"],
    )


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


def _micros(seconds: float) -> int:
    return max(0, int(seconds * 1_000_000))


def _clip(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 20] + "\n…(truncated)"
