"""Real task workers (``python -m shared.tasks.worker``: an RQ worker with its scheduler)
as subprocesses on real Redis and MariaDB: a worker SIGKILLed mid-task, a task that fails
once, and a cooperative stop followed by a restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from shared.stores.mariadb import connect
from shared.tasks.repository import TaskRepository
from shared.tasks.runner import enqueue_task
from shared.tasks.types import Execution, ExecutionStatus, Trigger
from tests.integration.shared.tasks.sample_tasks import (
    FLAKY_TASK,
    STEPS_BACKOFF_SECONDS,
    STEPS_BACKOFF_TASK,
    STEPS_TASK,
    create_side_tables,
)

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[4]
HEARTBEAT_INTERVAL = 0.5
HEARTBEAT_TIMEOUT = 2.5


class Workers:
    def __init__(self, mariadb_url: str, redis_url: str, log_dir: Path):
        self.env = {**os.environ, "TOONPICK_PROFILE": "test", "TOONPICK_MARIADB_URL": mariadb_url,
                    "REDIS_URL": redis_url, "PYTHONPATH": str(REPO_ROOT)}
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen] = []
        self.killed: set[int] = set()

    def start(self) -> subprocess.Popen:
        log = open(self.log_dir / f"worker-{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "shared.tasks.worker", "--queue", "tasks-test",
             "--task-module", "tests.integration.shared.tasks.sample_tasks",
             "--heartbeat-interval", str(HEARTBEAT_INTERVAL),
             "--heartbeat-timeout", str(HEARTBEAT_TIMEOUT), "--reconcile-interval", "1"],
            cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: the work horse and scheduler die with it
        )
        log.close()
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen) -> None:
        """SIGKILL the worker and every process under it, as a dying machine would (RQ's
        work horse runs in a process group of its own, so killpg alone misses it)."""
        self.killed.add(proc.pid)
        tree = [proc.pid, *_descendants(proc.pid)]
        for pid in tree:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=10)

    def crashed(self) -> list[int]:
        return [p.pid for p in self.procs if p.poll() is not None and p.pid not in self.killed]

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:]
                         for p in sorted(self.log_dir.glob("worker-*.log")))

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()  # RQ's warm shutdown: finish the current job, then exit
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill(proc)
        print(self.logs())


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@pytest.fixture
def workers(mariadb_url, redis_url, tmp_path) -> Iterator[Workers]:
    create_side_tables(mariadb_url)
    pool = Workers(mariadb_url, redis_url, tmp_path)
    yield pool
    pool.stop_all()


def wait_for(condition: Callable[[], Any], timeout: float, what: str, workers: Workers) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if workers.crashed():
            pytest.fail(f"a worker exited while waiting for {what}\n{workers.logs()}")
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout}s waiting for {what}\n{workers.logs()}")


def _rows(mariadb_url: str, sql: str, args: tuple) -> list[tuple]:
    conn = connect(mariadb_url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return [tuple(row) for row in cur.fetchall()]
    finally:
        conn.close()


def _steps(mariadb_url: str, run_key: str) -> list[tuple[int, int]]:
    return _rows(mariadb_url, "SELECT execution_id, step FROM sample_step WHERE run_key = %s "
                 "ORDER BY id", (run_key,))


def _results(mariadb_url: str, run_key: str) -> list[tuple[int, int]]:
    return _rows(mariadb_url, "SELECT execution_id, total FROM sample_result WHERE run_key = %s",
                 (run_key,))


def _instance(repo: TaskRepository, execution_id: int) -> list[Execution]:
    """Executions of the same instance, oldest first."""
    return list(reversed(repo.list_executions(instance_id=repo.get(execution_id).instance_id)))


def test_worker_killed_mid_task_is_abandoned_then_completed_once_from_its_checkpoint(
    workers, mariadb_url, redis_url
):
    repo = TaskRepository(mariadb_url)
    steps = 24
    first_id = enqueue_task(mariadb_url, redis_url, STEPS_TASK,
                            {"run_key": "kill", "steps": steps, "step_seconds": 0.12}, "api")
    doomed = workers.start()
    wait_for(lambda: repo.load_checkpoint(first_id).get("next_step", 0) >= 5, 20,
             "the first worker to checkpoint 5 steps", workers)
    workers.kill(doomed)
    killed_at = repo.load_checkpoint(first_id)["next_step"]
    assert killed_at < steps
    assert repo.get(first_id).status is ExecutionStatus.STARTED  # nobody knows yet

    workers.start()  # reconciles at start-up and every second
    completed = wait_for(
        lambda: [e for e in _instance(repo, first_id) if e.status is ExecutionStatus.COMPLETED],
        25, "the retry to complete", workers)

    first, retry = _instance(repo, first_id)
    assert first.status is ExecutionStatus.ABANDONED
    assert "heartbeat silent" in first.error
    assert completed == [retry]
    assert retry.trigger is Trigger.RETRY and retry.attempt == 2
    assert retry.resumed_from_execution_id == first.id
    assert retry.node != first.node
    assert retry.result == {"steps": steps} and retry.progress == 100

    recorded = _steps(mariadb_url, "kill")
    by_first = [s for e, s in recorded if e == first.id]
    by_retry = [s for e, s in recorded if e == retry.id]
    # The retry resumed at the checkpoint: nothing before it was redone...
    assert by_retry == list(range(killed_at, steps))
    # ...every step ran at least once (a step done but not yet checkpointed may run twice)...
    assert set(by_first) | set(by_retry) == set(range(steps))
    assert by_first[: killed_at] == list(range(killed_at))
    # ...and the final result was produced exactly once.
    assert _results(mariadb_url, "kill") == [(retry.id, steps)]


def test_a_task_failing_once_is_retried_after_its_backoff_and_completes(
    workers, mariadb_url, redis_url
):
    repo = TaskRepository(mariadb_url)
    first_id = enqueue_task(mariadb_url, redis_url, FLAKY_TASK, {"run_key": "flaky"}, "schedule")
    workers.start()
    wait_for(lambda: any(e.status is ExecutionStatus.COMPLETED
                         for e in _instance(repo, first_id)), 20, "the retry", workers)

    first, retry = _instance(repo, first_id)
    assert first.status is ExecutionStatus.FAILED and first.trigger is Trigger.SCHEDULE
    assert "RuntimeError: flaky failure on the first attempt" in first.error
    assert retry.status is ExecutionStatus.COMPLETED and retry.trigger is Trigger.RETRY
    assert retry.resumed_from_execution_id == first.id and retry.attempt == 2
    assert retry.result == {"resumed_from": {"phase": 1}, "attempt": 2}
    # Backoff 1 s: the retry was held back by RQ's scheduler at least that long.
    waited = (retry.started_at - first.ended_at).total_seconds()
    assert 1.0 <= waited < 5, waited


def test_stop_keeps_partial_work_and_a_restart_completes_it(workers, mariadb_url, redis_url):
    repo = TaskRepository(mariadb_url)
    steps = 40
    params = {"run_key": "stop", "steps": steps, "step_seconds": 0.08}
    first_id = enqueue_task(mariadb_url, redis_url, STEPS_TASK, params, "api")
    workers.start()
    wait_for(lambda: repo.load_checkpoint(first_id).get("next_step", 0) >= 4, 20,
             "4 steps", workers)
    assert repo.request_stop(first_id) is ExecutionStatus.STOPPING
    stopped = wait_for(lambda: (e := repo.get(first_id)).status is ExecutionStatus.STOPPED
                       and e, 10, "STOPPED", workers)
    kept = repo.load_checkpoint(first_id)["next_step"]
    assert 4 <= kept < steps
    assert stopped.progress == 100 * kept // steps and stopped.counters == {"steps_done": kept}
    assert _steps(mariadb_url, "stop") == [(first_id, s) for s in range(kept)]
    assert _results(mariadb_url, "stop") == []

    second_id = enqueue_task(mariadb_url, redis_url, STEPS_TASK, params, "api")
    wait_for(lambda: repo.get(second_id).status is ExecutionStatus.COMPLETED, 20,
             "the restart to complete", workers)
    second = repo.get(second_id)
    assert second.resumed_from_execution_id == first_id and second.trigger is Trigger.API
    assert [s for e, s in _steps(mariadb_url, "stop") if e == second_id] == list(
        range(kept, steps))
    assert _results(mariadb_url, "stop") == [(second_id, steps)]


def test_a_delayed_retry_starts_on_time_when_the_dead_workers_scheduler_lock_is_still_held(
    workers, mariadb_url, redis_url
):
    """The killed worker's RQ scheduler leaves its lock (61 s TTL) behind; RQ alone would
    let the new worker take it at its next 10-minute maintenance. The retry is due
    STEPS_BACKOFF_SECONDS after it was created and must start right then."""
    repo = TaskRepository(mariadb_url)
    first_id = enqueue_task(mariadb_url, redis_url, STEPS_BACKOFF_TASK,
                            {"run_key": "late", "steps": 30, "step_seconds": 0.1}, "api")
    doomed = workers.start()
    wait_for(lambda: repo.load_checkpoint(first_id).get("next_step", 0) >= 3, 20,
             "the first worker to checkpoint 3 steps", workers)
    workers.kill(doomed)
    lock = redis.Redis.from_url(redis_url).get("rq:scheduler-lock:tasks-test")
    assert lock is not None  # the dead scheduler's lock outlives it
    time.sleep(2)
    workers.start()
    wait_for(lambda: any(e.status is ExecutionStatus.COMPLETED
                         for e in _instance(repo, first_id)), 40, "the retry", workers)
    first, retry = _instance(repo, first_id)
    assert first.status is ExecutionStatus.ABANDONED and retry.trigger is Trigger.RETRY
    due = retry.created_at + timedelta(seconds=STEPS_BACKOFF_SECONDS)
    late = (retry.started_at - due).total_seconds()
    # Not before its backoff (whole seconds in RQ's scheduler), and within seconds of it.
    assert -1.0 <= late < 5.0, (late, workers.logs())
    assert "took over the scheduler lock" in workers.logs(), workers.logs()
