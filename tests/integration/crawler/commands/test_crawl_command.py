"""Exit codes of ``scrapy crawl`` (crawler/commands/crawl.py) from real spider processes
against the simulator: finished and stopped exit 0, a node closed by SIGTERM exits 3."""

from __future__ import annotations

import signal
import time

import pytest

from crawler.cluster import runs
from crawler.commands.crawl import EXIT_UNFINISHED
from shared.stores.redis import redis_client
from tests.integration.crawler.conftest import point_at

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _wait_for_items(harness, spider: str, run_id: str, node, count: int = 3) -> None:
    deadline = time.monotonic() + 60
    while harness.run_record(spider, run_id).get("stats", {}).get(
            "item_scraped_count", 0) < count:
        assert node.process.poll() is None, node.log_text()[-3000:]
        assert time.monotonic() < deadline, node.log_text()[-3000:]
        time.sleep(0.2)


def test_a_finished_run_exits_0_and_a_node_shut_down_by_sigterm_exits_3(harness, simulator):
    server, _ = simulator(seed=4, titles=60, episodes=3)
    point_at(harness, server.url)
    harness.env.update({"TOONPICK_CRAWL_HOST_RATE": "8", "TOONPICK_CRAWL_LEASE_SECONDS": "3"})
    request, (node,) = harness.start("naver")
    _wait_for_items(harness, "naver", request.run_id, node)
    node.process.send_signal(signal.SIGTERM)
    code = node.wait(timeout=60)
    log = node.log_text()
    assert code == EXIT_UNFINISHED, log[-3000:]
    assert "'finish_reason': 'shutdown'" in log
    assert "spider closed with reason 'shutdown'" in log
    record = harness.run_record("naver", request.run_id)
    assert record["status"] == runs.RUNNING  # the run is not done: the exit code says so

    # Another node on the same run finishes it: exit 0.
    harness.env["TOONPICK_CRAWL_HOST_RATE"] = "0"
    harness.crawl("naver", run_id=request.run_id)  # asserts exit code 0
    assert harness.run_record("naver", request.run_id)["status"] == runs.DONE


def test_a_node_closed_by_the_runs_stop_flag_exits_0(harness, simulator):
    server, _ = simulator(seed=6, titles=60, episodes=3)
    point_at(harness, server.url)
    harness.env.update({"TOONPICK_CRAWL_HOST_RATE": "8", "TOONPICK_CRAWL_LEASE_SECONDS": "3"})
    request, (node,) = harness.start("naver")
    _wait_for_items(harness, "naver", request.run_id, node)
    client = redis_client(harness.redis_url)
    try:
        runs.request_stop(client, "naver", request.run_id)
    finally:
        client.close()
    assert node.wait(timeout=60) == 0, node.log_text()[-3000:]
    assert "'finish_reason': 'stopped'" in node.log_text()
