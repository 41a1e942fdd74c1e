"""Task bodies for the task-system tests, importable by worker subprocesses
(``--task-module tests.integration.shared.tasks.sample_tasks``).

``counted_steps`` does N steps, records each processed step in the MariaDB side table
``sample_step`` (execution id, step) and checkpoints after each one; at the end it
records its result once in ``sample_result``. The tests read those tables to prove
what was (re)done.
"""

from __future__ import annotations

import time
from typing import Any

from shared.config import load_config
from shared.stores.mariadb import connect
from shared.tasks.runner import TaskContext
from shared.tasks.types import InvalidParams, RetryPolicy, TaskStopped, register_task

STEPS_TASK = "TEST_COUNTED_STEPS"
# The same body, retried after a backoff: a retry that RQ's scheduler must promote.
STEPS_BACKOFF_TASK = "TEST_COUNTED_STEPS_BACKOFF"
STEPS_BACKOFF_SECONDS = 3.0
FLAKY_TASK = "TEST_FLAKY"
ALWAYS_FAILS_TASK = "TEST_ALWAYS_FAILS"
REFUSES_TASK = "TEST_REFUSES_INPUT"

SIDE_TABLES = (
    "CREATE TABLE IF NOT EXISTS sample_step (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
    "run_key VARCHAR(64) NOT NULL, execution_id BIGINT NOT NULL, step INT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS sample_result (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
    "run_key VARCHAR(64) NOT NULL, execution_id BIGINT NOT NULL, total INT NOT NULL)",
)


def create_side_tables(mariadb_url: str) -> None:
    conn = connect(mariadb_url, autocommit=True)
    try:
        with conn.cursor() as cur:
            for ddl in SIDE_TABLES:
                cur.execute(ddl)
    finally:
        conn.close()


def _record(sql: str, args: tuple[Any, ...]) -> None:
    conn = connect(load_config().mariadb_url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
    finally:
        conn.close()


def counted_steps(
    ctx: TaskContext, run_key: str, steps: int, step_seconds: float = 0.1
) -> dict[str, Any]:
    for step in range(int(ctx.checkpoint.get("next_step", 0)), steps):
        if ctx.should_stop():
            raise TaskStopped(f"stopped before step {step}")
        time.sleep(step_seconds)
        _record("INSERT INTO sample_step (run_key, execution_id, step) VALUES (%s, %s, %s)",
                (run_key, ctx.execution_id, step))
        ctx.save_checkpoint({"next_step": step + 1})
        ctx.progress(100 * (step + 1) / steps, f"step {step + 1}/{steps}", steps_done=step + 1)
    _record("INSERT INTO sample_result (run_key, execution_id, total) VALUES (%s, %s, %s)",
            (run_key, ctx.execution_id, steps))
    return {"steps": steps}


def flaky(ctx: TaskContext, run_key: str) -> dict[str, Any]:
    """Fails on its first attempt after checkpointing phase 1; succeeds when retried."""
    if ctx.attempt == 1:
        ctx.save_checkpoint({"phase": 1})
        raise RuntimeError("flaky failure on the first attempt")
    return {"resumed_from": ctx.checkpoint, "attempt": ctx.attempt}


def always_fails(ctx: TaskContext, run_key: str) -> None:
    raise ValueError(f"always fails ({run_key}, attempt {ctx.attempt})")


def refuses_input(ctx: TaskContext, run_key: str) -> None:
    raise InvalidParams(f"nothing to work on for {run_key}")


# An abandoned execution has already waited out the heartbeat timeout: retry it at once.
register_task(STEPS_TASK, counted_steps, identifying=("run_key",),
              retry=RetryPolicy(max_retries=2, backoff=(0,)), queue="tasks-test", timeout=120)
register_task(STEPS_BACKOFF_TASK, counted_steps, identifying=("run_key",),
              retry=RetryPolicy(max_retries=2, backoff=(STEPS_BACKOFF_SECONDS,)),
              queue="tasks-test", timeout=120)
register_task(FLAKY_TASK, flaky, retry=RetryPolicy(max_retries=2, backoff=(1.0,)),
              queue="tasks-test", timeout=60)
register_task(ALWAYS_FAILS_TASK, always_fails, retry=RetryPolicy(max_retries=1, backoff=(0,)),
              queue="tasks-test", timeout=60)
register_task(REFUSES_TASK, refuses_input, retry=RetryPolicy(max_retries=2, backoff=(0,)),
              queue="tasks-test", timeout=60)
