"""Crawl tasks run by real task workers (``python -m shared.tasks.worker --burst``) against
the simulator, on the real stores: a subprocess crawl to COMPLETED, a run crawled by a
node that joined it, and a stop that keeps what was stored and a restart that ends it."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from typing import Any

import pytest
from rq import Queue

import crawler.tasks  # noqa: F401 - registers the crawl task types in this process
from crawler.cluster import runs
from crawler.cluster.standby import standby_nodes
from crawler.launcher import REPO_ROOT
from crawler.tasks import CrawlTask, make_current
from shared.domain import CrawlMode
from shared.stores.redis import redis_client
from shared.tasks import ExecutionStatus, TaskRepository
from shared.tasks.runner import enqueue_task
from tests.integration.crawler.conftest import expected_episodes, expected_titles, point_at

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def worker_env(harness: Any, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        **harness.env,
        "TOONPICK_TASK_MODULES": "crawler.tasks",
        "TOONPICK_TASK_HEARTBEAT_INTERVAL": "1",
        "TOONPICK_TASK_STOP_CHECK_INTERVAL": "0.2",
        **extra,
    }


def start_worker(env: dict[str, str], log_path: Any) -> subprocess.Popen:
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "shared.tasks.worker", "--burst"],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)


def finish(worker: subprocess.Popen, log_path: Any, timeout: float = 90) -> None:
    try:
        code = worker.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
        pytest.fail(f"worker still running after {timeout}s\n{log_path.read_text()[-4000:]}")
    assert code == 0, log_path.read_text()[-4000:]


def execution(harness: Any, execution_id: int):
    repository = TaskRepository(harness.mariadb_url)
    try:
        return repository.get(execution_id), repository.load_checkpoint(execution_id)
    finally:
        repository.close()


def enqueue(harness: Any, task_type: str, params: dict[str, Any]) -> int:
    return enqueue_task(harness.mariadb_url, harness.redis_url, task_type, params, "api")


def test_crawl_task_without_spider_nodes_crawls_in_a_subprocess(harness, simulator, tmp_path):
    server, catalogue = simulator(seed=11, titles=24, episodes=3)
    point_at(harness, server.url)
    expected = catalogue.expected()
    execution_id = enqueue(harness, "WEBTOON_ALL_CRAWL", {})
    log_path = tmp_path / "worker.log"
    finish(start_worker(worker_env(harness), log_path), log_path)

    done, checkpoint = execution(harness, execution_id)
    assert done.status is ExecutionStatus.COMPLETED, done.error or log_path.read_text()[-4000:]
    assert done.progress == 100
    assert sorted(checkpoint["runs"]) == ["kakao", "kakaopage", "naver"]
    assert sorted(checkpoint["done"]) == ["kakao", "kakaopage", "naver"]
    for platform in ("NAVER", "KAKAO", "KAKAOPAGE"):
        titles = expected_titles(expected, platform)
        episodes = expected_episodes(expected, platform)
        assert harness.maria_titles(platform) == titles
        assert harness.maria_episodes(platform) == episodes
        summary = done.result["platforms"][platform]
        assert summary["status"] == "done"
        assert summary["titles_stored"] == len(titles)
        assert summary["episodes_stored"] == len(episodes)
        assert summary["dropped_total"] == 0 and summary["requests"] > len(titles)
        assert done.counters["platforms"][platform]["titles_stored"] == len(titles)


def test_crawl_task_follows_a_run_crawled_by_a_node_that_joined_it(harness, simulator, tmp_path):
    server, catalogue = simulator(seed=12, titles=12, episodes=2)
    point_at(harness, server.url)
    execution_id = enqueue(harness, "WEBTOON_ALL_CRAWL",
                           {"platforms": ["NAVER"], "node_wait": 60})
    log_path = tmp_path / "worker.log"
    worker = start_worker(worker_env(harness), log_path)
    client = redis_client(harness.redis_url)
    try:
        deadline = time.monotonic() + 30
        while (run_id := runs.current_run(client, "naver")) is None:
            assert time.monotonic() < deadline, log_path.read_text()[-4000:]
            time.sleep(0.1)
        # The task pushed its run and waits for nodes; one started elsewhere joins it.
        request, nodes = harness.start("naver", run_id=run_id)
        harness.wait(nodes, timeout=60)
        finish(worker, log_path)
    finally:
        client.close()

    done, checkpoint = execution(harness, execution_id)
    assert done.status is ExecutionStatus.COMPLETED, done.error or log_path.read_text()[-4000:]
    assert checkpoint["runs"] == {"naver": run_id}
    record = harness.run_record("naver", run_id)
    assert [n["pid"] for n in record["nodes"]] == [nodes[0].pid]  # the worker ran none
    titles = expected_titles(catalogue.expected(), "NAVER")
    assert harness.maria_titles("NAVER") == titles
    assert done.result["platforms"]["NAVER"]["titles_stored"] == len(titles)


def test_stop_keeps_partial_results_and_a_restart_completes_the_run(
        harness, simulator, tmp_path):
    server, catalogue = simulator(seed=21, titles=120, episodes=3)
    point_at(harness, server.url)
    expected = catalogue.expected()
    titles, episodes = expected_titles(expected, "NAVER"), expected_episodes(expected, "NAVER")
    # Slow enough that the crawl is still running when the stop arrives; short leases
    # make the nodes' heartbeat (which reads the stop flag) beat every second.
    env = worker_env(harness, TOONPICK_CRAWL_HOST_RATE="10", TOONPICK_CRAWL_LEASE_SECONDS="3")
    params = {"platforms": ["NAVER"], "today": "2025-03-01"}
    first_id = enqueue(harness, "WEBTOON_ALL_CRAWL", params)
    log_path = tmp_path / "worker-1.log"
    worker = start_worker(env, log_path)
    deadline = time.monotonic() + 40
    while sum(harness.maria_titles("NAVER").values()) < 5:
        assert time.monotonic() < deadline, log_path.read_text()[-4000:]
        time.sleep(0.2)
    repository = TaskRepository(harness.mariadb_url)
    try:
        assert repository.request_stop(first_id) is ExecutionStatus.STOPPING
    finally:
        repository.close()
    finish(worker, log_path)

    stopped, checkpoint = execution(harness, first_id)
    assert stopped.status is ExecutionStatus.STOPPED, stopped.error
    run_id = checkpoint["runs"]["naver"]
    assert checkpoint["done"] == []
    record = harness.run_record("naver", run_id)
    assert record["status"] == "running" and record["stop_requested"]
    assert not [n for n in record["nodes"] if n["active"]]
    assert {n["reason"] for n in record["nodes"]} == {"stopped"}
    kept = harness.maria_titles("NAVER")
    assert 5 <= sum(kept.values()) < len(titles)
    assert set(kept.values()) == {1}
    assert 0 < sum(harness.maria_episodes("NAVER").values()) < len(episodes)

    second_id = enqueue(harness, "WEBTOON_ALL_CRAWL", params)
    log_path = tmp_path / "worker-2.log"
    finish(start_worker(worker_env(harness), log_path), log_path)

    resumed, checkpoint = execution(harness, second_id)
    assert resumed.status is ExecutionStatus.COMPLETED, resumed.error
    assert resumed.resumed_from_execution_id == first_id
    assert checkpoint == {"runs": {"naver": run_id}, "done": ["naver"]}
    assert harness.maria_titles("NAVER") == titles
    assert harness.maria_episodes("NAVER") == episodes
    assert harness.mongo_titles("NAVER") == titles
    assert harness.mongo_episodes("NAVER") == episodes
    assert resumed.result["platforms"]["NAVER"]["run_id"] == run_id
    assert harness.run_record("naver", run_id)["status"] == "done"


def test_standby_spider_nodes_crawl_the_runs_a_task_pushes(harness, simulator, tmp_path):
    server, catalogue = simulator(seed=14, titles=12, episodes=2)
    point_at(harness, server.url)
    env = {**os.environ, **harness.env}
    with open(tmp_path / "standby.log", "wb") as log:
        standby = subprocess.Popen(
            [sys.executable, "-m", "crawler.cluster.standby", "naver", "--poll", "0.2"],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
    client = redis_client(harness.redis_url)
    try:
        deadline = time.monotonic() + 20
        while not standby_nodes(client, "naver"):
            assert standby.poll() is None, (tmp_path / "standby.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the standby node never announced itself"
            time.sleep(0.1)
        # Two tasks one after the other: the same long-lived standby node crawls both.
        run_ids = []
        for today in ("2026-11-02", "2026-11-03"):
            execution_id = enqueue(harness, "WEBTOON_ALL_CRAWL",
                                   {"platforms": ["NAVER"], "today": today})
            log_path = tmp_path / f"worker-{today}.log"
            finish(start_worker(worker_env(harness), log_path), log_path)
            done, checkpoint = execution(harness, execution_id)
            assert done.status is ExecutionStatus.COMPLETED, done.error
            run_ids.append(checkpoint["runs"]["naver"])
        assert standby.poll() is None, "a standby node outlives the runs it crawls"
    finally:
        standby.terminate()
        standby.wait(timeout=60)
        client.close()

    assert not standby_nodes(redis_client(harness.redis_url), "naver")  # announcement gone
    log_text = (tmp_path / "standby.log").read_text()
    for run_id in run_ids:
        joined = re.search(rf"spider node (\d+) joins run {re.escape(run_id)}", log_text)
        assert joined, log_text[-3000:]
        # The run's only node was the standby node's spider node: the worker ran none.
        record = harness.run_record("naver", run_id)
        assert [int(n["pid"]) for n in record["nodes"]] == [int(joined.group(1))]
    assert harness.maria_titles("NAVER") == expected_titles(catalogue.expected(), "NAVER")


# --- how a crawl task reopens the runs of its checkpoint (real Redis, no nodes) ----------


class _Context:
    """What CrawlTask.open_runs uses of the runner's TaskContext."""

    def __init__(self, checkpoint: dict[str, Any]):
        self.checkpoint = checkpoint
        self.log = logging.getLogger("test.crawl_task")

    def save_checkpoint(self, data: dict[str, Any]) -> None:
        self.checkpoint = dict(data)


