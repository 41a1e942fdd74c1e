"""TaskRepository on a real MariaDB: identity, one run per instance, restarts from the
checkpoint, stop transitions, and stale-heartbeat recovery under concurrency."""

from __future__ import annotations

import threading

import pytest

from shared.stores.mariadb import connect
from shared.tasks.repository import (
    AlreadyCompleted,
    AlreadyRunning,
    ExecutionNotFound,
    TaskRepository,
)
from shared.tasks.types import ExecutionStatus, InvalidParams, Trigger, UnknownTaskType
from tests.integration.shared.tasks.sample_tasks import ALWAYS_FAILS_TASK, STEPS_TASK

pytestmark = pytest.mark.integration


@pytest.fixture
def repo(mariadb_url: str) -> TaskRepository:
    return TaskRepository(mariadb_url)


def _age_heartbeat(mariadb_url: str, execution_id: int, seconds: float) -> None:
    conn = connect(mariadb_url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "UPDATE task_execution SET heartbeat_at = UTC_TIMESTAMP(6) - INTERVAL %s SECOND "
                "WHERE id = %s", (seconds, execution_id))
    finally:
        conn.close()


def _start(repo: TaskRepository, execution_id: int) -> None:
    execution = repo.get(execution_id)
    assert repo.mark_started(execution_id, "test-node:1", execution.rq_job_id)


def test_same_identifying_params_are_one_instance(repo):
    first = repo.create_execution(STEPS_TASK, {"run_key": "a", "steps": 3}, Trigger.API)
    assert first.status is ExecutionStatus.QUEUED
    assert first.attempt == 1 and first.trigger is Trigger.API
    assert first.identifying_params == {"run_key": "a"}
    assert first.params == {"run_key": "a", "steps": 3}
    assert first.rq_job_id.startswith(f"task-{first.id}-")
    assert first.queue == "tasks-test" and first.retry.max_retries == 2
    # steps is not identifying: a different value is still the same, running, instance.
    with pytest.raises(AlreadyRunning) as caught:
        repo.create_execution(STEPS_TASK, {"run_key": "a", "steps": 99}, Trigger.SCHEDULE)
    assert caught.value.execution_id == first.id
    other = repo.create_execution(STEPS_TASK, {"run_key": "b", "steps": 3}, Trigger.API)
    assert other.instance_id != first.instance_id


def test_completed_instance_runs_again_only_when_forced(repo):
    first = repo.create_execution(STEPS_TASK, {"run_key": "a", "steps": 3}, Trigger.API)
    _start(repo, first.id)
    assert repo.save_checkpoint(first.id, {"next_step": 3})
    assert repo.set_progress(first.id, 60, "step 2/3", {"steps_done": 2})
    assert repo.finish(first.id, ExecutionStatus.COMPLETED, result={"steps": 3})
    done = repo.get(first.id)
    assert done.status is ExecutionStatus.COMPLETED and done.progress == 100
    assert done.result == {"steps": 3} and done.counters == {"steps_done": 2}
    assert done.ended_at >= done.started_at

    with pytest.raises(AlreadyCompleted) as caught:
        repo.create_execution(STEPS_TASK, {"run_key": "a", "steps": 3}, Trigger.SCHEDULE)
    assert caught.value.execution_id == first.id
    forced = repo.create_execution(STEPS_TASK, {"run_key": "a", "steps": 3}, Trigger.API,
                                   force=True)
    # A forced run starts over: the completed run's checkpoint says "all done".
    assert forced.instance_id == first.instance_id
    assert forced.resumed_from_execution_id is None
    assert repo.load_checkpoint(forced.id) == {}


def test_failure_creates_a_retry_resuming_from_the_checkpoint_until_retries_run_out(repo):
    first = repo.create_execution(ALWAYS_FAILS_TASK, {"run_key": "x"}, Trigger.MESSAGE)
    _start(repo, first.id)
    assert repo.save_checkpoint(first.id, {"page": 4})
    ended, retry = repo.fail(first.id, "ValueError: boom")
    assert ended and retry is not None
    failed = repo.get(first.id)
    assert failed.status is ExecutionStatus.FAILED and failed.error == "ValueError: boom"
    assert retry.status is ExecutionStatus.QUEUED and retry.trigger is Trigger.RETRY
    assert retry.attempt == 2 and retry.resumed_from_execution_id == first.id
    assert retry.params == first.params and retry.instance_id == first.instance_id
    assert repo.load_checkpoint(retry.id) == {"page": 4}

    _start(repo, retry.id)
    ended, second_retry = repo.fail(retry.id, "ValueError: again")
    assert ended and second_retry is None  # max_retries=1
    # A later manual restart resumes from the same checkpoint, as attempt 1 of a new run.
    restart = repo.create_execution(ALWAYS_FAILS_TASK, {"run_key": "x"}, Trigger.API)
    assert restart.attempt == 1 and restart.resumed_from_execution_id == retry.id
    assert repo.load_checkpoint(restart.id) == {"page": 4}


def test_stop_transitions_and_restart_from_checkpoint(repo):
    queued = repo.create_execution(STEPS_TASK, {"run_key": "q", "steps": 5}, Trigger.API)
    assert repo.request_stop(queued.id) is ExecutionStatus.STOPPED
    assert repo.get(queued.id).ended_at is not None
    assert not repo.mark_started(queued.id, "late-node:1", queued.rq_job_id)

    running = repo.create_execution(STEPS_TASK, {"run_key": "q", "steps": 5}, Trigger.API)
    assert running.resumed_from_execution_id == queued.id
    _start(repo, running.id)
    assert repo.save_checkpoint(running.id, {"next_step": 2})
    assert repo.request_stop(running.id) is ExecutionStatus.STOPPING
    assert repo.heartbeat(running.id) is ExecutionStatus.STOPPING
    assert repo.save_checkpoint(running.id, {"next_step": 3})  # still its own while stopping
    assert repo.finish(running.id, ExecutionStatus.STOPPED)
    assert repo.request_stop(running.id) is ExecutionStatus.STOPPED  # no-op once ended

    restart = repo.create_execution(STEPS_TASK, {"run_key": "q", "steps": 5}, Trigger.API)
    assert restart.resumed_from_execution_id == running.id
    assert repo.load_checkpoint(restart.id) == {"next_step": 3}


