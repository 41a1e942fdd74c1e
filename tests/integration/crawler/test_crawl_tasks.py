"""Crawl tasks run by real task workers (``python -m shared.tasks.worker --burst``) against
the simulator, on the real stores: a subprocess crawl to COMPLETED, a run crawled by a
node that joined it, and a stop that keeps what was stored and a restart that ends it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from typing import Any

import pytest

import crawler.tasks  # noqa: F401 - registers the crawl task types in this process
from crawler.cluster import runs
from crawler.cluster.standby import standby_nodes
from crawler.launcher import REPO_ROOT
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
