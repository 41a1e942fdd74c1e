"""The runner in this process: enqueue_task → a real RQ job on real Redis, executed by
rq's SimpleWorker in burst mode, recorded in MariaDB; lost jobs found by reconcile."""

from __future__ import annotations

import pytest
from rq import Queue, SimpleWorker

from shared.stores.mariadb import connect
from shared.stores.redis import redis_client
from shared.tasks import runner
from shared.tasks.repository import AlreadyCompleted, TaskRepository
from shared.tasks.runner import RunnerSettings, enqueue_task, reconcile
from shared.tasks.types import ExecutionStatus, Trigger
from tests.integration.shared.tasks.sample_tasks import (
    ALWAYS_FAILS_TASK,
    REFUSES_TASK,
    STEPS_TASK,
    create_side_tables,
)

pytestmark = pytest.mark.integration

QUEUE = "tasks-test"


@pytest.fixture
def stores(mariadb_url, redis_url, monkeypatch):
    # The job reads its MariaDB URL from the process (as a worker's forked horse does);
    # the sample bodies read theirs from the environment.
    monkeypatch.setattr(runner, "_process_config", runner._ProcessConfig(
        mariadb_url, RunnerSettings(heartbeat_interval=0.2, stop_check_interval=0.1)))
    monkeypatch.setenv("TOONPICK_PROFILE", "test")
    monkeypatch.setenv("TOONPICK_MARIADB_URL", mariadb_url)
    create_side_tables(mariadb_url)
    connection = redis_client(redis_url)
    yield mariadb_url, redis_url, connection
    connection.close()


def _work(connection) -> None:
    SimpleWorker([Queue(QUEUE, connection=connection)], connection=connection).work(
        burst=True, with_scheduler=False)


def _steps(mariadb_url: str, run_key: str) -> list[tuple[int, int]]:
    conn = connect(mariadb_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT execution_id, step FROM sample_step WHERE run_key = %s "
                        "ORDER BY id", (run_key,))
            return [tuple(row) for row in cur.fetchall()]
    finally:
        conn.close()


def test_a_task_runs_to_completion_with_progress_and_result(stores):
    mariadb_url, redis_url, connection = stores
    execution_id = enqueue_task(mariadb_url, redis_url, STEPS_TASK,
                                {"run_key": "r1", "steps": 4, "step_seconds": 0.01}, "api")
    job_id = TaskRepository(mariadb_url).get(execution_id).rq_job_id
    assert Queue(QUEUE, connection=connection).job_ids == [job_id]
    _work(connection)

    done = TaskRepository(mariadb_url).get(execution_id)
    assert done.status is ExecutionStatus.COMPLETED, done.error
    assert done.progress == 100 and done.progress_message == "step 4/4"
    assert done.counters == {"steps_done": 4} and done.result == {"steps": 4}
    assert done.node and done.started_at and done.heartbeat_at and done.ended_at
    assert TaskRepository(mariadb_url).load_checkpoint(execution_id) == {"next_step": 4}
    assert _steps(mariadb_url, "r1") == [(execution_id, s) for s in range(4)]
    with pytest.raises(AlreadyCompleted):
        enqueue_task(mariadb_url, redis_url, STEPS_TASK, {"run_key": "r1", "steps": 4}, "api")


def test_failures_are_recorded_and_retried_as_executions_until_the_policy_ends(stores):
    mariadb_url, redis_url, connection = stores
    first = enqueue_task(mariadb_url, redis_url, ALWAYS_FAILS_TASK, {"run_key": "f"}, "message")
    _work(connection)  # the retry (backoff 0) is enqueued while the burst runs

    executions = TaskRepository(mariadb_url).list_executions(task_type=ALWAYS_FAILS_TASK)
    assert [(e.status, e.trigger, e.attempt) for e in reversed(executions)] == [
        (ExecutionStatus.FAILED, Trigger.MESSAGE, 1),
        (ExecutionStatus.FAILED, Trigger.RETRY, 2),
    ]
    assert executions[0].resumed_from_execution_id == first
    assert "ValueError: always fails (f, attempt 1)" in executions[1].error
    assert "Traceback" in executions[1].error