@pytest.fixture
def client(redis_url):
    connection = redis_client(redis_url)
    yield connection
    connection.close()


def _opened(client, checkpoint: dict[str, Any]) -> tuple[CrawlTask, _Context]:
    context = _Context(checkpoint)
    task = CrawlTask(context, CrawlMode.ALL, ["naver"], None, 0.0, client)
    task.open_runs()
    return task, context


def _done_run(client, **stats: int) -> str:
    run_id = runs.start_run(client, "naver", [])
    assert runs.finish_if_done(client, "naver", run_id) == runs.DONE
    if stats:
        client.hset(runs.RunKeys("naver", run_id).stats, mapping=stats)
    return run_id


def test_a_retry_replays_the_dead_letters_of_a_done_run(client):
    run_id = _done_run(client)
    keys = runs.RunKeys("naver", run_id)
    client.hset(keys.dead, "lease-1", b"payload")
    client.hset(keys.dead_infos, "lease-1", "r|0|3|4")
    task, context = _opened(client, {"runs": {"naver": run_id}, "done": ["naver"]})

    assert not task.crawls["naver"].done and task.crawls["naver"].run_id == run_id
    assert context.checkpoint == {"runs": {"naver": run_id}, "done": []}
    record = runs.get_run(client, "naver", run_id)
    assert record["status"] == runs.RUNNING
    assert record["queue"]["dead"] == 0 and record["queue"]["reclaimed"] == 1
    assert runs.current_run(client, "naver") == run_id


