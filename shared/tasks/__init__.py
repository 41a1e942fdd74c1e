"""Tasks: every piece of back-office work, recorded, run by RQ workers, and recoverable.

- ``types``: task types, the registry (``register_task``), retry policies, statuses.
- ``repository``: instances, executions and checkpoints in MariaDB (``TaskRepository``).
- ``runner``: ``enqueue_task``, the RQ job ``run_execution``, ``TaskContext``, ``reconcile``.
- ``worker``: ``run_worker``, an RQ worker that reconciles at start-up and periodically.
- ``schedules``: cron schedules whose slots are claimed once in MariaDB.
"""

from shared.tasks.repository import (
    AlreadyCompleted,
    AlreadyRunning,
    ExecutionNotFound,
    TaskRepository,
)
from shared.tasks.types import (
    Execution,
    ExecutionStatus,
    InvalidParams,
    RetryPolicy,
    TaskError,
    TaskStopped,
    TaskType,
    Trigger,
    UnknownTaskType,
    register_task,
    task,
)

__all__ = [
    "AlreadyCompleted",
    "AlreadyRunning",
    "Execution",
    "ExecutionNotFound",
    "ExecutionStatus",
    "InvalidParams",
    "RetryPolicy",
    "TaskError",
    "TaskRepository",
    "TaskStopped",
    "TaskType",
    "Trigger",
    "UnknownTaskType",
    "register_task",
    "task",
]