def test_writes_of_an_execution_that_is_not_running_are_refused(repo):
    execution = repo.create_execution(STEPS_TASK, {"run_key": "w", "steps": 1}, Trigger.API)
    assert not repo.save_checkpoint(execution.id, {"next_step": 1})
    assert not repo.set_progress(execution.id, 50)
    assert not repo.finish(execution.id, ExecutionStatus.COMPLETED)
    assert repo.fail(execution.id, "x") == (False, None)
    assert repo.heartbeat(execution.id) is ExecutionStatus.QUEUED
    # A stale duplicate of the job (another job id) cannot start it.
    assert not repo.mark_started(execution.id, "n:1", "task-0-stale")
    with pytest.raises(ValueError):
        repo.finish(execution.id, ExecutionStatus.ABANDONED)
    with pytest.raises(ValueError):
        repo.set_progress(execution.id, "half")
    with pytest.raises(ExecutionNotFound):
        repo.get(10**9)
    with pytest.raises(ExecutionNotFound):
        repo.request_stop(10**9)


def test_bad_requests_are_refused_before_anything_is_recorded(repo):
    with pytest.raises(UnknownTaskType):
        repo.create_execution("NOT_A_TASK", {}, Trigger.API)
    with pytest.raises(InvalidParams):
        repo.create_execution(STEPS_TASK, {"run_key": "a", "colour": "red"}, Trigger.API)
    with pytest.raises(ValueError):
        repo.create_execution(STEPS_TASK, {"run_key": "a", "steps": 1}, "cron")
    assert repo.list_executions() == []


def test_concurrent_creates_make_exactly_one_execution(repo):
    outcomes: list[object] = []

    def create() -> None:
        try:
            outcomes.append(repo.create_execution(STEPS_TASK, {"run_key": "c", "steps": 1},
                                                  Trigger.SCHEDULE))
        except AlreadyRunning as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    created = [o for o in outcomes if not isinstance(o, AlreadyRunning)]
    assert len(outcomes) == 8 and len(created) == 1
    assert len(repo.list_executions(task_type=STEPS_TASK)) == 1


def test_stale_executions_are_abandoned_once_and_retried(repo, mariadb_url):
    started = repo.create_execution(STEPS_TASK, {"run_key": "s", "steps": 9}, Trigger.API)
    _start(repo, started.id)
    repo.save_checkpoint(started.id, {"next_step": 4})
    stopping = repo.create_execution(STEPS_TASK, {"run_key": "t", "steps": 9}, Trigger.API)
    _start(repo, stopping.id)
    repo.request_stop(stopping.id)
    fresh = repo.create_execution(STEPS_TASK, {"run_key": "f", "steps": 9}, Trigger.API)
    _start(repo, fresh.id)
    for execution_id in (started.id, stopping.id):
        _age_heartbeat(mariadb_url, execution_id, 30)

    assert {e.id for e in repo.find_stale(10)} == {started.id, stopping.id}

    results: list[list] = []
    barrier = threading.Barrier(4)

    def reconcile() -> None:
        barrier.wait()
        results.append(repo.abandon_stale(10))

    threads = [threading.Thread(target=reconcile) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    acted = [a for batch in results for a in batch]
    assert sorted(a.execution.id for a in acted) == sorted([started.id, stopping.id])

    abandoned = repo.get(started.id)
    assert abandoned.status is ExecutionStatus.ABANDONED
    assert "heartbeat silent" in abandoned.error and "test-node:1" in abandoned.error
    assert repo.get(stopping.id).status is ExecutionStatus.STOPPED
    assert repo.get(fresh.id).status is ExecutionStatus.STARTED

    retries = repo.list_executions(trigger=Trigger.RETRY)
    assert len(retries) == 1
    retry = retries[0]
    assert retry.resumed_from_execution_id == started.id and retry.attempt == 2
    assert repo.load_checkpoint(retry.id) == {"next_step": 4}
    # The silent process wakes up: its writes are refused, not mixed into the retry.
    assert not repo.save_checkpoint(started.id, {"next_step": 5})
    assert not repo.finish(started.id, ExecutionStatus.COMPLETED)
    assert repo.heartbeat(started.id) is ExecutionStatus.ABANDONED


def test_list_executions_filters_and_pages(repo):
    ids = [repo.create_execution(STEPS_TASK, {"run_key": f"k{i}", "steps": 1}, Trigger.API).id
           for i in range(5)]
    repo.request_stop(ids[0])
    newest_first = [e.id for e in repo.list_executions(limit=3)]
    assert newest_first == ids[::-1][:3]
    assert [e.id for e in repo.list_executions(before_id=ids[2])] == [ids[1], ids[0]]
    assert [e.id for e in repo.list_executions(status=ExecutionStatus.STOPPED)] == [ids[0]]
    assert len(repo.list_executions(status=["QUEUED", "STOPPED"], task_type=STEPS_TASK)) == 5
    assert repo.list_executions(trigger="retry") == []
    assert repo.list_executions(status=[]) == []
    as_dict = repo.get(ids[0]).as_dict()
    assert as_dict["status"] == "STOPPED" and as_dict["retry"]["max_retries"] == 2