def test_a_retry_keeps_a_done_run_whose_failed_items_were_crawled_again(client):
    # Failed items' leases were never acked: their requests were crawled again, so a done
    # run without dead letters is complete, like one with drops only.
    redone = _done_run(client, **{"catalogue/episode/failed": 15})
    complete = _done_run(client, **{"validate/dropped/bad_json": 2})  # drops: still done
    for run_id in (redone, complete):
        task, _ = _opened(client, {"runs": {"naver": run_id}, "done": ["naver"]})
        assert task.crawls["naver"].done and task.crawls["naver"].run_id == run_id


def test_a_restarted_stopped_run_is_current_again_unless_another_live_run_is(client):
    stopped = runs.start_run(client, "naver", [{"url": "http://127.0.0.1:9/a"}])
    runs.request_stop(client, "naver", stopped)
    assert runs.current_run(client, "naver") is None  # request_stop cleared it
    _opened(client, {"runs": {"naver": stopped}, "done": []})
    assert not runs.stop_requested(client, "naver", stopped)
    assert runs.current_run(client, "naver") == stopped  # standby nodes follow it again

    runs.request_stop(client, "naver", stopped)
    other = runs.start_run(client, "naver", [{"url": "http://127.0.0.1:9/b"}])
    assert runs.current_run(client, "naver") == other
    _opened(client, {"runs": {"naver": stopped}, "done": []})
    assert runs.current_run(client, "naver") == other  # a live run keeps its place
    assert make_current(client, "naver", stopped) is False
    assert runs.finish_if_done(client, "naver", other) == runs.RUNNING