def test_a_body_refusing_its_input_fails_once_without_retries(stores):
    mariadb_url, redis_url, connection = stores
    enqueue_task(mariadb_url, redis_url, REFUSES_TASK, {"run_key": "x"}, "api")
    _work(connection)

    executions = TaskRepository(mariadb_url).list_executions(task_type=REFUSES_TASK)
    assert [(e.status, e.attempt) for e in executions] == [(ExecutionStatus.FAILED, 1)]
    assert executions[0].error == "InvalidParams: nothing to work on for x"


def test_a_job_lost_from_redis_is_enqueued_again_by_reconcile(stores):
    mariadb_url, redis_url, connection = stores
    execution_id = enqueue_task(mariadb_url, redis_url, STEPS_TASK,
                                {"run_key": "lost", "steps": 2, "step_seconds": 0.01}, "api")
    connection.flushdb()  # Redis lost everything: the execution is QUEUED in MariaDB only

    assert not reconcile(mariadb_url, redis_url, heartbeat_timeout=30)  # still in its grace
    report = reconcile(mariadb_url, redis_url, heartbeat_timeout=30, queued_grace=0)
    assert report.requeued == [execution_id]
    assert not reconcile(mariadb_url, redis_url, heartbeat_timeout=30, queued_grace=0)
    _work(connection)
    assert TaskRepository(mariadb_url).get(execution_id).status is ExecutionStatus.COMPLETED


def test_a_stale_duplicate_job_does_not_run_the_execution_twice(stores):
    mariadb_url, redis_url, connection = stores
    execution_id = enqueue_task(mariadb_url, redis_url, STEPS_TASK,
                                {"run_key": "dup", "steps": 2, "step_seconds": 0.01}, "api")
    repo = TaskRepository(mariadb_url)
    old_job = repo.get(execution_id).rq_job_id
    # A reconciler gave it a new job while the old one still sat in the queue.
    assert repo.replace_rq_job(execution_id, old_job)
    runner.enqueue_execution(connection, repo.get(execution_id))
    _work(connection)

    assert repo.get(execution_id).status is ExecutionStatus.COMPLETED
    assert [step for _, step in _steps(mariadb_url, "dup")] == [0, 1]


def test_a_process_declared_dead_finds_its_writes_refused(stores):
    mariadb_url, _, _ = stores
    repo = TaskRepository(mariadb_url)
    execution = repo.create_execution(STEPS_TASK, {"run_key": "zombie", "steps": 3}, "api")
    assert repo.mark_started(execution.id, "paused-node:1", execution.rq_job_id)
    context = runner.TaskContext(repo, repo.get(execution.id), {}, stop_check_interval=0)
    context.save_checkpoint({"next_step": 1})
    assert not context.should_stop()

    conn = connect(mariadb_url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("UPDATE task_execution SET heartbeat_at = heartbeat_at - INTERVAL 1 HOUR "
                        "WHERE id = %s", (execution.id,))
    finally:
        conn.close()
    assert [a.execution.id for a in repo.abandon_stale(60)] == [execution.id]

    with pytest.raises(runner.ExecutionLost):
        context.save_checkpoint({"next_step": 2})
    assert context.should_stop() and context.lost
    assert repo.load_checkpoint(execution.id) == {"next_step": 1}


def test_an_execution_of_a_type_this_worker_does_not_know_fails_without_retry(stores):
    from shared.tasks.types import get_task, register_task, unregister_task

    mariadb_url, redis_url, connection = stores
    definition = register_task("TEST_VANISHING", get_task(ALWAYS_FAILS_TASK).fn,
                               queue=QUEUE, retry=get_task(ALWAYS_FAILS_TASK).retry)
    try:
        execution_id = enqueue_task(mariadb_url, redis_url, "TEST_VANISHING", {"run_key": "v"},
                                    "api")
    finally:
        unregister_task(definition.task_type)
    _work(connection)

    executions = TaskRepository(mariadb_url).list_executions(task_type="TEST_VANISHING")
    assert [e.id for e in executions] == [execution_id]
    assert executions[0].status is ExecutionStatus.FAILED
    assert "not registered" in executions[0].error
