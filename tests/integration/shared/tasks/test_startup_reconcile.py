"""Every task process settles executions left STARTED by dead workers when it starts."""

from __future__ import annotations

import pytest

from shared.config import load_config
from shared.stores.mariadb import connect
from shared.tasks.repository import TaskRepository
from shared.tasks.runner import reconcile_at_startup
from shared.tasks.types import ExecutionStatus, RetryPolicy, register_task

pytestmark = pytest.mark.integration

TASK_TYPE = "TEST_STARTUP_RECONCILE"


def _noop(ctx) -> None:
    return None


register_task(TASK_TYPE, _noop, retry=RetryPolicy(max_retries=0), identifying=())


def test_an_execution_left_started_by_a_dead_worker_is_abandoned_at_startup(
        mariadb_url, redis_url):
    repository = TaskRepository(mariadb_url)
    execution = repository.create_execution(TASK_TYPE, {}, "api")
    assert repository.mark_started(execution.id, "gone-host:1", execution.rq_job_id)
    # The worker died long ago: its last heartbeat is an hour old.
    conn = connect(mariadb_url)
    with conn.cursor() as cur:
        cur.execute("UPDATE task_execution SET heartbeat_at = NOW(6) - INTERVAL 1 HOUR"
                    " WHERE id = %s", (execution.id,))
    conn.commit()
    conn.close()

    config = load_config(environ={"TOONPICK_PROFILE": "test", "TOONPICK_MARIADB_URL": mariadb_url,
                                  "REDIS_URL": redis_url})
    report = reconcile_at_startup(config)

    assert execution.id in report.abandoned
    assert repository.get(execution.id).status == ExecutionStatus.ABANDONED
    assert reconcile_at_startup(config).abandoned == []  # settled once
    repository.close()