def test_an_interrupted_run_is_restarted_under_its_id(client):
    run_id = runs.start_run(client, "naver", [{"url": "http://127.0.0.1:9/a"}])
    client.delete(runs.RunKeys("naver", run_id).meta)  # Redis lost it
    assert runs.mark_interrupted(client, "naver", run_id, "test") == runs.INTERRUPTED
    task, _ = _opened(client, {"runs": {"naver": run_id}, "done": []})
    record = runs.get_run(client, "naver", run_id)
    assert record["status"] == runs.RUNNING and record["queue"]["start"] > 0
    assert task.crawls["naver"].run_id == run_id and not task.crawls["naver"].done


# --- processes: standby nodes after a stop, a run Redis lost ------------------------------


def _start_standby(env: dict[str, str], log_path: Any) -> subprocess.Popen:
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "crawler.cluster.standby", "naver", "--poll", "0.2"],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)


def _wait_for_titles(harness: Any, count: int, log_path: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while sum(harness.maria_titles("NAVER").values()) < count:
        assert time.monotonic() < deadline, log_path.read_text()[-4000:]
        time.sleep(0.2)


def test_after_a_stop_and_a_restart_the_standby_node_rejoins_the_run(
        harness, simulator, tmp_path):
    server, catalogue = simulator(seed=23, titles=60, episodes=3)
    point_at(harness, server.url)
    slow = {"TOONPICK_CRAWL_HOST_RATE": "10", "TOONPICK_CRAWL_LEASE_SECONDS": "3"}
    standby_log = tmp_path / "standby.log"
    standby = _start_standby({**os.environ, **harness.env, **slow}, standby_log)
    client = redis_client(harness.redis_url)
    params = {"platforms": ["NAVER"], "today": "2026-11-05"}
    try:
        deadline = time.monotonic() + 20
        while not standby_nodes(client, "naver"):
            assert standby.poll() is None and time.monotonic() < deadline, standby_log.read_text()
            time.sleep(0.1)
        first_id = enqueue(harness, "WEBTOON_ALL_CRAWL", params)
        log_path = tmp_path / "worker-1.log"
        worker = start_worker(worker_env(harness, **slow), log_path)
        _wait_for_titles(harness, 5, standby_log)
        repository = TaskRepository(harness.mariadb_url)
        try:
            assert repository.request_stop(first_id) is ExecutionStatus.STOPPING
        finally:
            repository.close()
        finish(worker, log_path)
        stopped, checkpoint = execution(harness, first_id)
        assert stopped.status is ExecutionStatus.STOPPED, stopped.error
        run_id = checkpoint["runs"]["naver"]
        assert sum(harness.maria_titles("NAVER").values()) < 60

        second_id = enqueue(harness, "WEBTOON_ALL_CRAWL", params)
        log_path = tmp_path / "worker-2.log"
        finish(start_worker(worker_env(harness), log_path), log_path)
        resumed, checkpoint = execution(harness, second_id)
        assert resumed.status is ExecutionStatus.COMPLETED, resumed.error
        assert checkpoint["runs"] == {"naver": run_id}
    finally:
        standby.terminate()
        standby.wait(timeout=60)
        client.close()

    joined = [int(pid) for pid in re.findall(
        rf"spider node (\d+) joins run {re.escape(run_id)}", standby_log.read_text())]
    assert len(joined) == 2, standby_log.read_text()[-3000:]  # before the stop and after
    record = harness.run_record("naver", run_id)
    assert record["status"] == "done"
    assert sorted(int(n["pid"]) for n in record["nodes"]) == sorted(joined)  # worker ran none
    expected = catalogue.expected()
    assert harness.maria_titles("NAVER") == expected_titles(expected, "NAVER")
    assert harness.maria_episodes("NAVER") == expected_episodes(expected, "NAVER")


def _promote_scheduled_jobs(client, queue_name: str = "default") -> int:
    """Move delayed jobs to their queue now (the retry's 60 s backoff is tested with real
    timing in test_worker_kill.py; here only what the retry does counts)."""
    queue = Queue(queue_name, connection=client)
    registry = queue.scheduled_job_registry
    ids = registry.get_job_ids()
    for job_id in ids:
        queue.enqueue_job(queue.fetch_job(job_id))
        registry.remove(job_id)
    return len(ids)


def test_a_run_redis_lost_fails_the_task_and_its_retry_restarts_it_to_completion(
        harness, simulator, tmp_path):
    server, catalogue = simulator(seed=24, titles=60, episodes=3)
    point_at(harness, server.url)
    slow = {"TOONPICK_CRAWL_HOST_RATE": "10", "TOONPICK_CRAWL_LEASE_SECONDS": "3"}
    first_id = enqueue(harness, "WEBTOON_ALL_CRAWL", {"platforms": ["NAVER"]})
    log_path = tmp_path / "worker-1.log"
    worker = start_worker(worker_env(harness, **slow), log_path)
    _wait_for_titles(harness, 5, log_path)
    client = redis_client(harness.redis_url)
    try:
        run_id = execution(harness, first_id)[1]["runs"]["naver"]
        # As a Redis restart without persistence would: every key of the run is gone.
        lost = list(client.scan_iter(match=f"toonpick:crawl:naver:{run_id}:*"))
        assert lost
        client.delete(*lost)
        finish(worker, log_path)
        failed, _ = execution(harness, first_id)
        assert failed.status is ExecutionStatus.FAILED, log_path.read_text()[-4000:]
        assert f"crawl run {run_id}" in failed.error
        assert "interrupted" in failed.error or "vanished" in failed.error, failed.error
        assert _promote_scheduled_jobs(client) == 1
    finally:
        client.close()
    log_path = tmp_path / "worker-2.log"
    finish(start_worker(worker_env(harness), log_path), log_path)

    repository = TaskRepository(harness.mariadb_url)
    try:
        (retry,) = [e for e in repository.list_executions(
            instance_id=repository.get(first_id).instance_id) if e.id != first_id]
    finally:
        repository.close()
    assert retry.status is ExecutionStatus.COMPLETED, retry.error
    assert retry.result["platforms"]["NAVER"]["run_id"] == run_id  # the same run, restarted
    expected = catalogue.expected()
    assert harness.maria_titles("NAVER") == expected_titles(expected, "NAVER")
    assert harness.maria_episodes("NAVER") == expected_episodes(expected, "NAVER")
    assert harness.mongo_episodes("NAVER") == expected_episodes(expected, "NAVER")
